"""Serving stacks side by side: the request rate each one gives a bare Flask app, and whether it could serve the
emulator as a whole (its REST API and the `/market-data` websocket on the same port).

The emulator's own figures on the stacks that can run its REST API are in the REST section (`--stacks all`);
this table shows the ceiling each server puts over any Flask app on this machine, which is what decides
whether a REST target is reachable on it at all.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.load import LoadResult, Request, run
from benchmarks.procs import HOST, Server, free_port

APP = "benchmarks.hello:app"
HELLO = Request("GET", "/hello")


@dataclass(frozen=True)
class Stack:
    name: str
    module: str  # what must be importable for it to run
    stream: str  # can it serve /market-data on the same port, and how
    argv: Callable[[int], list[str]]


def gunicorn_argv(app: str, port: int, worker: str, threads: int) -> list[str]:
    """One worker: the emulator's state lives in one process (a second worker would have its own market)."""
    return [sys.executable, "-m", "gunicorn", "--worker-class", worker, "--workers", "1", "--threads", str(threads),
            "--bind", f"{HOST}:{port}", "--no-control-socket", "--log-level", "warning", "--graceful-timeout", "2",
            app]


def granian_argv(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(port),
            "--workers", "1", "--blocking-threads", "1", "--log-level", "warning", app]


def _gunicorn(worker: str) -> Callable[[int], list[str]]:
    return lambda port: gunicorn_argv(APP, port, worker, threads=8)


STACKS = (
    Stack("the emulator's own (asyncio + httptools, app inline)", "httptools", "yes: flask-sock on its own thread",
          lambda port: [sys.executable, "-m", "benchmarks.hello"]),
    Stack("werkzeug threaded (the emulator's until 2026-11)", "werkzeug", "yes: flask-sock",
          lambda port: [sys.executable, "-m", "benchmarks.hello", "--werkzeug"]),
    Stack("gunicorn gthread, 1 worker", "gunicorn", "yes: flask-sock", _gunicorn("gthread")),
    Stack("gunicorn gevent, 1 worker", "gevent", "yes: flask-sock, the whole process monkey-patched",
          _gunicorn("gevent")),
    Stack("waitress", "waitress", "no: no socket hand-off for an upgrade",
          lambda port: [sys.executable, "-m", "waitress", f"--listen={HOST}:{port}", APP]),
    Stack("granian WSGI, 1 worker, 1 thread", "granian", "no: websockets for ASGI/RSGI apps only",
          lambda port: granian_argv(APP, port)),
)


def measure(connections: tuple[int, ...], seconds: float, warmup: float,
            progress: Callable[[str], None]) -> dict[str, dict[str, object]]:
    """Each installed stack's req/s and latency for `GET /hello`; the missing ones are listed as such."""
    results: dict[str, dict[str, object]] = {}
    for stack in STACKS:
        entry: dict[str, object] = {"stream": stack.stream}
        results[stack.name] = entry
        if importlib.util.find_spec(stack.module) is None:
            entry["missing"] = f"{stack.module} is not installed (pip install -e '.[bench]')"
            progress(f"  {stack.name}: {entry['missing']}")
            continue
        url_line = stack.module in {"httptools", "werkzeug"}  # `benchmarks.hello` picks a port and prints it
        port = None if url_line else free_port()
        with Server(f"hello-{stack.module}", stack.argv(port or 0), port=port, url_line=url_line,
                    ready_path="/hello") as server:
            levels: dict[str, LoadResult] = {}
            for count in connections:
                levels[str(count)] = run(server.port or 0, HELLO, count, seconds, warmup)
            entry["rest"] = {count: result.as_dict() for count, result in levels.items()}
            progress(f"  {stack.name}: " + ", ".join(f"{result.rps:,.0f} req/s at c={count}"
                                                     for count, result in levels.items()))
    return results
