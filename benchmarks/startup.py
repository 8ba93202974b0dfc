"""Cold start (process launch to the first successful authenticated request) and the contract suite's wall time.

Cold start: the clock starts just before the process is spawned and stops when `GET /v1/account` (Prism:
`GET /account`) with a freshly minted bearer token (`POST /_mock/tokens`) has answered 200. The emulator
prints its URL first on stdout (`--port 0`); Prism is given a free port and polled every 5 ms.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from benchmarks import ROOT, HarnessError
from benchmarks.procs import Server, call


@dataclass
class ColdStart:
    runs_s: list[float]
    median_s: float

    def as_dict(self) -> dict[str, object]:
        return {key: [round(v, 4) for v in value] if isinstance(value, list) else round(value, 4)
                for key, value in asdict(self).items()}


def cold_start(make_server: Callable[[], Server], prefix: str, runs: int = 5) -> ColdStart:
    """The first launch is discarded: it fills the caches every later start of an installed server finds (Python's
    bytecode, the emulator's parsed spec, the OS's file cache), which is the start users wait for every day."""
    times = []
    for run in range(runs + 1):
        started = time.perf_counter()
        with make_server() as server:
            port = server.port or 0
            status, body = call(port, "POST", "/_mock/tokens", {"subject": "coldstart"})
            if status != 201 or not isinstance(body, dict):
                raise HarnessError(f"{server.name}: POST /_mock/tokens answered {status}")
            status, _ = call(port, "GET", f"{prefix}/account", token=body["access_token"])
            if status != 200:
                raise HarnessError(f"{server.name}: GET {prefix}/account answered {status}")
            if run:
                times.append(time.perf_counter() - started)
    return ColdStart(times, statistics.median(times))


@dataclass
class ContractRun:
    seconds: float
    exit_code: int
    summary: str

    def as_dict(self) -> dict[str, object]:
        return {"seconds": round(self.seconds, 2), "exit_code": self.exit_code, "summary": self.summary}


def contract_suite(timeout: float = 600) -> ContractRun:
    argv = [sys.executable, "-m", "pytest", "contracts", "-q", "-p", "no:cacheprovider"]
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"the contract suite ran over {timeout:.0f} s") from None
    elapsed = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return ContractRun(elapsed, done.returncode, lines[-1].strip("= ") if lines else done.stdout[-200:])
