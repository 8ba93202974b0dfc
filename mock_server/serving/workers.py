"""The threads that run the app: a fixed number, fed from one queue.

The loop hands a request over as a function and its argument on a `queue.SimpleQueue` (put and get are C), and
the answer comes back by `call_soon_threadsafe`. `concurrent.futures.ThreadPoolExecutor` would add a future, a
work item and an idle semaphore per request, which nothing here reads, on the path every request takes twice
(docs/performance.md, "What missed, and why"). A job that raises is logged and the thread goes on: an executor
keeps the exception in a future nobody looks at.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tradefence.server")

Job = tuple[Callable[[Any], None], Any]


class Workers:
    """`count` daemon threads, started at once (a server's start pays for them once, a request never)."""

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{n}", daemon=True) for n in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[[Any], None], argument: Any) -> None:
        self._jobs.put((function, argument))

    def stop(self) -> None:
        """Drop the jobs not yet started and end every thread once its current job is done; returns at once."""
        try:
            while True:
                self._jobs.get_nowait()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            function, argument = job
            try:
                function(argument)
            except Exception:
                log.exception("a worker's job failed")
