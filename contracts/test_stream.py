"""The market-data websocket: every server message matches its schema; subscribe, errors and sequencing behave.

The seed's client (subscribe, then read JSON) is the baseline; the connection must survive bad input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from contracts.credentials import Credentials
from contracts.run import ContractRun
from contracts.transport import connect_stream
from mock_server.spec.document import SpecDocument
from mock_server.spec.validation import SchemaValidator


class StreamViolation(AssertionError):
    """A stream contract broken: which check, and the message that broke it."""


@pytest.fixture
def stream(tradefence_run: ContractRun, tradefence_credentials: Credentials) -> Iterator[websocket.WebSocket]:
    connection = connect_stream(tradefence_run.target.stream_url, tradefence_run.politeness,
                                header=[f"Authorization: Bearer {tradefence_credentials.access_token}"],
                                sslopt=tradefence_run.options.sslopt)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session")
def server_message(tradefence_spec_document: SpecDocument) -> SchemaValidator:
    return SchemaValidator(tradefence_spec_document, tradefence_spec_document.schema_ref("StreamServerMessage"))


def receive(connection: websocket.WebSocket, validator: SchemaValidator, *, seconds: float,
            until: Any = None) -> list[dict[str, Any]]:
    """Read messages for up to `seconds` (or until `until(message)`), checking each against the spec."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.settimeout(max(deadline - time.monotonic(), 0.05))
        try:
            raw = connection.recv()
        except websocket.WebSocketTimeoutException:
            break
        try:
            message = json.loads(raw)
        except ValueError:
            raise StreamViolation(f"[market-data] not JSON: {raw[:200]!r}") from None
        problems = validator.errors(message)
        if problems:
            raise StreamViolation(f"[market-data] message breaks StreamServerMessage: {problems[0].message}\n"
                                  f"  message: {json.dumps(message)[:300]}")
        messages.append(message)
        if until is not None and until(message):
            break
    return messages


def test_subscribe_acknowledges_then_ticks_in_sequence(stream: websocket.WebSocket,
                                                       server_message: SchemaValidator) -> None:
    stream.send(json.dumps({"action": "subscribe", "symbols": ["AAPL", "MSFT"]}))
    messages = receive(stream, server_message, seconds=4,
                       until=lambda m: m["type"] == "quote" and m["symbol"] == "MSFT")
    acks = [m for m in messages if m["type"] == "subscription"]
    if not acks or set(acks[0]["symbols"]) != {"AAPL", "MSFT"}:
        raise StreamViolation(f"[market-data] subscribe: no acknowledgement listing both symbols: {messages[:3]}")
    quotes = [m for m in messages if m["type"] == "quote"]
    if not quotes:
        raise StreamViolation("[market-data] subscribe: no quote within 4 s")
    for quote in quotes:
        if quote["symbol"] not in ("AAPL", "MSFT"):
            raise StreamViolation(f"[market-data] quote for a symbol never subscribed: {quote}")
        if quote["bid"] > quote["ask"]:
            raise StreamViolation(f"[market-data] crossed quote (bid > ask): {quote}")
    sequence = [m["seq"] for m in messages]
    if sequence != list(range(sequence[0], sequence[0] + len(sequence))):
        raise StreamViolation(f"[market-data] seq is not consecutive for a client that reads: {sequence}")


def test_unknown_symbol_is_1004_and_the_connection_survives(stream: websocket.WebSocket,
                                                            server_message: SchemaValidator) -> None:
    stream.send(json.dumps({"action": "subscribe", "symbols": ["ZZZZZZ"]}))
    errors = [m for m in receive(stream, server_message, seconds=3, until=lambda m: m["type"] == "error")
              if m["type"] == "error"]
    if not errors or errors[0]["code"] != 1004:
        raise StreamViolation(f"[market-data] unknown symbol: expected an error with code 1004, got {errors}")
    stream.send(json.dumps({"action": "subscribe", "symbols": ["AAPL"]}))
    after = receive(stream, server_message, seconds=3, until=lambda m: m["type"] == "subscription")
    if not any(m["type"] == "subscription" for m in after):
        raise StreamViolation("[market-data] the connection did not survive an unknown symbol")


@pytest.mark.parametrize(("payload", "code"), [("{not json", 4001), (json.dumps({"action": "dance"}), 4000)])
def test_bad_messages_get_protocol_errors(stream: websocket.WebSocket, server_message: SchemaValidator,
                                          payload: str, code: int) -> None:
    stream.send(payload)
    errors = [m for m in receive(stream, server_message, seconds=3, until=lambda m: m["type"] == "error")
              if m["type"] == "error"]
    if not errors or errors[0]["code"] != code:
        raise StreamViolation(f"[market-data] {payload!r}: expected an error with code {code}, got {errors}")
