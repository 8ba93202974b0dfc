"""The cyclic garbage collector, tuned for a server whose state only grows (orders, fills, webhook events).

By default a full collection walks every object the process holds, each time the heap has grown by a quarter.
Under a load test that is a pause of 135 ms once 40,000 orders exist, longer with every order, and the whole
server waits for it (the app runs on the event loop). `collect_incrementally` freezes what survives each full
collection (`gc.freeze`: the collector stops walking it; reference counting still frees it) and allows a full
collection after every second-generation one. Each full pass then walks only what is new: measured in-process
over 40,000 orders, the longest pause fell from 135 ms to 7 ms and the collector's total time by half.

The price is what dies inside a frozen reference cycle: nothing finds it. In normal traffic that is a few hundred
objects per 50,000 requests. Replaced services (a reseed) are a whole cyclic graph, so the reseed hands
everything frozen back to the collector (`thaw`).
"""

from __future__ import annotations

import gc

# Generation 0 and 1 as CPython's defaults; 1 instead of 10 for the full collection, cheap now that it walks only
# what survived since the last one.
THRESHOLDS = (700, 10, 1)


def collect_incrementally() -> None:
    """For the server process (the CLI), once, after start-up: freeze what start-up built, then keep freezing."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if _freeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_freeze_after_full_collection)


def thaw() -> None:
    """Let the next full collection walk everything once: what a frozen cycle left when it died is found there,
    and what survives is frozen again. One long pause, once; for when a large part of the heap has just died."""
    gc.unfreeze()


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
