"""A real emulator on a free loopback port (`serve`), and HTTP against it whose every response is checked against
the spec (`spec_session`: the contract suite's `CheckedSession`, so the suite and these tests check alike)."""

from __future__ import annotations

from flask import Flask

from contracts.checking import CheckedSession
from mock_server.serving import serve

__all__ = ["CheckedSession", "serve", "spec_session"]


def spec_session(base_url: str, app: Flask) -> CheckedSession:
    """A session on the emulator's root (`/v1/...`, `/token`, `/_mock/...`) checked against the app's own spec."""
    return CheckedSession(base_url, app.extensions["tradefence.spec"])
