"""The server alone in a child process, for what a test cannot do to its own process: lower the descriptor limit,
or read the server's memory from /proc without the test's own allocations in it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_CHILD = """
import json, logging, resource, sys
from mock_server.serving import Server
from mock_server.serving.connection import Limits

options = json.loads(sys.argv[1])
if options.get("nofile"):
    resource.setrlimit(resource.RLIMIT_NOFILE, (options["nofile"], resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

def app(environ, start_response):
    body = environ["wsgi.input"].read()
    answer = str(len(body)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]

server = Server("127.0.0.1", 0, app, Limits(**options.get("limits", {})))
print(server.server_port, flush=True)
server.serve_forever()
"""


class Child:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.errors: list[str] = []  # stderr lines, as they come
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextmanager
def child_server(**options: Any) -> Iterator[Child]:
    """`limits` (Limits' fields) and `nofile` (the soft descriptor limit); always killed on the way out."""
    process = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(options)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), line + (process.stderr.read() if process.stderr else "")
        yield Child(process, int(line))
    finally:
        process.kill()
        process.wait()
