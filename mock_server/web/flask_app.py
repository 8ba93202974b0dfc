"""Flask, less two things every request paid for and the emulator never uses, through Flask's documented
extension points only (what each saved is in docs/performance.md).

- Sessions: the emulator keeps none (OAuth state lives in the domain), yet Flask makes a fresh `NullSession` per
  request. One read-only `NullSession` serves them all through the app's `session_interface`; it refuses every
  write, as Flask's own does.
- `ensure_sync`: Flask asks `inspect` whether each hook and view is a coroutine function, on every request. The
  answer never changes, so it is kept per function (Flask documents the method as the one to override).
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import NullSession, SessionInterface

_MAX_KEPT = 4096  # hooks, views and error handlers number in the dozens; a bound in case something passes new ones


class _NoSessions(SessionInterface):
    def __init__(self) -> None:
        self._null = NullSession()

    def make_null_session(self, app: Flask) -> NullSession:
        return self._null

    def open_session(self, app: Flask, request: Request) -> NullSession:
        return self._null

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        """Nothing to save: every session is the null one."""


class EmulatorFlask(Flask):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_interface = _NoSessions()
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self._sync.get(func)
        if known is None:
            known = self.async_to_sync(func) if iscoroutinefunction(func) else func
            if len(self._sync) < _MAX_KEPT:
                self._sync[func] = known
        return known
