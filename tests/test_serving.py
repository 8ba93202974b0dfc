"""The emulator's HTTP server (`mock_server/serving/`), over real loopback sockets: HTTP/1.1 keep-alive and
pipelining, bodies in every framing, the limits that keep a bad client to its own connection, the controls that
let a fault hold back or drop one answer, and the hand-over of an upgrade to a thread of its own."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask

from mock_server.serving import serve
from mock_server.serving.connection import Limits
from mock_server.serving.controls import RESPONSE_CONTROLS
from tests.support.wire import RELEASE_SECONDS, Echo, closed_by_server, connect, read_response, running


def test_one_connection_carries_many_requests_and_closes_when_asked() -> None:
    with running(Echo()) as server, connect(server) as sock:
        buffer = bytearray()
        for number in range(3):
            sock.sendall(f"GET /n{number}?q=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body = read_response(sock, buffer)
            assert status == "HTTP/1.1 200 OK"
            assert json.loads(body)["path"] == f"/n{number}"
            assert "connection" not in headers and headers["date"].endswith("GMT")
        sock.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _, headers, _ = read_response(sock, buffer)
        assert headers["connection"] == "close"
        assert closed_by_server(sock)


def test_http_1_0_closes_after_its_answer() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        _status, headers, body = read_response(sock, bytearray())
        assert json.loads(body)["path"] == "/old" and headers["connection"] == "close"
        assert closed_by_server(sock)


def test_pipelined_requests_are_answered_in_order() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"".join(f"GET /p{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in range(5)))
        buffer = bytearray()
        assert [json.loads(read_response(sock, buffer)[2])["path"] for _ in range(5)] == [f"/p{n}" for n in range(5)]


def test_bodies_arrive_whole_with_their_length_however_they_were_framed() -> None:
    with running(Echo()) as server, connect(server) as sock:
        buffer = bytearray()
        sock.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Thing: one\r\n\r\nhel")
        sock.sendall(b"lo")
        seen = json.loads(read_response(sock, buffer)[2])
        assert (seen["body"], seen["length"], seen["x"]) == ("hello", "5", "one")
        sock.sendall(b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        seen = json.loads(read_response(sock, buffer)[2])
        assert (seen["body"], seen["length"]) == ("abcde", "5")


def test_a_client_that_expects_100_continue_is_told_to_go_on() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        buffer = bytearray()
        assert read_response(sock, buffer)[0] == "HTTP/1.1 100 Continue"
        sock.sendall(b"ok")
        assert json.loads(read_response(sock, buffer)[2])["body"] == "ok"


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_a_body_over_the_cap_is_refused_by_the_app_unread_and_the_connection_closes(framing: str) -> None:
    with running(Echo()) as server, connect(server) as sock:
        if framing == "declared":
            sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 1000)
        else:
            sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"".join(b"10\r\n" + b"y" * 16 + b"\r\n" for _ in range(10)))
        status, headers, _ = read_response(sock, bytearray())
        assert status == "HTTP/1.1 413 Payload Too Large" and headers["connection"] == "close"
        assert closed_by_server(sock)


def test_a_head_over_the_cap_gets_431_and_a_close() -> None:
    app = Echo()
    with running(app, Limits(max_head_bytes=1024)) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Thing: " + b"z" * 2000 + b"\r\n\r\n")
        status, _headers, body = read_response(sock, bytearray())
        assert status == "HTTP/1.1 431 Request Header Fields Too Large" and b"too large" in body
        assert closed_by_server(sock)
    assert app.seen == 0


@pytest.mark.parametrize("garbage", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
                                     b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"])
def test_a_malformed_request_gets_400_and_a_close(garbage: bytes) -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(garbage)
        status, _headers, body = read_response(sock, bytearray())
        assert status == "HTTP/1.1 400 Bad Request" and body.startswith(b"Malformed HTTP request")
        assert closed_by_server(sock)


def test_requests_before_a_malformed_one_are_still_answered() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n")
        buffer = bytearray()
        assert json.loads(read_response(sock, buffer)[2])["path"] == "/fine"
        assert read_response(sock, buffer)[0] == "HTTP/1.1 400 Bad Request"


def test_head_keeps_the_length_and_sends_no_body() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        data = bytearray()
        while b"/after" not in data:
            data += sock.recv(65536)
        first, _, rest = bytes(data).partition(b"\r\n\r\n")
        assert b"Content-Length: " in first and not first.endswith(b"0")
        assert rest.startswith(b"HTTP/1.1 200 OK")  # the HEAD answer carried no body before it


def test_an_answer_held_back_holds_up_no_other_connection() -> None:
    app = Echo()
    with running(app) as server, connect(server) as held, connect(server) as other:
        held.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        held.settimeout(0.2)
        with pytest.raises(TimeoutError):  # nothing yet: the answer is held back
            held.recv(1)
        other.sendall(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(read_response(other, bytearray())[2])["path"] == "/quick"
        assert app.seen == 2  # the held request was handled at once; only its answer waits
        held.settimeout(RELEASE_SECONDS + 5)
        assert json.loads(read_response(held, bytearray())[2])["path"] == "/hold"


class Closing:
    """A WSGI app whose body's `close()` records its path (where the emulator records its journal entry); `/fail`
    raises in `close()`, `/hold` holds its answer back."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/hold":
            environ[RESPONSE_CONTROLS].delay(RELEASE_SECONDS)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(path)))])
        return _ClosingBody(self, path)


