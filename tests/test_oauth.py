"""OAuth 2.0 against the live emulator, driven by a real client library (Authlib) and by hand for the edges."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.support.live import CheckedSession

REDIRECT = "http://127.0.0.1:5000/callback"
CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


def authorize(http: CheckedSession, **params: str) -> dict[str, list[str]]:
    query = {"client_id": "sandbox-client", "redirect_uri": REDIRECT, "response_type": "code",
             "scope": "trading:read trading:write", "state": "xyz", **params}
    response = http.get("/authorize", params={k: v for k, v in query.items() if v is not None})
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(query["redirect_uri"])
    return parse_qs(urlsplit(location).query)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def exchange(http: CheckedSession, code: str, **extra: str) -> object:
    return http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                     **CLIENT, **extra})


def test_authlib_code_flow_with_pkce_refresh_and_rotation_reuse(base_url: str, http: CheckedSession) -> None:
    verifier = secrets.token_urlsafe(48)
    client = OAuth2Session("sandbox-client", "sandbox-secret", scope="trading:read trading:write",
                           redirect_uri=REDIRECT, code_challenge_method="S256")
    url, state = client.create_authorization_url(base_url + "/authorize", code_verifier=verifier)
    assert "code_challenge=" + create_s256_code_challenge(verifier) in url
    redirect = http.get(url)
    assert redirect.status_code == 302
    token = client.fetch_token(base_url + "/token", authorization_response=redirect.headers["Location"],
                               code_verifier=verifier, state=state)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600

    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert {"sub", "client_id", "scope", "exp", "iat", "jti"} <= set(claims)
    assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"

    account = client.get(base_url + "/v1/account")
    http.check(account)
    assert account.status_code == 200 and account.json()["id"] == "acc_sandbox-user"

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(base_url + "/token", refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh
    again = http.get("/v1/account", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert again.status_code == 200

    reuse = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": first_refresh, **CLIENT})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # Reuse of a rotated refresh token revokes the whole grant: the new tokens die too.
    revoked = http.get("/v1/account", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == 1001
    dead = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
                                     **CLIENT})
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


def test_client_secret_basic_is_accepted(http: CheckedSession) -> None:
    code = authorize(http)["code"][0]
    response = http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                         auth=("sandbox-client", "sandbox-secret"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_state_is_echoed_and_login_hint_picks_the_account(http: CheckedSession) -> None:
    query = authorize(http, state="opaque-123", login_hint="alice")
    assert query["state"] == ["opaque-123"]
    token = exchange(http, query["code"][0]).json()["access_token"]
    account = http.get("/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert account.json()["id"] == "acc_alice"


def test_code_is_single_use_and_reuse_revokes_its_tokens(http: CheckedSession) -> None:
    code = authorize(http)["code"][0]
    first = exchange(http, code)
    assert first.status_code == 200
    second = exchange(http, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    revoked = http.get("/v1/account", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert revoked.status_code == 401


def test_code_expires_after_ten_minutes(http: CheckedSession) -> None:
    http.post("/_mock/clock", json={"action": "freeze"})
    code = authorize(http)["code"][0]
    http.post("/_mock/clock", json={"action": "advance", "seconds": 601})
    response = exchange(http, code)
    assert response.status_code == 400 and "expired" in response.json()["error_description"]


def test_code_is_bound_to_redirect_uri_and_pkce_verifier(http: CheckedSession) -> None:
    verifier, challenge = pkce()
    code = authorize(http, code_challenge=challenge, code_challenge_method="S256")["code"][0]
    wrong = exchange(http, code, code_verifier=pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"

    code = authorize(http, code_challenge=challenge, code_challenge_method="S256")["code"][0]
    missing = exchange(http, code)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"

    code = authorize(http)["code"][0]
    other_uri = http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": "http://127.0.0.1:5000/other", **CLIENT})
    assert other_uri.status_code == 400 and other_uri.json()["error"] == "invalid_grant"

    code = authorize(http, code_challenge=challenge, code_challenge_method="S256")["code"][0]
    assert exchange(http, code, code_verifier=verifier).status_code == 200


@pytest.mark.parametrize(("params", "fragment"), [
    ({"client_id": "nobody"}, "Unknown client_id"),
    ({"redirect_uri": "https://evil.example/steal"}, "redirect_uri"),
    ({"redirect_uri": None}, "redirect_uri"),
    ({"client_id": None}, "client_id"),
])
def test_untrusted_client_or_redirect_shows_a_page_and_never_redirects(http: CheckedSession, params: dict,
                                                                      fragment: str) -> None:
    query = {"client_id": "sandbox-client", "redirect_uri": REDIRECT, "response_type": "code", **params}
    response = http.get("/authorize", params={k: v for k, v in query.items() if v is not None})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("params", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "invalid_request"),
    ({"scope": "trading:admin"}, "invalid_scope"),
    ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"state": "s" * 2000}, "invalid_request"),
])
def test_other_authorize_errors_redirect_with_error_and_state(http: CheckedSession, params: dict, error: str) -> None:
    query = {"client_id": "sandbox-client", "redirect_uri": REDIRECT, "response_type": "code", "state": "st",
             **params}
    response = http.get("/authorize", params={k: v for k, v in query.items() if v is not None})
    assert response.status_code == 302
    answer = parse_qs(urlsplit(response.headers["Location"]).query)
    assert answer["error"] == [error]
    if len(query.get("state") or "") < 1024:
        assert answer["state"] == ["st"]


@pytest.mark.parametrize(("form", "auth", "status", "error"), [
    ({"grant_type": "authorization_code", "code": "x", "client_id": "sandbox-client", "client_secret": "nope"},
     None, 401, "invalid_client"),
    ({"grant_type": "authorization_code", "code": "x"}, None, 401, "invalid_client"),
    ({"grant_type": "authorization_code", "code": "x", "client_secret": "sandbox-secret"},
     ("sandbox-client", "sandbox-secret"), 400, "invalid_request"),
    ({"grant_type": "password", **CLIENT}, None, 400, "unsupported_grant_type"),
    ({"grant_type": "authorization_code", **CLIENT}, None, 400, "invalid_request"),
    ({"grant_type": "authorization_code", "code": "ac_bogus", "redirect_uri": REDIRECT, **CLIENT}, None, 400,
     "invalid_grant"),
    ({"grant_type": "refresh_token", **CLIENT}, None, 400, "invalid_request"),
    ({"code": "x", **CLIENT}, None, 400, "invalid_request"),
])
def test_token_errors_follow_rfc6749(http: CheckedSession, form: dict, auth: tuple | None, status: int,
                                     error: str) -> None:
    response = http.post("/token", data=form, auth=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def test_wrong_basic_secret_gets_a_basic_challenge(http: CheckedSession) -> None:
    response = http.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                         auth=("sandbox-client", "wrong"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_refresh_cannot_widen_scope(http: CheckedSession) -> None:
    code = authorize(http, scope="trading:read")["code"][0]
    refresh = exchange(http, code).json()["refresh_token"]
    wider = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                      "scope": "trading:read trading:write", **CLIENT})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


@pytest.fixture
def consent_app(tradefence_spec_document):
    from mock_server.app import create_app
    from mock_server.config import Config

    app = create_app(Config(seed=7, validate_responses=True, consent="page"), document=tradefence_spec_document)
    yield app
    app.extensions["tradefence"].close()


def test_consent_page_approve_issues_a_code_and_deny_redirects_access_denied(consent_app) -> None:
    import re

    from tests.support.live import serve, spec_session

    with serve(consent_app) as url, spec_session(url, consent_app) as http:
        query = {"client_id": "sandbox-client", "redirect_uri": REDIRECT, "response_type": "code", "state": "s1"}
        page = http.get("/authorize", params=query)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        approve = re.search(r'id="approve" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
        deny = re.search(r'id="deny" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
        approved = http.get("/authorize" + approve)
        answer = parse_qs(urlsplit(approved.headers["Location"]).query)
        assert approved.status_code == 302 and "code" in answer and answer["state"] == ["s1"]
        denied = http.get("/authorize" + deny)
        answer = parse_qs(urlsplit(denied.headers["Location"]).query)
        assert answer["error"] == ["access_denied"] and answer["state"] == ["s1"]
