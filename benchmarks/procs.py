"""Servers under test: each one a child process in its own process group, on 127.0.0.1, always stopped.

`Server` is a context manager: leaving the block (normally, on an error or on Ctrl-C) stops the whole process
group, first with SIGTERM and then, after a grace period, SIGKILL. `install_signal_handlers` turns SIGTERM and
SIGHUP into KeyboardInterrupt so that those blocks unwind for them too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import resource
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType

from benchmarks import OUT_DIR, ROOT, HarnessError

BENCH_CA_DIR = OUT_DIR / "ca"  # TRADEFENCE_CA_DIR of the emulators the bench serves over TLS

HOST = "127.0.0.1"
LOG_DIR = OUT_DIR / "logs"


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later: a tiny race, fine on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def install_signal_handlers() -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (`cmd &`)


class Server:
    """One server process. ``url_line`` servers print their URL first on stdout; the others get ``port``.
    ``env`` adds to this process's environment; a None value removes that variable."""

    def __init__(self, name: str, argv: Sequence[str], *, port: int | None = None, url_line: bool = False,
                 ready_path: str = "/", env: dict[str, str | None] | None = None, cwd: Path = ROOT,
                 start_timeout: float = 60.0, stop_timeout: float = 5.0) -> None:
        if not url_line and port is None:
            raise ValueError("a server either prints its URL or is given a port")
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.url_line = url_line
        self.ready_path = ready_path
        merged: dict[str, str | None] = {**os.environ, **(env or {})}
        self.env = {name: value for name, value in merged.items() if value is not None}  # None: unset it
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.url = f"http://{HOST}:{port}" if port is not None else ""
        self.first_line = ""  # a url_line server's line with its URL
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._log_path = LOG_DIR / f"{name}.log"

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = self._log_path.open("wb")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._drain, args=(self.process, log), daemon=True).start()
        if self.url_line:
            self._await_url_line()
        else:
            self._await_http()

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after ``stop_timeout``."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                self._signal_group(process, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(self.stop_timeout)
        finally:  # also when Ctrl-C interrupts the wait: then the interrupt goes on up after the kill
            self._signal_group(process, signal.SIGKILL)  # stragglers in the group (workers, forked helpers)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(self.stop_timeout)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)  # start_new_session: the group id is the child's pid

    # -- readiness -------------------------------------------------------------------------------------------

    def _drain(self, process: subprocess.Popen[bytes], log: object) -> None:
        assert process.stdout is not None
        with log:  # type: ignore[attr-defined]
            for line in process.stdout:
                self._lines.put(line)
                log.write(line)  # type: ignore[attr-defined]
                log.flush()  # type: ignore[attr-defined]
        self._lines.put(None)

    def _await_url_line(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise HarnessError(f"{self.name} printed no URL within {self.start_timeout:.0f} s") from None
            if line is None:
                raise HarnessError(f"{self.name} exited before serving: {self.log_tail()}")
            text = line.decode(errors="replace")
            for word in text.split():
                if word.startswith(("http://", "https://")):
                    self.first_line = text.strip()
                    self.url = word.rstrip(".,)")
                    self.port = int(self.url.rsplit(":", 1)[1])
                    return

    def _await_http(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise HarnessError(f"{self.name} exited before serving: {self.log_tail()}")
            if http_ready(self.port or 0, self.ready_path):
                return
            time.sleep(0.005)
        raise HarnessError(f"{self.name} did not answer on port {self.port} within {self.start_timeout:.0f} s")

    @property
    def scheme(self) -> str:
        return "https" if self.url.startswith("https://") else "http"

    # -- observation -----------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self.process is None:
            raise HarnessError(f"{self.name} is not running")
        return self.process.pid

    def rss_bytes(self) -> int:
        """Resident memory of every process in the server's group (gunicorn: arbiter plus worker)."""
        total = 0
        for pid in group_pids(self.pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def http_ready(port: int, path: str) -> bool:
    """True once the port answers HTTP at all (any status below 500)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def call(port: int, method: str, path: str, body: object = None, token: str | None = None,
         timeout: float = 10.0, scheme: str = "http") -> tuple[int, object]:
    """One JSON request to a server on 127.0.0.1: (status, parsed body or None). Over https the certificate is
    checked against the bench's own CA (`BENCH_CA_DIR`), which the TLS servers it starts are told to use."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    connection: http.client.HTTPConnection
    if scheme == "https":
        trusted = ssl.create_default_context(cafile=BENCH_CA_DIR / "ca.pem")
        connection = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=trusted)
    else:
        connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, None


def _jiffies_to_seconds(jiffies: float) -> float:
    return jiffies / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, since boot)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return _jiffies_to_seconds(sum(values) - values[3] - values[4])  # less idle and iowait


def group_cpu_seconds(pgid: int) -> float:
    total = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return _jiffies_to_seconds(total)


class CpuMeter:
    """Cores used during a block: by the server's process group, and by everything else on the machine that
    is neither the server nor this harness (with the children it waited for, i.e. wrk): other people's work."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.server_cores = 0.0
        self.foreign_cores = 0.0

    def _snapshot(self) -> tuple[float, float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.perf_counter(), machine_busy_seconds(), group_cpu_seconds(self.server.pid),
                time.process_time() + children.ru_utime + children.ru_stime)

    def __enter__(self) -> CpuMeter:
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._snapshot()
        elapsed, machine, server, harness = (b - a for a, b in zip(self._start, end, strict=True))
        self.server_cores = server / elapsed
        self.foreign_cores = max(0.0, (machine - server - harness) / elapsed)
