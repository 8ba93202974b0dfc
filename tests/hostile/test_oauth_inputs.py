"""OAuth inputs a careless or hostile client sends: a redirect URI with a port no URL can have, tokens whose `exp`
no clock can show, and tokens signed with the (seed-derived) key that name a grant that is not theirs."""

from __future__ import annotations

import jwt
import pytest
from flask import Flask

from tests.conftest import mint
from tests.support.live import CheckedSession


@pytest.mark.parametrize("uri", ["http://127.0.0.1:99999/cb", "http://localhost:-1/cb", "http://localhost:http/cb"])
def test_a_redirect_uri_with_an_impossible_port_is_an_untrusted_one(http: CheckedSession, uri: str) -> None:
    query = {"client_id": "sandbox-client", "redirect_uri": uri, "response_type": "code", "state": "s"}
    response = http.get("/authorize", params=query)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "redirect_uri is not registered" in response.text


def test_a_registered_redirect_uri_with_an_impossible_port_is_never_redirected_to(http: CheckedSession) -> None:
    uri = "https://app.example:99999/cb"
    registered = http.post("/_mock/clients", json={"client_id": "porty", "client_secret": "s3cret",
                                                   "redirect_uris": [uri]})
    assert registered.status_code == 201, registered.text
    response = http.get("/authorize", params={"client_id": "porty", "redirect_uri": uri, "response_type": "code"})
    assert response.status_code == 400
    assert "Location" not in response.headers


def _forged(app: Flask, token: str, **changes: object) -> str:
    """`token`'s claims with `changes`, signed with the emulator's own key (anyone who knows the seed has it)."""
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return jwt.encode(claims, app.extensions["tradefence"].config.token_key, algorithm="HS256",
                      headers={"typ": "at+jwt"})


def _account(http: CheckedSession, token: str):
    return http.get("/v1/account", headers={"Authorization": f"Bearer {token}"})


def test_a_forged_token_with_the_real_key_is_accepted_unchanged(app: Flask, http: CheckedSession) -> None:
    """The forging itself is sound: the same claims re-signed still work (so the refusals below are the checks')."""
    assert _account(http, _forged(app, mint(http))).status_code == 200


@pytest.mark.parametrize("exp", [1e20, -1e20, float("nan"), float("inf"), "tomorrow", [1], True],
                         ids=["1e20", "-1e20", "nan", "inf", "string", "list", "bool"])
def test_an_exp_no_clock_can_show_is_an_invalid_token(app: Flask, http: CheckedSession, exp: object) -> None:
    response = _account(http, _forged(app, mint(http), exp=exp))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1001
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("changes", [{"sub": "victim"}, {"client_id": "other-client"},
                                     {"scope": "trading:read trading:write"}],
                         ids=["another-subject", "another-client", "wider-scope"])
def test_a_token_must_match_the_grant_it_names(app: Flask, http: CheckedSession, changes: dict) -> None:
    http.post("/_mock/accounts", json={"subject": "victim"})
    token = mint(http, subject="trader", scope="trading:read")
    response = _account(http, _forged(app, token, **changes))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1001
