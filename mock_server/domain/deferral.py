"""Work that a call's result does not depend on, run once the caller has the result.

A fill records a webhook event (its id, its snapshot, its place in the history and the delivery queues): about a
twentieth of a `POST /v1/orders`, none of it in the answer. The web layer holds such work for the length of a
request and releases it once the answer is out; everywhere else (the alert watcher's thread, tests calling the
domain directly) it runs at once. Held work is per thread, so one request's work never waits for, or runs in,
another's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

Work = Callable[[], None]
log = logging.getLogger("tradefence.deferral")


class Deferral:
    """``enabled=False`` runs everything at once (with a state file, an event is written before the answer, as
    every other change is)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._local = threading.local()

    def run(self, work: Work) -> None:
        """Now, or at the release of this thread's hold."""
        held: list[Work] | None = getattr(self._local, "held", None)
        if held is None:
            work()
        else:
            held.append(work)

    def hold(self) -> Work:
        """Hold this thread's work until the returned release is called (once; later calls do nothing). Work still
        held from an earlier hold that was never released runs first."""
        if not self._enabled:
            return _nothing
        self._release_stale()
        held: list[Work] = []
        self._local.held = held

        def release() -> None:
            if getattr(self._local, "held", None) is held:
                self._local.held = None
            _run_all(held)

        return release

    def _release_stale(self) -> None:
        stale: list[Work] | None = getattr(self._local, "held", None)
        self._local.held = None
        if stale:
            _run_all(stale)


def _run_all(held: list[Work]) -> None:
    """In the order it came (what one piece defers in turn runs at once: nothing holds it now). A failure is
    logged and the rest still runs: the call that made the work has answered already."""
    for work in held:
        try:
            work()
        except Exception:
            log.exception("deferred work failed: %r", work)
    held.clear()


def _nothing() -> None:
    return None
