"""The authorization server: RFC 6749 errors, single-use codes, PKCE binding, refresh rotation with reuse detection.

Error checks that need no user run everywhere. Flows that need a fresh code run, with the run's own client and
grants of their own, where /authorize approves without a browser (emulators do at once), and skip elsewhere.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from contracts.checking import CheckedSession, violation
from contracts.credentials import REDIRECT_URI, Credentials, code_flow, pkce_pair
from contracts.grants import OWN_SUBJECT
from contracts.targets import Target


def oauth_error(response: requests.Response, status: int, error: str) -> None:
    if response.status_code != status or response.json().get("error") != error:
        raise violation("token", f"RFC 6749 {error}", response, f"expected {status} {error}")
    if response.headers.get("Cache-Control") != "no-store":
        raise violation("token", "Cache-Control: no-store", response, "missing on a token response")


@pytest.fixture
def approving(tradefence_target: Target, tradefence_credentials: Credentials,
              tradefence_auth_server: CheckedSession) -> tuple[str, str]:
    """The run's client, where the target's /authorize approves it without a browser (emulators do at once; a real
    sandbox may): flows that need a fresh code run there with grants of their own, and skip elsewhere."""
    client = (tradefence_credentials.client_id, tradefence_credentials.client_secret)
    if not client[1]:
        pytest.skip("needs the client secret (TRADEFENCE_CLIENT_SECRET) to exchange codes of its own")
    response = _authorize(tradefence_target, tradefence_auth_server, client[0])
    if response.status_code != 302 or "code=" not in response.headers.get("Location", ""):
        pytest.skip(f"needs an authorization server that approves without a browser; {tradefence_target.name}'s "
                    f"/authorize answered {response.status_code}")
    return client


@pytest.fixture
def client(tradefence_credentials: Credentials) -> dict[str, str]:
    """The run's client authenticating itself; grant checks come after client authentication, so they need it."""
    if not tradefence_credentials.client_secret:
        pytest.skip("needs TRADEFENCE_CLIENT_SECRET: the token endpoint checks a grant only once the client has "
                    "authenticated")
    return {"client_id": tradefence_credentials.client_id, "client_secret": tradefence_credentials.client_secret}


def test_unknown_grant_type(tradefence_auth_server: CheckedSession, client: dict[str, str]) -> None:
    response = tradefence_auth_server.post("/token", data={"grant_type": "password", **client})
    oauth_error(response, 400, "unsupported_grant_type")


def test_bad_client_secret(tradefence_auth_server: CheckedSession, tradefence_credentials: Credentials) -> None:
    response = tradefence_auth_server.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                                           "client_id": tradefence_credentials.client_id
                                                           or "sandbox-client",
                                                           "client_secret": "definitely-wrong"})
    oauth_error(response, 401, "invalid_client")


def test_bogus_code(tradefence_auth_server: CheckedSession, client: dict[str, str]) -> None:
    response = tradefence_auth_server.post("/token", data={"grant_type": "authorization_code", "code": "not-a-code",
                                                           "redirect_uri": REDIRECT_URI, **client})
    oauth_error(response, 400, "invalid_grant")


def test_unregistered_redirect_never_redirects(tradefence_auth_server: CheckedSession,
                                               tradefence_credentials: Credentials) -> None:
    response = tradefence_auth_server.get("/authorize", params={
                                                     "client_id": tradefence_credentials.client_id or "sandbox-client",
                                                     "redirect_uri": "https://attacker.example/cb",
                                                     "response_type": "code"})
    if response.status_code == 302 or "Location" in response.headers:
        raise violation("authorize", "no open redirect", response, "redirected to an unregistered URI")


def _authorize(target: Target, http: requests.Session, client_id: str, **extra: str) -> requests.Response:
    return http.get(f"{target.auth_url}/authorize", allow_redirects=False, timeout=10, params={
        "client_id": client_id, "redirect_uri": REDIRECT_URI, "response_type": "code", "login_hint": OWN_SUBJECT,
        **extra})


