"""Issue 16, the server's part: what a hostile or careless client could do to everyone else, each on loopback,
bounded in time (socket timeouts, waits for conditions) and memory (a few MB, or a capped subprocess)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any

import pytest
from flask import Flask

from mock_server.serving import serve
from mock_server.serving.connection import Limits
from tests.support.stream import StreamClient
from tests.support.wire import closed_by_server, connect, read_response, running

Environ = dict[str, Any]


class Gate:
    """A WSGI app whose `/slow` blocks until `open` is set (at most 10 s); everything else answers at once."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()

    def __call__(self, environ: Environ, start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/slow":
            self.entered.set()
            self.open.wait(10)
        body = json.dumps({"path": path}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def get(path: str, *extra: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: x", *extra]) + "\r\n\r\n").encode()


# -- one client stalls everyone --------------------------------------------------------------------------------

def test_a_slow_request_holds_up_no_other_client() -> None:
    """The app ran on the event loop: a request that took a second held every connection for that second."""
    app = Gate()
    with running(app) as server, connect(server) as slow, connect(server) as other:
        slow.sendall(get("/slow") + get("/after-slow") * 50)  # and pipelined behind it, its own queue
        assert app.entered.wait(5)
        other.sendall(get("/quick"))
        assert json.loads(read_response(other, bytearray())[2]) == {"path": "/quick"}
        app.open.set()
        buffer = bytearray()
        assert [json.loads(read_response(slow, buffer)[2])["path"] for _ in range(51)] == (
            ["/slow"] + ["/after-slow"] * 50)


# -- a header that never ends ----------------------------------------------------------------------------------

def test_a_header_that_never_ends_is_refused_431_as_it_grows() -> None:
    """httptools keeps a partial header name or value to itself until its line ends: counted only at `on_header`,
    one endless header value took 184 MB in a minute and was never refused."""
    with running(Gate(), Limits(max_head_bytes=8 * 1024)) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        answered = None
        for _ in range(64):  # 1 MB at most, in 16 KB pieces
            try:
                sock.sendall(b"a" * 16 * 1024)
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.001)
            try:
                answered = sock.recv(65536)
                break
            except TimeoutError:
                continue
            finally:
                sock.settimeout(5)
        answered = answered or sock.recv(65536)
        assert answered.startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("piece", [b"X-Long-Name-" * 2000 + b": v", b"X-Many: " + b"v\r\nX-Many: " * 2000])
def test_a_head_split_across_many_reads_is_counted_whole(piece: bytes) -> None:
    with running(Gate(), Limits(max_head_bytes=8 * 1024)) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for start in range(0, len(piece), 1000):
            try:
                sock.sendall(piece[start:start + 1000])
            except (BrokenPipeError, ConnectionResetError):
                break
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"\r\n\r\n")
        assert read_response(sock, bytearray())[0].startswith("HTTP/1.1 431 ")


def test_pipelined_requests_with_bodies_are_not_mistaken_for_a_long_head() -> None:
    """The head counter must not count the newline-free body of the request before it."""
    body = b"x" * 60_000
    post = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with running(Gate(), Limits(max_head_bytes=8 * 1024, max_body_bytes=100_000)) as server, \
            connect(server) as sock:
        sock.sendall(post * 3 + b"GET /last HTTP/1.1\r\nHo")
        sock.sendall(b"st: x\r\n\r\n")
        buffer = bytearray()
        paths = [json.loads(read_response(sock, buffer)[2])["path"] for _ in range(4)]
        assert paths == ["/p", "/p", "/p", "/last"]


# -- HTTP as RFC 9112 says -------------------------------------------------------------------------------------

@pytest.mark.parametrize("head", [b"GET /x HTTP/1.1\r\n\r\n", b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
                         ids=["no-host", "two-hosts"])
def test_http_1_1_needs_exactly_one_host(head: bytes) -> None:
    with running(Gate()) as server, connect(server) as sock:
        sock.sendall(head)
        status, _headers, body = read_response(sock, bytearray())
        assert status == "HTTP/1.1 400 Bad Request" and b"Host" in body
        assert closed_by_server(sock)


def test_http_1_0_may_go_without_host() -> None:
    with running(Gate()) as server, connect(server) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        assert json.loads(read_response(sock, bytearray())[2]) == {"path": "/old"}


def test_http_0_9_is_refused() -> None:
    with running(Gate()) as server, connect(server) as sock:
        sock.sendall(b"GET /x\r\n\r\n")  # llhttp reads headers after a request line without a version
        status, _headers, body = read_response(sock, bytearray())
        assert status == "HTTP/1.1 400 Bad Request" and b"HTTP/0.9" in body
        assert closed_by_server(sock)


def test_keep_alive_on_http_1_0_is_said_in_the_answer() -> None:
    with running(Gate()) as server, connect(server) as sock:
        buffer = bytearray()
        for path in ("/one", "/two"):
            sock.sendall(f"GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            _status, headers, body = read_response(sock, buffer)
            assert headers["connection"] == "keep-alive" and json.loads(body) == {"path": path}


# -- caps on connections and websockets ------------------------------------------------------------------------

def test_past_the_connection_cap_a_newcomer_gets_503_with_retry_after() -> None:
    with running(Gate(), Limits(max_connections=3)) as server:
        held = [connect(server) for _ in range(3)]
        try:
            buffer = bytearray()
            for sock in held:  # each is a connection of the server's by the time it is answered
                sock.sendall(get("/mine"))
                assert read_response(sock, buffer)[0] == "HTTP/1.1 200 OK"
            with connect(server) as late:
                late.sendall(get("/late"))
                status, headers, _ = read_response(late, bytearray())
                assert status == "HTTP/1.1 503 Service Unavailable" and headers["retry-after"].isdigit()
                assert closed_by_server(late)
            held[0].sendall(get("/still"))  # the others go on
            assert read_response(held[0], buffer)[0] == "HTTP/1.1 200 OK"
        finally:
            for sock in held:
                sock.close()


def test_the_server_serves_again_once_connections_close() -> None:
    with running(Gate(), Limits(max_connections=1)) as server:
        with connect(server) as first:
            first.sendall(get("/a"))
            read_response(first, bytearray())
        for _ in range(100):  # the server sees the close a moment later: wait for it, never sleep
            with connect(server) as again:
                again.sendall(get("/b"))
                if read_response(again, bytearray())[0] == "HTTP/1.1 200 OK":
                    return
        pytest.fail("never served again")


def test_descriptor_sockets_are_bounded_per_server_not_per_client() -> None:
    """A client that opens connections without end holds at most `max_connections` of the server's."""
    with running(Gate(), Limits(max_connections=8)) as server:
        socks = [socket.create_connection(("127.0.0.1", server.server_port), timeout=5) for _ in range(40)]
        try:
            refused = 0
            for sock in socks:
                sock.sendall(get("/n"))
                try:
                    status = read_response(sock, bytearray())[0]
                except (ConnectionError, OSError):
                    refused += 1  # closed unanswered: the server was already answering enough refusals
                    continue
                refused += status.startswith("HTTP/1.1 503")
            assert refused >= 40 - 8
        finally:
            for sock in socks:
                sock.close()


def test_past_the_websocket_cap_a_stream_client_is_closed_with_1013(app: Flask) -> None:
    """Every websocket session holds a thread: 2,000 clients were 4,004 threads. Past the cap a newcomer is told
    to come back later, in websocket terms; the sessions already open go on."""
    with serve(app, limits=Limits(max_websockets=1)) as url:
        first = StreamClient(url, app)
        try:
            first.subscribe("AAPL")
            assert first.recv()["type"] == "subscription"
            late = StreamClient(url, app)
            assert late.expect_close() == (1013, "Too many streams; try again later")
            first.subscribe("MSFT")
            assert first.until(lambda message: message["type"] == "subscription")["symbols"]
        finally:
            first.close()
