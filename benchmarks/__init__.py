"""`make bench`: the emulator's performance, side by side with Stoplight Prism and a bare HTTP responder.

Run as `python -m benchmarks` (see `__main__.py` for the flags). Loopback only and bounded in time: every
server it starts binds 127.0.0.1 on a free port, runs in its own process group and is stopped on the way out,
Ctrl-C included. Figures go to stdout as a table and to `.bench/results.json`.

Modules: `procs` (starting and stopping servers), `load` (wrk, or an asyncio fallback), `rest`, `stream`
(websocket fan-out), `startup` (cold start and the contract suite), `report` (table and targets), `bare` (the
ceiling: a fixed-body responder), `wsgi` (the emulator as a WSGI app for the alternative serving stack).
Nothing here is part of `make test`.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / ".bench"
PRISM_VERSION = "5.16.0"  # keep in step with PRISM_VERSION in the Makefile


class HarnessError(RuntimeError):
    """The benchmark itself failed (a server would not start, a request got the wrong answer): exit non-zero."""
