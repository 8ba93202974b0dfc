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
        """Now, or at the `release` of this thread's hold."""
        held: list[Work] | None = getattr(self._local, "held", None)
        if held is None:
            work()
        else:
            held.append(work)

    def hold(self) -> None:
        """Hold this thread's work until `release`. Work still held from a hold never released runs first."""
        if self._enabled:
            self.release()
            self._local.held = []

    def release(self) -> None:
        """Run what this thread's hold kept, and hold no more. Without a hold, nothing happens."""
        held: list[Work] | None = getattr(self._local, "held", None)
        if held is not None:
            self._local.held = None
            if held:
                _run_all(held)


def _run_all(held: list[Work]) -> None:
    """In the order it came (what one piece defers in turn runs at once: nothing holds it now). A failure is
    logged and the rest still runs: the call that made the work has answered already."""
    for work in held:
        try:
            work()
        except Exception:
            log.exception("deferred work failed: %r", work)
    held.clear()
