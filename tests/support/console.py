"""The console script as users run it (`python -m mock_server`), in a process of its own on a free port."""

from __future__ import annotations

import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO


@contextmanager
def console_script(*args: str, env: Mapping[str, str] | None = None,
                   sigint_ignored: bool = False) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Yields the process, once it has printed its URL, and that URL; kills it on the way out if the test left it
    running, so a stop that fails never leaves a server behind. `sigint_ignored` starts it as a shell starts a
    background job (`make mock-up &`): with SIGINT ignored, which the process inherits."""
    argv = [sys.executable, "-m", "mock_server", "--port", "0", "--quiet", *args]
    if sigint_ignored:
        argv = ["sh", "-c", f"trap '' INT; exec {shlex.join(argv)}"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        match = re.match(r"Tradefence Sandbox on (https?://127\.0\.0\.1:\d+) ", line)
        assert match, line + (process.stderr.read() if process.poll() is not None else "")
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


class Lines:
    """The lines a process writes to one of its pipes, read on a thread so a test can wait for one with a deadline
    (a bare `readline` would block for ever on a line that never comes)."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), name="lines", daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first line (from here on) that `pattern` matches; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; seen: {self.seen}") from None
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
