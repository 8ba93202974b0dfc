"""`/market-data` over real websockets: the seed's client, errors, auth, clock-driven ticks, fills, shutdown."""

from __future__ import annotations

import json
import signal
from datetime import datetime

import flask_sock
import pytest
import requests
from flask import Flask

from mock_server.config import Config, ConfigError
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.spec.document import SpecDocument
from mock_server.web.render import timestamp
from tests.conftest import mint
from tests.support.console import console_script
from tests.support.live import CheckedSession, spec_session
from tests.support.stream import RawClient, StreamClient, running, wait_for


def is_type(kind: str, symbol: str | None = None):  # a predicate for StreamClient.until
    return lambda m: m["type"] == kind and (symbol is None or m.get("symbol") == symbol)


def step_of(moment: str, simulator: MarketSimulator) -> str:
    """The rendered start of the simulator step an RFC 3339 instant falls in."""
    return timestamp(simulator.step_start(simulator.step_index(datetime.fromisoformat(moment))))


def test_the_seed_client_subscribes_and_receives_quotes_and_trades(base_url: str, app: Flask) -> None:
    client = StreamClient(base_url, app)
    client.subscribe("AAPL", "GOOGL", "MSFT")  # the integration guide's snippet, as sent by its `ws` client
    ack = client.recv()
    assert ack["type"] == "subscription" and ack["seq"] == 1 and ack["symbols"] == ["AAPL", "GOOGL", "MSFT"]
    snapshot = [client.recv() for _ in range(6)]
    assert [(m["type"], m["symbol"]) for m in snapshot] == [
        ("quote", "AAPL"), ("trade", "AAPL"), ("quote", "GOOGL"), ("trade", "GOOGL"), ("quote", "MSFT"),
        ("trade", "MSFT")]
    quote = snapshot[0]
    assert 0 < quote["bid"] < quote["ask"] and quote["bid_size"] > 0 and quote["ask_size"] > 0
    assert quote["bid"] <= snapshot[1]["price"] <= quote["ask"]
    following = client.until(lambda m: m["type"] == "quote" and m["timestamp"] != quote["timestamp"], timeout=3)
    assert following["timestamp"] > quote["timestamp"]  # the next step, within one tick_seconds (1 s)
    client.close()


def test_unsubscribe_acknowledges_the_remaining_list(base_url: str, app: Flask) -> None:
    client = StreamClient(base_url, app)
    client.subscribe("AAPL", "MSFT")
    client.until(is_type("trade", "MSFT"))
    client.send({"action": "unsubscribe", "symbols": ["AAPL"]})
    ack = client.until(is_type("subscription"))
    assert ack["symbols"] == ["MSFT"]
    later = client.until(lambda m: m["type"] == "quote" and m["timestamp"] > ack["timestamp"], timeout=3)
    assert later["symbol"] == "MSFT"


@pytest.mark.parametrize(("sent", "code", "says"), [
    ("{not json", 4001, "not valid JSON"),
    ("NaN", 4001, "not valid JSON"),
    (json.dumps({"action": "buy", "symbols": ["AAPL"]}), 4000, "'buy' is not one of"),
    (json.dumps({"action": "subscribe"}), 4000, "symbols: required property is missing"),
    (json.dumps({"action": "subscribe", "symbols": []}), 4000, "symbols"),
    (json.dumps({"action": "subscribe", "symbols": ["AAPL"] * 201}), 4000, "symbols"),
    (json.dumps(["subscribe"]), 4000, "Invalid message"),
])
def test_bad_messages_get_an_error_and_the_connection_survives(base_url: str, app: Flask, sent: str, code: int,
                                                               says: str) -> None:
    client = StreamClient(base_url, app)
    client.send(sent)
    error = client.recv()
    assert error["type"] == "error" and error["code"] == code and says in error["message"], error
    if "symbols" in says:
        assert error["field"].startswith("symbols")
    client.subscribe("AAPL")
    assert client.recv()["symbols"] == ["AAPL"]


