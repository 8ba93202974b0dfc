"""Issue 16, the server's part, in a child process: descriptors running out, and memory after large bodies."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from tests.support.subserver import Child, child_server
from tests.support.wire import read_response

MIB = 1024 * 1024


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def get(child: Child) -> str:
    with socket.create_connection(("127.0.0.1", child.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return read_response(sock, bytearray())[0]


def test_out_of_descriptors_is_one_log_line_and_serving_resumes() -> None:
    """With `ulimit -n 1024` and 1,100 connections, asyncio logged a traceback per accept attempt (45.6 MB of log
    per 10 s). Now: accepting pauses, one line says why, and it resumes once descriptors are free."""
    with child_server(nofile=48, limits={"max_connections": 1000}) as child:
        held = [socket.create_connection(("127.0.0.1", child.port), timeout=5) for _ in range(80)]
        try:
            assert wait_for(lambda: any("file descriptors" in line for line in child.errors)), child.errors
        finally:
            for sock in held:
                sock.close()
        assert wait_for(lambda: get(child) == "HTTP/1.1 200 OK")
        text = "".join(child.errors)
        assert "Traceback" not in text and len(child.errors) <= 4, text[:2000]
        assert sum("out of file descriptors" in line for line in child.errors) == 1


def test_memory_held_by_large_bodies_is_returned_when_their_connections_close() -> None:
    """300 connections each holding 1 MB - 1 of a 1 MB body took RSS from 64 to 379 MB, and it stayed there after
    they closed. 64 connections here: the same shape, a fifth of the memory."""
    count, size = 64, MIB
    with child_server(limits={"max_body_bytes": size}) as child:
        assert get(child) == "HTTP/1.1 200 OK"
        baseline = child.rss_bytes()
        socks = [socket.create_connection(("127.0.0.1", child.port), timeout=5) for _ in range(count)]
        try:
            for sock in socks:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            piece = b"x" * (64 * 1024)
            for start in range(0, size - 1, len(piece)):
                for sock in socks:
                    sock.sendall(piece[:size - 1 - start])
            assert wait_for(lambda: child.rss_bytes() > baseline + count * size * 3 // 4), (
                f"the bodies never arrived: {child.rss_bytes() / MIB:.0f} MiB")
        finally:
            for sock in socks:
                sock.close()
        assert wait_for(lambda: child.rss_bytes() < baseline + 16 * MIB), (
            f"RSS {baseline / MIB:.0f} MiB before, {child.rss_bytes() / MIB:.0f} MiB after the connections closed")
