"""The sandbox face (tests/support/face.py) looks like a real sandbox: no control plane, the default rate limit,
and everything a sandbox serves forwarded unchanged, the market-data websocket included."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.support.face import Face, a_sandbox_serves, sandbox_face
from tests.support.live import spec_session
from tests.support.stream import StreamClient


@pytest.fixture(scope="module")
def face() -> Iterator[Face]:
    with sandbox_face() as face:
        yield face


@pytest.fixture
def token(face: Face) -> str:
    """Minted behind the face: test setup may use the control plane, the suite under test may not."""
    response = requests.post(f"{face.behind}/_mock/tokens", json={"subject": "face-user"}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("target", ["/_mock/clock", "/_mock/", "/%5Fmock/clock", "/_mock/reset", "/",
                                    "http://example.test/_mock/state", "/v1/../_mock/clock",
                                    "//_mock/clock", "/v1//x"])
def test_what_a_sandbox_lacks_is_hidden(target: str) -> None:
    assert not a_sandbox_serves(target)


@pytest.mark.parametrize("target", ["/authorize?client_id=x", "/token", "/market-data", "/v1/account",
                                    "/v1/orders/ord_1?x=/_mock"])
def test_what_a_sandbox_serves_is_forwarded(target: str) -> None:
    assert a_sandbox_serves(target)


def test_the_control_plane_answers_404_through_the_face_and_200_behind_it(face: Face) -> None:
    for path in ("/_mock/clock", "/%5Fmock/clock", "/_mock/"):
        hidden = requests.get(face.url + path, timeout=10)
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.json()["error"]["code"] == 4004 and hidden.headers["X-Request-Id"]
    posted = requests.post(face.url + "/_mock/reset", json={}, timeout=10)
    assert posted.status_code == 404
    assert requests.get(face.behind + "/_mock/clock", timeout=10).status_code == 200


def test_api_answers_pass_through_and_keep_alive(face: Face, token: str) -> None:
    with spec_session(face.url, face.app) as session:
        session.headers["Authorization"] = f"Bearer {token}"
        placed = session.post("/v1/orders", json={"symbol": "AAPL", "type": "LIMIT", "side": "BUY", "quantity": 1,
                                                  "price": 1.0})
        assert placed.status_code == 201, placed.text
        read = session.get(f"/v1/orders/{placed.json()['id']}")
        assert (read.json()["id"], read.json()["status"]) == (placed.json()["id"], "OPEN")
        assert session.delete(f"/v1/orders/{placed.json()['id']}").status_code == 200
    assert session.checked >= 3


def test_pipelined_requests_on_one_connection_are_answered_in_order(face: Face) -> None:
    """A hidden request between two forwarded ones on the same keep-alive connection stays hidden."""
    host, port = face.url.removeprefix("http://").split(":")
    request = "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("".join(request.format(path, host) for path in ("/v1/account", "/_mock/state", "/v1/orders"))
                     .encode())
        received = b""
        while received.count(b"HTTP/1.1 ") < 3:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"401", b"404", b"401"]


def test_the_default_rate_limit_holds_through_the_face(face: Face, token: str) -> None:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        refused = None
        for _ in range(2000):  # 120 burst, 20/s refill: any client faster than 50 ms a request meets a 429
            response = session.get(face.url + "/v1/account", timeout=10)
            if response.status_code == 429:
                refused = response
                break
            assert response.status_code == 200, response.text
    assert refused is not None
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] == "120"


def test_the_market_data_websocket_is_spliced_through(face: Face) -> None:
    client = StreamClient(face.url, face.app)
    try:
        client.subscribe("AAPL")
        assert client.until(lambda m: m["type"] == "subscription")["symbols"] == ["AAPL"]
        assert client.until(lambda m: m["type"] == "quote")["symbol"] == "AAPL"
    finally:
        client.close()


def test_the_market_can_be_closed_behind_the_face() -> None:
    with sandbox_face(market="closed") as closed:
        clock = requests.get(closed.url + "/v1/market/clock", timeout=10,
                             headers={"Authorization": f"Bearer {_mint(closed)}"})
        assert clock.status_code == 200 and clock.json()["is_open"] is False


def _mint(face: Face) -> str:
    return requests.post(f"{face.behind}/_mock/tokens", json={"subject": "face-user"}, timeout=10).json()[
        "access_token"]
