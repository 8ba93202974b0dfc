"""The control plane over real HTTP: accounts with a given cash, registered OAuth clients, reseeding, the state."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from tests.conftest import mint
from tests.support.live import CheckedSession

REDIRECT = "http://127.0.0.1:5000/my-app/callback"
MY_APP = {"client_id": "my-app", "client_secret": "my-app-secret", "redirect_uris": [REDIRECT],
          "scopes": ["trading:read"]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_account_created_with_cash_is_the_subjects_account(http: CheckedSession) -> None:
    created = http.post("/_mock/accounts", json={"subject": "alice", "cash": 2500.5})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "acc_alice" and created.json()["cash"] == 2500.5

    account = http.get("/v1/account", headers=bearer(mint(http, "alice")))
    assert account.status_code == 200
    assert account.json()["cash"] == 2500.5 and account.json()["buying_power"] == 2500.5

    listed = http.get("/_mock/accounts").json()["data"]
    assert [entry["id"] for entry in listed] == ["acc_alice"]


def test_creating_an_existing_account_with_cash_resets_it(http: CheckedSession) -> None:
    token = mint(http, "bob")
    order = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}
    assert http.post("/v1/orders", json=order, headers=bearer(token)).status_code == 201

    untouched = http.post("/_mock/accounts", json={"subject": "bob"})
    assert untouched.status_code == 200 and untouched.json()["cash"] < 100000
    reset = http.post("/_mock/accounts", json={"subject": "bob", "cash": 10})
    assert reset.status_code == 200 and reset.json()["cash"] == 10
    assert http.get("/v1/positions", headers=bearer(token)).json()["data"] == []


def test_account_requests_are_validated(http: CheckedSession) -> None:
    for body, field in (({"subject": "x y"}, "subject"), ({"subject": "carol", "cash": -1}, "cash"), ({}, "subject")):
        refused = http.post("/_mock/accounts", json=body)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == field, refused.text


def _authorize(http: CheckedSession, redirect_uri: str, challenge: str, scope: str = "trading:read"):
    return http.get("/authorize", params={"client_id": "my-app", "redirect_uri": redirect_uri, "response_type": "code",
                                          "scope": scope, "state": "s1", "login_hint": "dana",
                                          "code_challenge": challenge, "code_challenge_method": "S256"})


def test_a_registered_client_completes_the_code_flow_with_its_exact_redirect_uri(http: CheckedSession) -> None:
    registered = http.post("/_mock/clients", json=MY_APP)
    assert registered.status_code == 201 and registered.json() == MY_APP

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    approved = _authorize(http, REDIRECT, challenge)
    assert approved.status_code == 302
    location = approved.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "client_id": "my-app", "client_secret": "my-app-secret",
                                       "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    access = tokens.json()["access_token"]
    assert http.get("/v1/account", headers=bearer(access)).json()["id"] == "acc_dana"
    # Its scopes are what it was registered with: no trading:write.
    write = http.post("/v1/orders", headers=bearer(access),
                      json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1})
    assert write.status_code == 403 and write.json()["error"]["code"] == 1005
    assert _authorize(http, REDIRECT, challenge, scope="trading:write").headers["Location"].startswith(
        REDIRECT + "?error=invalid_scope")

    wrong_secret = http.post("/token", data={"grant_type": "refresh_token", "client_id": "my-app",
                                             "client_secret": "nope", "refresh_token": tokens.json()["refresh_token"]})
    assert wrong_secret.status_code == 401


def test_a_registered_client_is_refused_any_other_redirect_uri(http: CheckedSession) -> None:
    assert http.post("/_mock/clients", json=MY_APP).status_code == 201
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    for other in (REDIRECT + "/x", REDIRECT + "?next=evil", "http://127.0.0.1:5001/my-app/callback",
                  "http://localhost:5000/my-app/callback", "https://evil.example/cb"):
        refused = _authorize(http, other, challenge)
        assert refused.status_code == 400 and "Location" not in refused.headers, other
        assert refused.headers["Content-Type"].startswith("text/html")


def test_client_registration_is_validated(http: CheckedSession) -> None:
    for body, field in (({**MY_APP, "redirect_uris": []}, "redirect_uris"),
                        ({**MY_APP, "redirect_uris": ["http://127.0.0.1/cb#frag"]}, "redirect_uris.0"),
                        ({**MY_APP, "scopes": ["admin"]}, "scopes.0")):
        refused = http.post("/_mock/clients", json=body)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == field, refused.text


def quote_after_reseed(http: CheckedSession, seed: int) -> dict[str, object]:
    state = http.post("/_mock/seed", json={"seed": seed})
    assert state.status_code == 200, state.text
    assert state.json()["seed"] == seed
    return http.get("/v1/market/quotes/AAPL", headers=bearer(mint(http))).json()


def test_reseeding_changes_quotes_deterministically_at_a_frozen_instant(http: CheckedSession, app: Flask) -> None:
    http.post("/_mock/clock", json={"action": "freeze"})
    http.post("/_mock/clock", json={"action": "set", "to": "2026-11-25T15:30:00Z"})
    first = quote_after_reseed(http, 11)
    other = quote_after_reseed(http, 12)
    again = quote_after_reseed(http, 11)
    assert first == again
    assert (first["bid"], first["ask"]) != (other["bid"], other["ask"])
    assert first["timestamp"].startswith("2026-11-25T15:30:00")
    assert app.extensions["tradefence"].config.seed == 11
    clock = http.get("/_mock/clock").json()
    assert clock == {"now": "2026-11-25T15:30:00.000Z", "frozen": True}


def test_reseeding_starts_state_over(http: CheckedSession, trader: CheckedSession) -> None:
    assert trader.post("/v1/orders", json={"symbol": "AAPL", "type": "MARKET", "side": "BUY",
                                           "quantity": 1}).status_code == 201
    http.post("/_mock/faults", json={"operation": "getAccount", "latency_ms": 1})
    state = http.post("/_mock/seed", json={"seed": 8}).json()
    assert state["accounts"] == 0 and state["orders"] == 0 and state["faults"] == 0
    assert state["journal_size"] > 0  # the journal is kept
    # The signing key follows the seed (none is configured): the old token no longer verifies.
    assert trader.get("/v1/account").status_code == 401


def test_state_summarises_the_emulator(http: CheckedSession, trader: CheckedSession) -> None:
    trader.post("/v1/orders", json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 2})
    trader.post("/v1/orders", json={"symbol": "MSFT", "type": "LIMIT", "side": "BUY", "quantity": 1, "price": 1.0})
    http.post("/_mock/accounts", json={"subject": "erin", "cash": 5})
    http.put("/_mock/market", json={"mode": "closed"})
    state = http.get("/_mock/state").json()
    assert state["seed"] == 7 and state["clock"]["frozen"] is False
    assert state["market_mode"] == "closed" and state["market_open"] is False
    assert (state["accounts"], state["orders"], state["open_orders"], state["positions"]) == (2, 2, 1, 1)
    assert state["rate_limit"] == {"capacity": 1000, "refill_per_second": 1000.0}
    assert state["faults"] == 0 and state["journal_capacity"] == 500 and state["journal_size"] >= 5


def test_a_closed_account_is_gone_and_its_subject_starts_afresh(http: CheckedSession, trader: CheckedSession) -> None:
    placed = trader.post("/v1/orders", json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 3},
                         headers={"Idempotency-Key": "before-close"})
    assert placed.status_code == 201, placed.text
    closed = http.delete("/_mock/accounts/acc_trader")
    assert closed.status_code == 200 and closed.json()["id"] == "acc_trader"
    assert "acc_trader" not in [account["id"] for account in http.get("/_mock/accounts").json()["data"]]
    assert http.get("/_mock/accounts/acc_trader/orders").status_code == 404
    assert http.delete("/_mock/accounts/acc_trader").status_code == 404
    fresh = trader.get("/v1/account").json()  # the token still works: a new account with the starting cash
    assert fresh["cash"] == 100000 and trader.get("/v1/positions").json()["data"] == []
    replayed = trader.post("/v1/orders", json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 3},
                           headers={"Idempotency-Key": "before-close"})
    assert replayed.status_code == 201 and replayed.json()["id"] != placed.json()["id"]


def test_resetting_an_account_forgets_its_idempotency_keys(http: CheckedSession, trader: CheckedSession) -> None:
    order = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}
    key = {"Idempotency-Key": "same-key"}
    first = trader.post("/v1/orders", json=order, headers=key).json()["id"]
    assert http.post("/_mock/reset", json={"account_id": "acc_trader"}).status_code == 200
    again = trader.post("/v1/orders", json=order, headers=key)
    assert again.headers["Idempotent-Replayed"] == "false" and again.json()["id"] != first
    assert trader.get(f"/v1/orders/{again.json()['id']}").status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "set", "to": "9999-12-31T23:59:59Z"}, "to"),
    ({"action": "set", "to": "0001-01-01T00:00:00+01:00"}, "to"),
    ({"action": "set", "to": "8999-12-31T00:00:00Z"}, None),
])
def test_clock_moves_past_its_range_are_400_not_500(http, body, field) -> None:
    response = http.post("/_mock/clock", json=body)
    if field is None:  # in range; a year more is not
        assert response.status_code == 200
        response = http.post("/_mock/clock", json={"action": "advance", "seconds": 31622400})
        field = "seconds"
    assert response.status_code == 400 and response.json()["error"]["field"] == field
    http.post("/_mock/clock", json={"action": "set", "to": "2026-11-25T15:00:00Z"})


def test_lower_case_rfc3339_times_set_the_clock(http) -> None:
    http.post("/_mock/clock", json={"action": "freeze"})  # a running clock reads past .000Z by the answer
    response = http.post("/_mock/clock", json={"action": "set", "to": "2026-11-25t14:30:00z"})
    assert response.status_code == 200 and response.json()["now"] == "2026-11-25T14:30:00.000Z"


def test_reset_of_an_id_that_is_not_an_account_id_is_404(http) -> None:
    assert http.post("/_mock/reset", json={"account_id": "u1"}).status_code == 404
