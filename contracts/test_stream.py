"""The market-data websocket: every server message matches its schema; subscribe, errors and sequencing behave.

The seed's client (subscribe, then read JSON) is the baseline; the connection must survive bad input.
"""

from __future__ import annotations

import itertools
import json
import threading
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

LIMIT = 200  # symbols per subscribe or unsubscribe message (StreamSubscribe.symbols maxItems)
HEARTBEAT_SECONDS = 15.0  # the documented interval of heartbeats
SLACK = 2.0  # for the network and the server's scheduling


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
    for tick in ticks_of(messages):
        if tick["symbol"] not in ("AAPL", "MSFT"):
            raise StreamViolation(f"[market-data] {tick['type']} for a symbol never subscribed: {tick}")
    for quote in quotes:
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


def ticks_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] in ("quote", "trade")]


def acknowledgement(connection: websocket.WebSocket, validator: SchemaValidator, action: str,
                    symbols: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send a subscribe or unsubscribe; its acknowledgement, and every message read up to it."""
    connection.send(json.dumps({"action": action, "symbols": symbols}))
    messages = receive(connection, validator, seconds=5, until=lambda m: m["type"] == "subscription")
    acks = [m for m in messages if m["type"] == "subscription"]
    if not acks:
        raise StreamViolation(f"[market-data] {action} is acknowledged: no acknowledgement within 5 s, got "
                              f"{messages[-3:]}")
    return acks[-1], messages


def test_acknowledgements_list_exactly_the_current_set(stream: websocket.WebSocket,
                                                       server_message: SchemaValidator) -> None:
    expected: set[str] = set()
    for action, symbols in (("subscribe", ["AAPL", "MSFT"]), ("subscribe", ["KO", "AAPL"]),
                            ("unsubscribe", ["MSFT"]), ("unsubscribe", ["XOM"]), ("subscribe", ["XOM"])):
        expected = expected | set(symbols) if action == "subscribe" else expected - set(symbols)
        ack, _ = acknowledgement(stream, server_message, action, symbols)
        if sorted(ack["symbols"]) != sorted(expected) or len(ack["symbols"]) != len(set(ack["symbols"])):
            raise StreamViolation(f"[market-data] the acknowledgement lists exactly the current set: after "
                                  f"{action} {symbols} it lists {ack['symbols']}, not {sorted(expected)}")


def test_unsubscribe_removes(stream: websocket.WebSocket, server_message: SchemaValidator) -> None:
    """After its acknowledgement, no tick of an unsubscribed symbol, while the others keep ticking (two steps)."""
    acknowledgement(stream, server_message, "subscribe", ["AAPL", "MSFT"])
    acknowledgement(stream, server_message, "unsubscribe", ["MSFT"])
    steps: set[str] = set()

    def two_steps(message: dict[str, Any]) -> bool:
        if message["type"] == "quote" and message["symbol"] == "AAPL":
            steps.add(message["timestamp"])
        return len(steps) >= 2

    after = receive(stream, server_message, seconds=6, until=two_steps)
    stale = [m for m in ticks_of(after) if m["symbol"] == "MSFT"]
    if stale:
        raise StreamViolation(f"[market-data] unsubscribe removes: {len(stale)} MSFT ticks after its "
                              f"acknowledgement, e.g. {stale[0]}")
    if not [m for m in ticks_of(after) if m["symbol"] == "AAPL"]:
        raise StreamViolation("[market-data] unsubscribe removes only what it names: no AAPL tick within 6 s")


def test_the_symbol_limit_is_answered_and_the_connection_survives(stream: websocket.WebSocket,
                                                                  server_message: SchemaValidator) -> None:
    """200 symbols in one message (the spec's `maxItems`) are answered: the known ones subscribed (the rest get a
    1004). One more gets a 4000 naming the field `symbols`. The connection lives on through both."""
    known = ["AAPL", "MSFT", "KO"]
    unknown = [f"ZQ{n:04d}" for n in range(LIMIT - len(known))]
    try:
        ack, _ = acknowledgement(stream, server_message, "subscribe", known + unknown)
    except (websocket.WebSocketException, OSError) as exc:
        raise StreamViolation(f"[market-data] a subscribe of {LIMIT} symbols is answered: the connection died "
                              f"({exc!r})") from None
    if sorted(ack["symbols"]) != sorted(known):
        raise StreamViolation(f"[market-data] a subscribe of {LIMIT} symbols is answered: it lists {ack['symbols']}")
    stream.send(json.dumps({"action": "subscribe", "symbols": known + unknown + ["ZQ9999"]}))
    def refused(message: dict[str, Any]) -> bool:
        return message["type"] == "error" and message["code"] == 4000 and message.get("field") == "symbols"

    answered = receive(stream, server_message, seconds=5, until=refused)
    if not any(refused(m) for m in answered):
        raise StreamViolation(f"[market-data] {LIMIT + 1} symbols get the documented 4000: got "
                              f"{[m for m in answered if m['type'] != 'quote'][-3:]}")
    ack, _ = acknowledgement(stream, server_message, "unsubscribe", known)
    if ack["symbols"]:
        raise StreamViolation(f"[market-data] the connection survives the symbol limit: it lists {ack['symbols']}")


@pytest.fixture(scope="module")
def idle_stream(tradefence_run: ContractRun, tradefence_credentials: Credentials,
                server_message: SchemaValidator) -> Iterator[list[tuple[float, dict[str, Any]]]]:
    """A connection with no subscription, opened as the module starts and read throughout by a thread of its own:
    its heartbeats come while the other stream tests run, so waiting for them costs little."""
    connection = connect_stream(tradefence_run.target.stream_url, tradefence_run.politeness,
                                header=[f"Authorization: Bearer {tradefence_credentials.access_token}"],
                                sslopt=tradefence_run.options.sslopt)
    seen: list[tuple[float, dict[str, Any]]] = [(time.monotonic(), {"type": "connected"})]

    def read() -> None:
        while True:
            try:
                raw = connection.recv()
            except websocket.WebSocketTimeoutException:
                continue  # quiet for a while: heartbeats are seconds apart
            except (websocket.WebSocketException, OSError):
                return
            if not raw:  # closed
                return
            try:
                seen.append((time.monotonic(), json.loads(raw)))
            except ValueError:
                seen.append((time.monotonic(), {"type": "not JSON", "text": str(raw)[:200]}))

    reader = threading.Thread(target=read, name="idle-stream", daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        connection.close()
        reader.join(timeout=5)


@pytest.fixture(autouse=True, scope="module")
def _idle_stream_from_the_start(idle_stream: list[tuple[float, dict[str, Any]]]) -> None:
    """Opens `idle_stream` before the first test of the module."""


def test_heartbeats_come_within_their_interval(idle_stream: list[tuple[float, dict[str, Any]]],
                                               server_message: SchemaValidator) -> None:
    """An idle connection hears a heartbeat at least every `HEARTBEAT_SECONDS` (the spec's 15 s), each a valid
    message with the next `seq`."""
    deadline = idle_stream[0][0] + HEARTBEAT_SECONDS + SLACK
    while time.monotonic() < deadline and len(beats(idle_stream)) < 1:
        time.sleep(0.2)
    found = beats(idle_stream)
    messages = [message for _, message in idle_stream[1:]]
    for message in messages:
        problems = server_message.errors(message)
        if problems:
            raise StreamViolation(f"[market-data] message breaks StreamServerMessage: {problems[0].message}")
    if not found:
        raise StreamViolation(f"[market-data] heartbeats within their interval: none in "
                              f"{HEARTBEAT_SECONDS + SLACK:.0f} s on an idle connection (got {messages[:3]})")
    moments = [idle_stream[0][0], *(at for at, _ in found)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    if max(gaps) > HEARTBEAT_SECONDS + SLACK:
        raise StreamViolation(f"[market-data] heartbeats within their interval: {max(gaps):.1f} s between two")
    sequence = [m["seq"] for m in messages]
    if sequence != list(range(1, len(sequence) + 1)):
        raise StreamViolation(f"[market-data] seq rises by one from 1: {sequence}")


def beats(seen: list[tuple[float, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    return [(at, message) for at, message in seen if message["type"] == "heartbeat"]