def _code(target: Target, http: requests.Session, client_id: str, **extra: str) -> str:
    response = _authorize(target, http, client_id, **extra)
    codes = parse_qs(urlsplit(response.headers.get("Location", "")).query).get("code")
    if response.status_code != 302 or not codes:
        raise violation("authorize", "approval redirects with a code", response, "expected 302 to ?code=...")
    return codes[0]


def test_code_is_single_use(approving: tuple[str, str], tradefence_target: Target,
                            tradefence_auth_server: CheckedSession) -> None:
    code = _code(tradefence_target, tradefence_auth_server, approving[0])
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": approving[0], "client_secret": approving[1]}
    first = tradefence_auth_server.post("/token", data=form)
    if first.status_code != 200:
        raise violation("token", "code exchange", first, "expected 200")
    oauth_error(tradefence_auth_server.post("/token", data=form), 400, "invalid_grant")


def test_pkce_verifier_is_enforced(approving: tuple[str, str], tradefence_target: Target,
                                   tradefence_auth_server: CheckedSession) -> None:
    _, challenge = pkce_pair()
    code = _code(tradefence_target, tradefence_auth_server, approving[0], code_challenge=challenge,
                 code_challenge_method="S256")
    wrong, _ = pkce_pair()
    response = tradefence_auth_server.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": wrong,
        "client_id": approving[0], "client_secret": approving[1]})
    oauth_error(response, 400, "invalid_grant")


def refresh(auth: CheckedSession, client: tuple[str, str], refresh_token: str | None) -> requests.Response:
    return auth.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                     "client_id": client[0], "client_secret": client[1]})


def test_refresh_rotates(approving: tuple[str, str], tradefence_target: Target,
                         tradefence_auth_server: CheckedSession, tradefence_anonymous_api: CheckedSession) -> None:
    """A grant of the run's own: refreshing it gives a new refresh token and an access token that works."""
    start = code_flow(tradefence_target, tradefence_auth_server, login_hint=OWN_SUBJECT, client=approving)
    refreshed = refresh(tradefence_auth_server, approving, start.refresh_token)
    if refreshed.status_code != 200:
        raise violation("token", "refresh", refreshed, "expected 200")
    new = refreshed.json()
    if new.get("refresh_token") in (None, start.refresh_token):
        raise violation("token", "refresh rotation", refreshed, "the refresh token was not rotated")
    used = tradefence_anonymous_api.get("/account", headers={"Authorization": f"Bearer {new['access_token']}"})
    if used.status_code != 200:
        raise violation("getAccount", "refreshed token works", used, "expected 200")


@pytest.mark.usefixtures("tradefence_destructive")
def test_reusing_a_rotated_refresh_token_revokes_the_grant(approving: tuple[str, str], tradefence_target: Target,
                                                           tradefence_auth_server: CheckedSession,
                                                           tradefence_anonymous_api: CheckedSession) -> None:
    """Reuse detection (RFC 9700 4.14.2) revokes the whole grant, so a grant of the run's own, never the user's;
    on a real target only with --contract-destructive (it leaves a revoked grant behind)."""
    start = code_flow(tradefence_target, tradefence_auth_server, login_hint=OWN_SUBJECT, client=approving)
    refreshed = refresh(tradefence_auth_server, approving, start.refresh_token)
    if refreshed.status_code != 200:
        raise violation("token", "refresh", refreshed, "expected 200")
    new = refreshed.json()
    oauth_error(refresh(tradefence_auth_server, approving, start.refresh_token), 400, "invalid_grant")
    revoked = tradefence_anonymous_api.get("/account", headers={"Authorization": f"Bearer {new['access_token']}"})
    if revoked.status_code != 401:
        raise violation("getAccount", "reuse revokes the grant", revoked, "tokens of a revoked grant still work")
