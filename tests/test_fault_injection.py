"""Injected faults over real HTTP: latency, forced errors, 5xx, dropped connections, counts, seeded probability.

Every forced answer still goes through CheckedSession, so each is checked against the operation's documented
responses; the dropped connection uses plain requests, since there is no response to check.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.conftest import mint
from tests.support.live import CheckedSession

ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def add(http: CheckedSession, **fault: Any) -> dict[str, Any]:
    response = http.post("/_mock/faults", json=fault)
    assert response.status_code == 201, response.text
    return response.json()


def test_latency_is_added_to_the_named_operation_only(http: CheckedSession, trader: CheckedSession) -> None:
    fault = add(http, operation="getAccount", latency_ms=400)
    assert fault["latency_ms"] == 400 and fault["remaining"] is None and fault["id"].startswith("flt_")
    started = time.monotonic()
    assert trader.get("/v1/account").status_code == 200
    assert time.monotonic() - started >= 0.4  # a lower bound: a busy machine only adds to it
    assert trader.get("/v1/market/clock").status_code == 200
    # Applied to the named operation only: counted, not timed (a busy machine makes any request slow).
    (listed,) = http.get("/_mock/faults").json()["data"]
    assert listed["applied"] == 1


def test_a_forced_2001_has_retry_after_and_rate_limit_headers_then_expires(http: CheckedSession,
                                                                          trader: CheckedSession) -> None:
    add(http, operation="createOrder", error_code=2001, retry_after=2, count=1)
    refused = trader.post("/v1/orders", json=ORDER)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == 2001 and refused.json()["error"]["retry_after"] == 2
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0" and refused.headers["X-RateLimit-Limit"] == "1000"
    assert int(refused.headers["X-RateLimit-Reset"]) >= 1
    # count 1: used up, so the fault is gone and the next order goes through.
    assert http.get("/_mock/faults").json()["data"] == []
    assert trader.post("/v1/orders", json=ORDER).status_code == 201


def test_count_applies_n_times(http: CheckedSession, trader: CheckedSession) -> None:
    fault = add(http, operation="getMarketClock", status=500, count=3)
    statuses = [trader.get("/v1/market/clock").status_code for _ in range(5)]
    assert statuses == [500, 500, 500, 200, 200]
    assert http.delete(f"/_mock/faults/{fault['id']}").status_code == 404


def test_503_and_502_come_in_the_error_envelope(http: CheckedSession, trader: CheckedSession) -> None:
    add(http, path=r"^/v1/account$", status=503, retry_after=5, count=1)
    unavailable = trader.get("/v1/account")
    assert unavailable.status_code == 503 and unavailable.json()["error"]["code"] == 5003
    assert unavailable.headers["Retry-After"] == "5"
    assert "X-RateLimit-Limit" in unavailable.headers  # a valid token: its bucket is reported as always

    add(http, operation="getAccount", status=502, message="Upstream timed out", count=1)
    bad_gateway = trader.get("/v1/account")
    assert bad_gateway.status_code == 502
    assert bad_gateway.json()["error"]["code"] == 5000
    assert bad_gateway.json()["error"]["message"] == "Upstream timed out"
    assert trader.get("/v1/account").status_code == 200


def test_faults_act_before_authentication(http: CheckedSession) -> None:
    add(http, operation="getAccount", status=503, count=1)
    assert http.get("/v1/account").status_code == 503  # no token at all: the gateway failed first
    assert http.get("/v1/account").status_code == 401


def test_forced_1001_carries_the_bearer_challenge(http: CheckedSession, trader: CheckedSession) -> None:
    add(http, operation="listPositions", error_code=1001, message="The access token expired", count=1)
    refused = trader.get("/v1/positions")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == 1001
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_the_oauth_endpoints_take_faults_too(http: CheckedSession) -> None:
    add(http, operation="token", status=503, count=1)
    add(http, operation="authorize", latency_ms=200, count=1)
    response = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "rt_x",
                                         "client_id": "sandbox-client", "client_secret": "sandbox-secret"})
    assert response.status_code == 503 and response.json()["error"]["code"] == 5003
    started = time.monotonic()
    redirected = http.get("/authorize", params={"client_id": "sandbox-client", "response_type": "code",
                                                "redirect_uri": "http://127.0.0.1:5000/cb"})
    assert redirected.status_code == 302 and time.monotonic() - started >= 0.2


def test_a_dropped_connection_is_a_quick_connection_error(http: CheckedSession, trader: CheckedSession,
                                                          base_url: str) -> None:
    add(http, operation="getAccount", drop_connection=True, count=1)
    with pytest.raises(requests.ConnectionError) as raised:  # a held answer would end in a ReadTimeout instead
        requests.get(f"{base_url}/v1/account", headers={"Authorization": trader.headers["Authorization"]},
                     timeout=10)
    assert not isinstance(raised.value, requests.Timeout)
    assert trader.get("/v1/account").status_code == 200  # the server is fine, and the fault is used up


def test_a_dropped_post_with_a_body_is_a_connection_error_too(http: CheckedSession, trader: CheckedSession,
                                                              base_url: str) -> None:
    add(http, operation="createOrder", drop_connection=True, count=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{base_url}/v1/orders", json=ORDER, timeout=10,
                      headers={"Authorization": trader.headers["Authorization"]})
    # Nothing was placed: the fault acts before the handler.
    assert trader.get("/v1/orders").json()["data"] == []


def pattern(http: CheckedSession, seed: int) -> list[int]:
    assert http.post("/_mock/seed", json={"seed": seed}).status_code == 200
    token = mint(http)
    add(http, operation="getMarketClock", status=500, probability=0.5)
    return [http.get("/v1/market/clock", headers={"Authorization": f"Bearer {token}"}).status_code
            for _ in range(24)]


def test_probability_is_drawn_from_the_seed_and_repeats(http: CheckedSession) -> None:
    first = pattern(http, 7)
    assert set(first) == {200, 500}
    assert pattern(http, 7) == first
    assert pattern(http, 9) != first


def test_faults_never_touch_the_control_plane(http: CheckedSession) -> None:
    add(http, status=503)
    add(http, latency_ms=2000, path="^/_mock")
    assert http.get("/_mock/clock").status_code == 200
    listed = http.get("/_mock/faults")
    assert listed.status_code == 200
    assert [fault["applied"] for fault in listed.json()["data"]] == [0, 0]  # neither the 503 nor the latency


def test_a_global_fault_skips_operations_that_do_not_document_its_status(http: CheckedSession,
                                                                        trader: CheckedSession) -> None:
    add(http, error_code=1002)  # 422: createOrder documents it, getAccount does not
    assert trader.get("/v1/account").status_code == 200
    refused = trader.post("/v1/orders", json=ORDER)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == 1002


@pytest.mark.parametrize(("fault", "field"), [
    ({"operation": "getAccount", "error_code": 1002}, "error_code"),
    ({"operation": "token", "error_code": 1001}, "error_code"),
    ({"operation": "mockReset", "latency_ms": 5}, "operation"),
    ({"operation": "noSuchOperation", "status": 503}, "operation"),
    ({"status": 503, "drop_connection": True}, "drop_connection"),
    ({"status": 504}, "status"),
    ({"error_code": 9999}, "error_code"),
    ({"path": "(", "latency_ms": 1}, "path"),
    ({"probability": 0.5}, "latency_ms"),
    ({"latency_ms": 1, "probability": 1.5}, "probability"),
    ({"stream_disconnect_after": 3, "operation": "getAccount"}, "operation"),
])
def test_faults_that_could_not_apply_are_refused_naming_the_field(http: CheckedSession, fault: dict[str, Any],
                                                                   field: str) -> None:
    refused = http.post("/_mock/faults", json=fault)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] == field


def test_list_delete_and_clear(http: CheckedSession) -> None:
    first = add(http, operation="getAccount", latency_ms=1)
    second = add(http, stream_disconnect_after=5, count=2)
    third = add(http, path="^/v1/orders", error_code=2001, probability=0.25)
    listed = http.get("/_mock/faults").json()["data"]
    assert [fault["id"] for fault in listed] == [first["id"], second["id"], third["id"]]
    assert listed[1]["stream_disconnect_after"] == 5 and listed[2]["probability"] == 0.25
    removed = http.delete(f"/_mock/faults/{second['id']}")
    assert removed.status_code == 200 and removed.json()["id"] == second["id"]
    assert http.delete("/_mock/faults").json() == {"deleted": 2}
    assert http.get("/_mock/faults").json()["data"] == []
    assert http.get("/_mock/state").json()["faults"] == 0


def test_the_stream_fault_is_exposed_to_the_stream_per_connection(http: CheckedSession, app) -> None:
    add(http, stream_disconnect_after=4, count=1)
    faults = app.extensions["tradefence"].faults
    assert faults.stream_disconnect_after() == 4
    assert faults.stream_disconnect_after() is None


def test_a_reset_clears_the_faults(http: CheckedSession) -> None:
    add(http, latency_ms=1)
    http.post("/_mock/reset")
    assert http.get("/_mock/faults").json()["data"] == []