def test_unknown_symbols_get_1004_and_the_known_ones_still_subscribe(base_url: str, app: Flask) -> None:
    client = StreamClient(base_url, app)
    client.subscribe("AAPL", "ZZZZ9")
    ack, error, quote = client.recv(), client.recv(), client.recv()
    assert ack["symbols"] == ["AAPL"]
    assert error["code"] == 1004 and error["symbols"] == ["ZZZZ9"]
    assert quote["type"] == "quote" and quote["symbol"] == "AAPL"


@pytest.mark.parametrize("how", ["header", "query", "message"])
def test_each_way_of_authenticating_names_the_subject(base_url: str, app: Flask, http: CheckedSession,
                                                     how: str) -> None:
    token = mint(http, subject="streamer")
    client = StreamClient(base_url, app, query=f"access_token={token}" if how == "query" else "",
                          header=[f"Authorization: Bearer {token}"] if how == "header" else None)
    if how == "message":
        client.send({"action": "auth", "token": token})
    authenticated = client.recv()
    assert authenticated["type"] == "authenticated" and authenticated["subject"] == "streamer"


@pytest.mark.parametrize("how", ["header", "query", "message"])
def test_a_bad_token_is_refused_with_1001_and_close_code_4401(base_url: str, app: Flask, how: str) -> None:
    client = StreamClient(base_url, app, query="access_token=forged" if how == "query" else "",
                          header=["Authorization: Bearer forged"] if how == "header" else None)
    if how == "message":
        client.send({"action": "auth", "token": "forged"})
    error = client.recv()
    assert error["type"] == "error" and error["code"] == 1001 and "invalid" in error["message"]
    assert client.expect_close() == (4401, "Authentication failed")


def test_require_auth_refuses_anonymous_clients_with_4401() -> None:
    with running(Config(seed=7, require_auth=True)) as (url, app):
        anonymous = StreamClient(url, app)
        anonymous.subscribe("AAPL")
        error = anonymous.recv()
        assert error["code"] == 1001 and error["message"].startswith("Authentication required")
        assert anonymous.expect_close() == (4401, "Authentication required")

        token = requests.post(f"{url}/_mock/tokens", json={"subject": "quant"}, timeout=5).json()["access_token"]
        signed_in = StreamClient(url, app)
        signed_in.send({"action": "auth", "token": token})
        assert signed_in.recv()["subject"] == "quant"
        signed_in.subscribe("AAPL")
        assert signed_in.recv()["symbols"] == ["AAPL"]


def test_a_frozen_clock_stops_the_ticks_but_not_the_heartbeats_and_advancing_publishes() -> None:
    with running(Config(seed=7, heartbeat_seconds=0.1)) as (url, app):
        http = spec_session(url, app)
        frozen = http.post("/_mock/clock", json={"action": "freeze"}).json()["now"]
        client = StreamClient(url, app)
        client.subscribe("AAPL")
        client.until(is_type("subscription"))  # heartbeats may come first: they go to every connection
        quote = client.until(is_type("quote"))
        assert quote["timestamp"] == step_of(frozen, app.extensions["tradefence"].simulator)
        client.until(is_type("trade"))
        idle = [client.recv(timeout=2) for _ in range(3)]
        assert [m["type"] for m in idle] == ["heartbeat"] * 3
        assert {m["timestamp"] for m in idle} == {frozen}  # the market clock stands still; liveness does not

        moved = http.post("/_mock/clock", json={"action": "advance", "seconds": 60}).json()["now"]
        tick = client.until(is_type("quote"), timeout=2)
        assert tick["timestamp"] == step_of(moved, app.extensions["tradefence"].simulator)


