"""The emulator as a WSGI app, for serving it with gunicorn (the alternative stack the bench measures).

`gunicorn -k gthread -w 1 --threads N benchmarks.wsgi:app` with `TRADEFENCE_BENCH_CONFIG` naming a TOML
config file. One worker only: the emulator's state (accounts, orders, the clock, the stream hub) lives in one
process, so several workers would each have their own market.
"""

from __future__ import annotations

import os
from pathlib import Path

from mock_server.app import create_app
from mock_server.config import load_config

_path = os.environ.get("TRADEFENCE_BENCH_CONFIG")
app = create_app(load_config(Path(_path) if _path else None, os.environ))
