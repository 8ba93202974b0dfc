"""The `stream_disconnect_after` fault: the connection is cut after N messages with no close frame, once."""

from __future__ import annotations

import json

import pytest
import websocket

from tests.support.live import CheckedSession
from tests.support.stream import stream_url


def read_until_cut(url: str, limit: int = 50) -> tuple[int, bool]:
    """(messages received, whether the connection was cut without a close frame)."""
    connection = websocket.create_connection(url, timeout=5)
    received = 0
    try:
        connection.send(json.dumps({"action": "subscribe", "symbols": ["AAPL", "MSFT", "KO"]}))
        while received < limit:
            opcode, _ = connection.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return received, False
            received += 1
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return received, True
    finally:
        connection.close()
    return received, False


def test_the_connection_is_cut_after_n_messages_then_the_fault_expires(http: CheckedSession, base_url: str) -> None:
    fault = http.post("/_mock/faults", json={"stream_disconnect_after": 3, "count": 1})
    assert fault.status_code == 201, fault.text
    received, cut = read_until_cut(stream_url(base_url))
    assert (received, cut) == (3, True)
    received, cut = read_until_cut(stream_url(base_url), limit=6)
    assert received == 6 and not cut  # count 1: the next connection is untouched


@pytest.mark.parametrize("after", [0])
def test_zero_cuts_right_after_the_handshake(http: CheckedSession, base_url: str, after: int) -> None:
    http.post("/_mock/faults", json={"stream_disconnect_after": after, "count": 1})
    assert read_until_cut(stream_url(base_url)) == (0, True)
