"""The cyclic garbage collector, tuned for a server whose state only grows (orders, fills, webhook events).

By default a full collection walks every object the process holds, each time the heap has grown by a quarter:
under load, a pause that grows with every order, while requests wait for it. `collect_incrementally` freezes
what survives each full collection (`gc.freeze`: the collector stops walking it; reference counting still frees
it) and allows a full collection after every second-generation one, so each full pass walks only what is new
(the pauses before and after: docs/performance.md, "The collector").

The price is what dies inside a frozen reference cycle: nothing finds it; in normal traffic, a few objects per
thousand requests. Replaced services (a reseed) are a whole cyclic graph, so the reseed hands
everything frozen back to the collector (`thaw`).

When the collector runs matters too. Left to itself it runs wherever an allocation crosses the threshold, in the
middle of an answer; the server instead calls `collect_if_due` after each answer has gone out, which runs the
collection CPython would have run by then. Automatic collection stays on, at a higher threshold, for what runs
outside the answers (a 50-operation batch, the stream's threads).
"""

from __future__ import annotations

import gc

# Generation 0 and 1 as CPython's defaults; 1 instead of 10 for the full collection, cheap now that it walks only
# what survived since the last one.
THRESHOLDS = (700, 10, 1)
# Automatic collection's: generation 0 left to grow this much further between answers before it collects anyway.
AUTOMATIC_THRESHOLDS = (THRESHOLDS[0] * 8, *THRESHOLDS[1:])


def pause() -> None:
    """For the server process (the CLI), before it loads the emulator's modules: no collections until
    `collect_incrementally`. Start-up builds tens of thousands of objects that live as long as the process;
    CPython would run a collection over them again and again while they load (a visible part of the cold start) to
    free a few hundred objects of import-time cycles, which now stay, once."""
    gc.disable()


def collect_incrementally() -> None:
    """For the server process (the CLI), once, after start-up: freeze what start-up built, then keep freezing.
    No full pass before the freeze: it walked everything start-up built and found nothing to free. The server is
    to call `collect_if_due` after each answer."""
    gc.freeze()
    gc.set_threshold(*AUTOMATIC_THRESHOLDS)
    gc.enable()
    if _freeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_freeze_after_full_collection)


def collect_if_due() -> None:
    """The collection automatic collection would have run at `THRESHOLDS` by now, if any: the oldest generation
    whose count is over its threshold, as CPython picks it. Cheap when none is due (one call, one comparison)."""
    counts = gc.get_count()
    if counts[0] > THRESHOLDS[0]:
        gc.collect(next(generation for generation in (2, 1, 0) if counts[generation] > THRESHOLDS[generation]))


def thaw() -> None:
    """Let the next full collection walk everything once: what a frozen cycle left when it died is found there,
    and what survives is frozen again. One long pause, once; for when a large part of the heap has just died."""
    gc.unfreeze()


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