def test_market_orders_fill_at_the_ask_of_a_quote_the_stream_showed() -> None:
    """Fast steps (50 ms) so some of the orders land right after a step boundary, the racy case."""
    with running(Config(seed=7, tick_seconds=0.05, rate_limit_capacity=1000)) as (url, app):
        simulator = app.extensions["tradefence"].simulator
        trader = spec_session(url, app)
        trader.headers["Authorization"] = f"Bearer {mint(trader)}"
        client = StreamClient(url, app)
        client.subscribe("AAPL")
        asks: dict[str, float] = {}
        client.until(is_type("quote", "AAPL"))
        for _ in range(12):
            order = trader.post("/v1/orders", json={"symbol": "AAPL", "type": "MARKET", "side": "BUY",
                                                    "quantity": 1})
            assert order.status_code == 201, order.text
            fill = order.json()["fills"][0]
            step = step_of(fill["timestamp"], simulator)
            asks.update((m["timestamp"], m["ask"]) for m in client.received if m["type"] == "quote")
            if step not in asks:
                shown = client.until(lambda m, step=step: m["type"] == "quote" and m["timestamp"] >= step)
                asks[shown["timestamp"]] = shown["ask"]
            assert step in asks, f"the stream never showed the quote of {step}, where an order filled"
            assert fill["price"] == asks[step]


def test_shutdown_closes_every_socket_with_going_away() -> None:
    with running(Config(seed=7)) as (url, app):
        clients = [StreamClient(url, app) for _ in range(3)]
        for client in clients:
            client.subscribe("MSFT")
            client.recv()
        app.extensions["tradefence"].close()
        for client in clients:
            assert client.expect_close() == (1001, "The server is shutting down")
        assert app.extensions["tradefence"].stream.connection_count == 0


@pytest.mark.parametrize("how", ["reset", "fin"])
def test_a_client_that_vanishes_without_a_close_frame_is_cleaned_up(base_url: str, app: Flask, how: str) -> None:
    hub = app.extensions["tradefence"].stream
    baseline = hub.connection_count
    raw = RawClient(base_url)
    raw.send({"action": "subscribe", "symbols": ["AAPL"]})
    assert next(raw.messages())["type"] == "subscription"
    assert hub.connection_count == baseline + 1
    if how == "reset":
        raw.vanish()
    else:
        raw.sock.close()  # FIN, but no websocket close frame
    assert wait_for(lambda: hub.connection_count == baseline), "the hub kept a dead connection"


def test_the_socket_is_wrapped_before_the_websocket_reader_starts_on_it(
        base_url: str, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """simple_websocket's reader thread starts inside `Server(...)` and may write and close at once (an oversized
    first message): it must only ever hold the wrapped socket, whose close ends the writing and nothing more."""
    handed: list[type] = []

    class Recording(flask_sock.Server):  # type: ignore[misc]
        def __init__(self, environ: dict[str, object], **options: object) -> None:
            handed.append(type(environ["werkzeug.socket"]))
            super().__init__(environ, **options)

    monkeypatch.setattr(flask_sock, "Server", Recording)
    client = StreamClient(base_url, app)
    client.subscribe("AAPL")
    assert client.recv()["type"] == "subscription"
    client.close()
    assert [kind.__name__ for kind in handed] == ["_SerializedSocket"]


def test_a_message_over_the_size_cap_closes_with_1009(base_url: str, app: Flask) -> None:
    client = StreamClient(base_url, app)
    client.send({"action": "subscribe", "symbols": ["A" * 70_000]})
    code, _ = client.expect_close()
    assert code == 1009


def test_plain_http_to_the_stream_gets_the_error_envelope(http: CheckedSession) -> None:
    response = http.get("/market-data")
    assert response.status_code == 400 and response.json()["error"]["code"] == 4000



def test_the_console_script_serves_the_stream_and_closes_it_on_ctrl_c() -> None:
    with console_script() as (process, url):
        client = StreamClient(url, SpecDocument.load())
        client.subscribe("AAPL")
        assert client.recv()["type"] == "subscription"
        process.send_signal(signal.SIGINT)
        assert client.expect_close()[0] == 1001
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("key", ["tick_seconds", "heartbeat_seconds", "stream_queue_size", "stream_auth_timeout"])
def test_stream_settings_that_cannot_work_fail_at_start_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Config(**{key: 0})
