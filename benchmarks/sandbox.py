"""`python -m benchmarks.sandbox`: what a test pays for its emulator, two ways (docs/performance.md, "The test
fixture").

- new: a `sandbox()` per test (an app built from the config, its own server and webhook receiver, stopped after);
- reset: one `sandbox()` for the session and `reset()` before each test (a reseed, the clock, the journal).

Each "test" then mints one token, so both are measured up to the first useful answer. The two alternate, round by
round, in one process: on a busy machine their ratio means more than either figure.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from mock_server.testing import Sandbox, sandbox

ROUNDS = 15
PER_ROUND = 10


def per_test_new() -> None:
    with sandbox() as fresh:
        fresh.token("bench")


def per_test_reset(shared: Sandbox) -> Callable[[], None]:
    def run() -> None:
        shared.reset()
        shared.token("bench")

    return run


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    timings: dict[str, list[float]] = {"new": [], "reset": []}
    with sandbox() as shared:
        ways = {"new": per_test_new, "reset": per_test_reset(shared)}
        for _ in range(ROUNDS):
            for name, way in ways.items():
                for _ in range(PER_ROUND):
                    started = time.perf_counter()
                    way()
                    timings[name].append(time.perf_counter() - started)
    new, reset = median_ms(timings["new"]), median_ms(timings["reset"])
    print(f"new sandbox per test:   median {new:.1f} ms")
    print(f"reset sandbox per test: median {reset:.1f} ms  ({new / reset:.1f}x cheaper)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
