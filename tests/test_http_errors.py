"""Bad input of every kind gets its own clear status and the error envelope — never a 500, never HTML."""

from __future__ import annotations

import pytest

from tests.support.live import CheckedSession

ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def test_malformed_json_is_400_4001(trader: CheckedSession) -> None:
    response = trader.post("/v1/orders", data=b'{"symbol": "AAPL",', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 4001


def test_nan_is_not_json(trader: CheckedSession) -> None:
    response = trader.post("/v1/orders", data=b'{"symbol":"AAPL","type":"MARKET","side":"BUY","quantity":NaN}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == 4001


def test_wrong_content_type_is_415(trader: CheckedSession) -> None:
    response = trader.post("/v1/orders", data="symbol=AAPL", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == 4015


def test_missing_body_is_400_naming_the_body(trader: CheckedSession) -> None:
    response = trader.post("/v1/orders")
    assert response.status_code == 400 and response.json()["error"]["field"] == "body"


def test_unknown_route_is_404_envelope(trader: CheckedSession) -> None:
    response = trader.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 4004


def test_wrong_method_is_405_with_allow(trader: CheckedSession) -> None:
    response = trader.put("/v1/orders", json=ORDER)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == 4005
    assert "POST" in response.headers["Allow"]


def test_body_over_one_mebibyte_is_413(trader: CheckedSession) -> None:
    response = trader.post("/v1/orders", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 4013


@pytest.mark.parametrize(("body", "field"), [
    ({**ORDER, "quantity": 0}, "quantity"),
    ({**ORDER, "quantity": "ten"}, "quantity"),
    ({**ORDER, "side": "HOLD"}, "side"),
    ({**ORDER, "type": "LIMIT"}, "price"),
    ({**ORDER, "price": 10}, "price"),
    ({**ORDER, "colour": "red"}, "colour"),
    ({"type": "MARKET", "side": "BUY", "quantity": 1}, "symbol"),
    ({**ORDER, "client_order_id": "has space"}, "client_order_id"),
    ([ORDER], None),
])
def test_validation_errors_name_the_field(trader: CheckedSession, body: object, field: str | None) -> None:
    response = trader.post("/v1/orders", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 4000
    assert error.get("field") == field
    if field:
        assert field in error["message"]


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=abc", "limit"), ("status=weird", "status")])
def test_bad_query_parameters_are_400(trader: CheckedSession, query: str, field: str) -> None:
    response = trader.get(f"/v1/orders?{query}")
    assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_every_response_has_a_request_id_and_client_ids_are_echoed(trader: CheckedSession) -> None:
    response = trader.get("/v1/account", headers={"X-Request-Id": "my-trace-1"})
    assert response.headers["X-Request-Id"] == "my-trace-1"
    generated = trader.get("/v1/account").headers["X-Request-Id"]
    assert generated.startswith("req_")


def test_batch_too_large_is_a_clear_error(trader: CheckedSession) -> None:
    ops = [{"action": "CANCEL_ORDER", "data": {"order_id": "ord_x"}}] * 101
    response = trader.post("/v1/batch", json={"operations": ops})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "operations"


def test_request_log_is_one_line_without_secrets(trader: CheckedSession, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    def lines() -> list[str]:
        """This request's lines: the fixtures' own requests (minting the token) may log while capture is on."""
        return [r.getMessage() for r in caplog.records
                if r.name == "tradefence.requests" and r.getMessage().endswith(" " + request_id)]

    with caplog.at_level(logging.INFO, logger="tradefence.requests"):
        request_id = trader.get("/v1/account?access_token=supersecret").headers["X-Request-Id"]
        assert len(lines()) == 1  # written before the answer was handed back
    (line,) = lines()
    method, path, status, ms, request_id = line.split()
    assert (method, path, status) == ("GET", "/v1/account", "200") and ms.endswith("ms") and request_id
    assert "supersecret" not in line and "Bearer" not in line


@pytest.mark.parametrize("raw", [
    b'{"quantity": 153.0, "price": 150.25}',
    '{"symbol": "AAPL"}'.encode("utf-16"),  # json.loads detects UTF-16 and UTF-32 from the bytes
    b'[1, -2.5e3, "\\u00e9"]',
])
def test_bodies_parse_as_json_loads_would_with_integral_numbers_as_integers(raw: bytes) -> None:
    import json

    from mock_server.web.routing import _JSON, _number

    expected = json.loads(raw, parse_float=_number)
    assert _JSON.decode(raw.decode(json.detect_encoding(raw), "surrogatepass")) == expected
    if raw.startswith(b'{"quantity"'):
        assert type(expected["quantity"]) is int and expected["quantity"] == 153


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON", " application/json ",
    "application/json;", 'application/json; profile="a;b"', "text/plain", "", "application/x-www-form-urlencoded",
])
def test_the_body_media_type_is_read_as_werkzeug_reads_it(content_type: str) -> None:
    """The pipeline reads the media type straight from the environ (cheaper): it must be Werkzeug's `mimetype`."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from mock_server.web.routing import media_type

    environ = EnvironBuilder(path="/v1/orders", method="POST", data=b"{}").get_environ()
    environ["CONTENT_TYPE"] = content_type
    assert media_type(environ) == Request(environ).mimetype
