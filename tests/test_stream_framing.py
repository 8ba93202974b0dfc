"""The stream's own text frames: byte for byte what wsproto builds, and readable by a client that negotiated
permessage-deflate (the frames go out uncompressed, which RFC 7692 allows)."""

from __future__ import annotations

import pytest
from flask import Flask
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from mock_server.spec.validation import SchemaValidator
from mock_server.web.stream import text_frame
from tests.support.stream import RawClient


def wsproto_server() -> WSConnection:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/market-data")))
    list(server.events())
    server.send(AcceptConnection())
    return server


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_what_wsproto_would_send(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # `size` bytes of UTF-8, most of them in two-byte characters
    assert text_frame(text) == wsproto_server().send(TextMessage(data=text))


def test_a_client_that_negotiated_deflate_reads_every_message(base_url: str, app: Flask) -> None:
    client = RawClient(base_url, deflate=True)
    assert client.extensions == ["permessage-deflate"]  # the server accepted it: this is the browsers' path
    document = app.extensions["tradefence.spec"]
    messages = SchemaValidator(document, document.schema_ref("StreamServerMessage"))
    client.send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
    received = client.messages()
    got = [next(received) for _ in range(9)]  # the acknowledgement, then a quote and a trade for each, twice
    for message in got:
        messages.check(message, root="")
    assert [message["seq"] for message in got] == list(range(1, 10))
    assert got[0]["type"] == "subscription" and {m["type"] for m in got[1:]} == {"quote", "trade"}
    client.vanish()
