"""What the server lets the app do to its own response beyond WSGI: hold it back, or drop the connection.

Injected faults need both (`web/faults.py`). WSGI has no word for either, so the server puts an object under
`RESPONSE_CONTROLS` in each request's environment; under another WSGI server the key is absent and the app falls
back to what it can do alone (sleep in the request, answer 502).
"""

from __future__ import annotations

from typing import Protocol

RESPONSE_CONTROLS = "tradefence.response_controls"


class ResponseControls(Protocol):
    def delay(self, seconds: float) -> None:
        """Send the response this many seconds later, without holding up any other connection."""

    def drop(self) -> None:
        """Close the connection without a byte of answer (the client sees a connection error)."""
