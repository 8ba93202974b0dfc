"""RFC 6750 bearer checks on the API: 401 with code 1001 for bad tokens, 403 with 1005 for a missing scope."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.conftest import mint
from tests.support.live import CheckedSession


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def forge(http: CheckedSession, **changes: object) -> str:
    claims = {**claims_of(mint(http)), **changes}
    return jwt.encode(claims, "not-the-key-but-long-enough-for-hs256!", algorithm="HS256")


def unsigned(http: CheckedSession) -> str:
    return jwt.encode(claims_of(mint(http)), None, algorithm="none")


@pytest.mark.parametrize("make", [
    lambda http: None,
    lambda http: "",
    lambda http: "garbage",
    lambda http: "Basic abc",
    unsigned,
    forge,
])
def test_bad_tokens_get_401_1001_with_a_bearer_challenge(http: CheckedSession, make) -> None:
    token = make(http)
    headers = {} if token is None else {"Authorization": token if " " in token else f"Bearer {token}"}
    response = http.get("/v1/account", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1001
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer realm=")
    if token:
        assert 'error="invalid_token"' in challenge


def test_expired_token_is_refused_by_the_emulator_clock(http: CheckedSession) -> None:
    token = mint(http)
    assert http.get("/v1/account", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    http.post("/_mock/clock", json={"action": "advance", "seconds": 3601})
    response = http.get("/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_token_of_the_real_clock_is_not_trusted_blindly(http: CheckedSession) -> None:
    """A token expired by the wall clock but signed with the wrong key is still a forgery."""
    token = forge(http, exp=int(time.time()) + 3600)
    assert http.get("/v1/account", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_missing_scope_gets_403_insufficient_scope(http: CheckedSession) -> None:
    token = mint(http, scope="trading:read")
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/v1/orders", headers=headers).status_code == 200
    response = http.post("/v1/orders", headers=headers,
                         json={"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 1005
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="trading:write"' in response.headers["WWW-Authenticate"]
