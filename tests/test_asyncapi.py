"""asyncapi.yaml describes what the emulator really sends: every message of the market-data stream and every webhook
(headers and body) is checked against the message of the same name in the document, with openapi.yaml's schemas
resolved through the document's own `$ref`s, and every message the document says Tradefence sends is seen.

(`make lint` checks that the document itself is valid AsyncAPI 3.0, with the AsyncAPI parser.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mock_server.testing import Sandbox, sandbox

ROOT = Path(__file__).resolve().parent.parent
Message = dict[str, Any]


class AsyncApi:
    """The document's messages by operation and name, each with validators for its payload and headers."""

    def __init__(self) -> None:
        base = (ROOT / "asyncapi.yaml").as_uri()
        self.document = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
        registry = Registry().with_resources([
            (base, Resource(self.document, DRAFT202012)),
            ((ROOT / "openapi.yaml").as_uri(), Resource(yaml.safe_load((ROOT / "openapi.yaml").read_text()),
                                                        DRAFT202012)),
        ])
        self._validator = lambda pointer: Draft202012Validator({"$ref": f"{base}#{pointer}"}, registry=registry,
                                                               format_checker=FormatChecker())
        self._base = base

    def messages(self, operation: str) -> dict[str, str]:
        """Message name → its JSON pointer in the document (`#/components/messages/...`)."""
        found = {}
        for ref in self.document["operations"][operation]["messages"]:
            _, _, channel, _, key = ref["$ref"].split("/")
            target = self.document["channels"][channel]["messages"][key]["$ref"].removeprefix("#")
            found[self._at(target)["name"]] = target
        return found

    def problems(self, pointer: str, payload: Any, headers: dict[str, str] | None = None) -> list[str]:
        found = [f"payload: {e.message}" for e in self._validator(f"{pointer}/payload").iter_errors(payload)]
        if headers is not None:
            found += [f"headers: {e.message}" for e in self._validator(f"{pointer}/headers").iter_errors(headers)]
        return found

    def _at(self, pointer: str) -> Any:
        node: Any = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part]
        return node


@pytest.fixture(scope="module")
def asyncapi() -> AsyncApi:
    return AsyncApi()


@pytest.fixture(scope="module")
def tf() -> Any:
    with sandbox(heartbeat_seconds=0.2) as found:
        yield found


def test_every_stream_message_matches_the_document(asyncapi: AsyncApi, tf: Sandbox) -> None:
    sent_by_server = asyncapi.messages("sendMarketData")
    sent_by_client = asyncapi.messages("receiveStreamRequests")
    ws = websocket.create_connection(tf.stream_url, timeout=5)
    received: list[Message] = []

    def send(message: Message) -> None:
        assert not asyncapi.problems(sent_by_client[message["action"]], message), message
        ws.send(json.dumps(message))

    def until(kind: str) -> Message:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = json.loads(ws.recv())
            received.append(message)
            if message["type"] == kind:
                return message
        raise AssertionError(f"no {kind} message; got {[m['type'] for m in received]}")

    try:
        send({"action": "auth", "token": tf.token("streamer")})
        until("authenticated")
        send({"action": "subscribe", "symbols": ["AAPL", "MSFT"]})
        until("subscription")
        until("quote")
        until("trade")
        send({"action": "subscribe", "symbols": ["NOSUCH"]})
        until("error")
        send({"action": "unsubscribe", "symbols": ["MSFT"]})
        until("subscription")
        until("heartbeat")
    finally:
        ws.close()

    for message in received:
        assert message["type"] in sent_by_server, f"not a message of sendMarketData: {message}"
        problems = asyncapi.problems(sent_by_server[message["type"]], message)
        assert not problems, f"{message}: {problems}"
    assert {m["type"] for m in received} == set(sent_by_server)


def test_every_webhook_matches_the_document(asyncapi: AsyncApi, tf: Sandbox) -> None:
    sent = {name: pointer for operation in ("sendOrderFilled", "sendPositionClosed", "sendAlertTriggered")
            for name, pointer in asyncapi.messages(operation).items()}
    headers = tf.headers("hooked")
    for side in ("BUY", "SELL"):  # a real fill, then a real close
        order = {"symbol": "AAPL", "type": "MARKET", "side": side, "quantity": 2}
        assert requests.post(f"{tf.api_url}/orders", json=order, headers=headers, timeout=10).status_code == 201
    for kind in sent:
        tf.trigger(kind)
    tf.webhooks.wait_for("order.filled", count=3)
    tf.webhooks.wait_for("position.closed", count=2)
    tf.webhooks.wait_for("alert.triggered", count=1)

    deliveries = tf.webhooks.deliveries
    for delivery in deliveries:
        event = delivery.event
        problems = asyncapi.problems(sent[event["type"]], event, delivery.headers)
        assert not problems, f"{event['type']} {delivery.headers}: {problems}"
    assert {d.event["type"] for d in deliveries} == set(sent)