class _ClosingBody:
    def __init__(self, app: Closing, path: str) -> None:
        self._app, self._path = app, path

    def __iter__(self) -> Iterator[bytes]:
        yield self._path.encode()

    def close(self) -> None:
        if self._path == "/fail":
            raise RuntimeError("close failed")
        self._app.closed.append(self._path)


def test_the_app_has_closed_its_body_before_the_client_has_the_answer() -> None:
    """PEP 3333's close() is where an app finishes up (the emulator's journal): a client that reads the journal
    right after an answer, on any connection, must find that request in it."""
    app = Closing()
    with running(app) as server, connect(server) as sock:
        buffer = bytearray()
        for number, path in enumerate(("/first", "/second"), start=1):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert read_response(sock, buffer)[2] == path.encode()
            assert len(app.closed) == number and app.closed[-1] == path


def test_a_body_whose_close_fails_is_logged_and_the_connection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    app = Closing()
    with caplog.at_level(logging.ERROR), running(app) as server, connect(server) as sock:
        buffer = bytearray()
        sock.sendall(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, buffer)[2] == b"/fail"
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, buffer)[2] == b"/after"
    assert "the app failed closing its answer to GET /fail" in caplog.text


def test_work_after_each_answer_runs_once_per_answer_after_it_is_written() -> None:
    """`after_answer` (where the CLI collects garbage) runs on the loop once per answer, after writing it."""
    app = Closing()
    ran = threading.Semaphore(0)
    with running(app, after_answer=ran.release) as server, connect(server) as sock:
        buffer = bytearray()
        for path in ("/one", "/two"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert read_response(sock, buffer)[2] == path.encode()
            assert ran.acquire(timeout=5)
        assert not ran.acquire(timeout=0)


def test_an_answer_held_back_is_closed_at_once() -> None:
    """The app's bookkeeping (the journal) does not wait for a latency fault's delay to pass."""
    app = Closing()
    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):  # the answer is held back...
            sock.recv(1)
        assert app.closed == ["/hold"]  # ...and its body closed already


@pytest.mark.parametrize("path", ["/drop", "/drop-later"])
def test_a_dropped_answer_closes_the_connection_without_a_byte(path: str) -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert closed_by_server(sock)


def test_an_idle_connection_is_closed() -> None:
    with running(Echo(), Limits(idle_seconds=0.2)) as server, connect(server) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock, bytearray())
        assert closed_by_server(sock)  # within the socket's 5 s timeout, long after 0.2 s


@pytest.mark.parametrize("answered_before", [0, 1])
def test_a_half_sent_request_is_closed_after_the_idle_limit(answered_before: int) -> None:
    with running(Echo(), Limits(idle_seconds=0.2)) as server, connect(server) as sock:
        for _ in range(answered_before):
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(sock, bytearray())
        sock.sendall(b"GET /slowloris HTTP/1.1\r\nHost: x\r\n")
        assert closed_by_server(sock)


def test_many_clients_at_once_each_get_every_answer() -> None:
    app = Echo()

    def client(number: int) -> list[str]:
        with requests.Session() as session:
            return [session.post(f"{url}/c{number}", data=f"{number}-{i}", timeout=10).json()["body"]
                    for i in range(40)]

    with serve(app) as url, ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(client, range(8)))
    assert answers == [[f"{number}-{i}" for i in range(40)] for number in range(8)]
    assert app.seen == 8 * 40


def test_an_upgrade_request_for_a_plain_route_is_answered_and_closed() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        _status, headers, body = read_response(sock, bytearray())
        assert json.loads(body)["path"] == "/plain" and headers["connection"] == "close"
        assert closed_by_server(sock)


def test_bytes_sent_with_an_upgrade_request_are_refused() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly")
        assert read_response(sock, bytearray())[0] == "HTTP/1.1 400 Bad Request"


def test_shutdown_closes_open_connections_and_stops_listening() -> None:
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock, bytearray())
        server.shutdown()
        assert closed_by_server(sock)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.server_port), timeout=1).close()


def test_the_log_names_paths_never_query_strings(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """Query strings can carry tokens (the stream's access_token)."""
    with caplog.at_level(logging.INFO), serve(app) as url:
        assert requests.get(f"{url}/_mock/clock?access_token=secret", timeout=5).status_code == 200
    assert any("/_mock/clock" in record.getMessage() for record in caplog.records)
    assert "secret" not in caplog.text


def test_thousands_of_pipelined_requests_are_all_answered_in_order() -> None:
    """Parsed a slice at a time while answers go out (`connection.PARSE_AHEAD`): nothing is lost or reordered."""
    count = 3000
    with running(Echo()) as server, connect(server) as sock:
        sock.sendall(b"".join(f"GET /p{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in range(count)))
        buffer = bytearray()
        paths = [json.loads(read_response(sock, buffer)[2])["path"] for _ in range(count)]
        assert paths == [f"/p{n}" for n in range(count)]
