"""`python -m mock_server`."""

import sys

from mock_server.cli import main

if __name__ == "__main__":
    sys.exit(main())
