"""The authorization server: RFC 6749 errors, single-use codes, PKCE binding, refresh rotation with reuse detection.

Error checks that need no user run everywhere; flows that need a code (the emulator approves at once) run where
/authorize can be completed without a browser.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from contracts.checking import CheckedSession, violation
from contracts.credentials import EMULATOR_CLIENT, REDIRECT_URI, Credentials, code_flow, pkce_pair
from contracts.targets import Target


def oauth_error(response: requests.Response, status: int, error: str) -> None:
    if response.status_code != status or response.json().get("error") != error:
        raise violation("token", f"RFC 6749 {error}", response, f"expected {status} {error}")
    if response.headers.get("Cache-Control") != "no-store":
        raise violation("token", "Cache-Control: no-store", response, "missing on a token response")


@pytest.fixture
def emulator(tradefence_target: Target) -> Target:
    if not tradefence_target.is_emulator:
        pytest.skip("needs an authorization server that approves without a browser (the emulator)")
    return tradefence_target


def test_unknown_grant_type(tradefence_auth_server: CheckedSession, tradefence_credentials: Credentials) -> None:
    response = tradefence_auth_server.post("/token", data={"grant_type": "password",
                                                           "client_id": tradefence_credentials.client_id,
                                                "client_secret": tradefence_credentials.client_secret})
    oauth_error(response, 400, "unsupported_grant_type")


def test_bad_client_secret(tradefence_auth_server: CheckedSession, tradefence_credentials: Credentials) -> None:
    response = tradefence_auth_server.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                                "client_id": tradefence_credentials.client_id or "sandbox-client",
                                                "client_secret": "definitely-wrong"})
    oauth_error(response, 401, "invalid_client")


def test_bogus_code(tradefence_auth_server: CheckedSession, tradefence_credentials: Credentials) -> None:
    response = tradefence_auth_server.post("/token", data={"grant_type": "authorization_code", "code": "not-a-code",
                                                "redirect_uri": REDIRECT_URI,
                                                "client_id": tradefence_credentials.client_id,
                                                "client_secret": tradefence_credentials.client_secret})
    oauth_error(response, 400, "invalid_grant")


def test_unregistered_redirect_never_redirects(tradefence_auth_server: CheckedSession,
                                               tradefence_credentials: Credentials) -> None:
    response = tradefence_auth_server.get("/authorize", params={
                                                     "client_id": tradefence_credentials.client_id or "sandbox-client",
                                                     "redirect_uri": "https://attacker.example/cb",
                                                     "response_type": "code"})
    if response.status_code == 302 or "Location" in response.headers:
        raise violation("authorize", "no open redirect", response, "redirected to an unregistered URI")


def _code(target: Target, http: requests.Session, **extra: str) -> str:
    response = http.get(f"{target.auth_url}/authorize", allow_redirects=False, timeout=10, params={
        "client_id": EMULATOR_CLIENT[0], "redirect_uri": REDIRECT_URI, "response_type": "code",
        "login_hint": "contract-oauth", **extra})
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def test_code_is_single_use(emulator: Target, tradefence_auth_server: CheckedSession) -> None:
    code = _code(emulator, tradefence_auth_server)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": EMULATOR_CLIENT[0], "client_secret": EMULATOR_CLIENT[1]}
    first = tradefence_auth_server.post("/token", data=form)
    if first.status_code != 200:
        raise violation("token", "code exchange", first, "expected 200")
    oauth_error(tradefence_auth_server.post("/token", data=form), 400, "invalid_grant")


def test_pkce_verifier_is_enforced(emulator: Target, tradefence_auth_server: CheckedSession) -> None:
    _, challenge = pkce_pair()
    code = _code(emulator, tradefence_auth_server, code_challenge=challenge, code_challenge_method="S256")
    wrong, _ = pkce_pair()
    response = tradefence_auth_server.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": wrong,
        "client_id": EMULATOR_CLIENT[0], "client_secret": EMULATOR_CLIENT[1]})
    oauth_error(response, 400, "invalid_grant")


def test_token_refresh_use_and_rotation(emulator: Target, tradefence_auth_server: CheckedSession,
                                        tradefence_anonymous_api: CheckedSession) -> None:
    """token → refresh → use; the old refresh token dies, and reusing it revokes the grant."""
    start = code_flow(emulator, tradefence_auth_server, login_hint="contract-oauth")
    refreshed = tradefence_auth_server.post("/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": start.refresh_token,
                                                 "client_id": EMULATOR_CLIENT[0],
                                                 "client_secret": EMULATOR_CLIENT[1]})
    if refreshed.status_code != 200:
        raise violation("token", "refresh", refreshed, "expected 200")
    new = refreshed.json()
    if new.get("refresh_token") in (None, start.refresh_token):
        raise violation("token", "refresh rotation", refreshed, "the refresh token was not rotated")
    used = tradefence_anonymous_api.get("/account", headers={"Authorization": f"Bearer {new['access_token']}"})
    if used.status_code != 200:
        raise violation("getAccount", "refreshed token works", used, "expected 200")
    reuse = tradefence_auth_server.post("/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": start.refresh_token,
                                             "client_id": EMULATOR_CLIENT[0], "client_secret": EMULATOR_CLIENT[1]})
    oauth_error(reuse, 400, "invalid_grant")
    revoked = tradefence_anonymous_api.get("/account", headers={"Authorization": f"Bearer {new['access_token']}"})
    if revoked.status_code != 401:
        raise violation("getAccount", "reuse revokes the grant", revoked, "tokens of a revoked grant still work")
