"""The console script as users run it (`python -m mock_server`), in a process of its own on a free port."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


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
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"Tradefence Sandbox on (http://127\.0\.0\.1:\d+) ", line)
        assert match, line + (process.stderr.read() if process.poll() is not None else "")
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
