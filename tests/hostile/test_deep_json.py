"""JSON nested past what the parser walks (`[` x 100000) is malformed JSON: 4001 on HTTP, an `error` message on the
stream with the connection kept; the journal shows such a body without failing to list it."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import mint
from tests.support.live import CheckedSession
from tests.support.stream import StreamClient

ABYSS = "[" * 100_000
DEEP_BUT_PARSED = "[" * 600 + "]" * 600  # the parser takes it; masking it for the journal walks deeper


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/orders"), ("POST", "/v1/batch"),
                                              ("POST", "/v1/ai/recommendations"), ("PATCH", "/v1/positions/AAPL"),
                                              ("POST", "/_mock/faults"), ("POST", "/_mock/reset")])
def test_a_body_nested_too_deeply_is_malformed_json(trader: CheckedSession, method: str, path: str) -> None:
    response = trader.request(method, path, data=ABYSS, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == 4001


def test_the_journal_lists_deeply_nested_bodies_and_masks_the_rest(http: CheckedSession) -> None:
    secret = '{"client_secret": "hush", "path": ' + DEEP_BUT_PARSED + "}"
    for body in (ABYSS, secret, '{"client_secret": "hush"}'):
        http.post("/_mock/faults", data=body, headers={"Content-Type": "application/json"})
    listed = http.get("/_mock/journal")
    assert listed.status_code == 200, listed.text
    bodies = [entry["body"] for entry in listed.json()["data"]]
    assert bodies == [{"client_secret": "***"}, "(a JSON body nested too deeply to show)",
                      "(a JSON body nested too deeply to show)"]
    assert "hush" not in listed.text


def test_the_stream_answers_deep_json_with_an_error_and_stays_open(base_url: str, app: Flask,
                                                                    http: CheckedSession) -> None:
    client = StreamClient(base_url, app)
    try:
        client.send("[" * 60_000)  # under the 64 KiB message cap
        error = client.recv()
        assert (error["type"], error["code"]) == ("error", 4001), error
        client.send({"action": "auth", "token": mint(http)})
        assert client.recv()["type"] == "authenticated"
    finally:
        client.close()


LONE = '{"subject": "\\ud800"}'  # JSON escapes half a surrogate pair: no Unicode string has it


@pytest.mark.parametrize("body", [LONE, '{"subject": "a\\uDC00b"}', '{"subject": "ok", "cash": ["\\udbff"]}'])
def test_an_escaped_lone_surrogate_is_malformed_json(http: CheckedSession, body: str) -> None:
    response = http.post("/_mock/tokens", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == 4001


def test_an_escaped_surrogate_pair_is_one_character_and_fine(trader: CheckedSession) -> None:
    body = '{"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1, "client_order_id": "\\ud83d\\ude00"}'
    response = trader.post("/v1/orders", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (201, 400), response.text  # whatever the id's rules: not a malformed body
    assert response.json().get("error", {}).get("code") != 4001


def test_the_stream_answers_a_lone_surrogate_with_an_error_and_stays_open(base_url: str, app: Flask,
                                                                          http: CheckedSession) -> None:
    client = StreamClient(base_url, app)
    try:
        client.send('{"action": "subscribe", "symbols": ["\\ud800"]}')
        error = client.recv()
        assert (error["type"], error["code"]) == ("error", 4001), error
        client.send({"action": "auth", "token": mint(http)})
        assert client.recv()["type"] == "authenticated"
    finally:
        client.close()
