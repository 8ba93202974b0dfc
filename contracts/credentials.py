"""Getting a token once per session: the code flow on emulators, the environment on real targets."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

from contracts.targets import Target

EMULATOR_CLIENT = ("sandbox-client", "sandbox-secret")
REDIRECT_URI = "http://127.0.0.1:8976/contract-callback"
SCOPES = "trading:read trading:write"


class MissingCredentials(Exception):
    """The environment lacks what a real target needs; the message says exactly what."""


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    access_token: str
    refresh_token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def code_flow(target: Target, http: requests.Session, *, login_hint: str, scope: str = SCOPES,
              client: tuple[str, str] = EMULATOR_CLIENT) -> Credentials:
    """The authorization-code flow with PKCE against an emulator, which approves at once."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    response = http.get(f"{target.auth_url}/authorize", allow_redirects=False, timeout=10, params={
        "client_id": client[0], "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": scope,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256", "login_hint": login_hint,
    })
    if response.status_code != 302:
        raise AssertionError(f"GET /authorize answered {response.status_code}, not a redirect: {response.text[:300]}")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    if query.get("state") != [state] or "code" not in query:
        raise AssertionError(f"/authorize redirected without code or state: {response.headers['Location']}")
    token = http.post(f"{target.auth_url}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier, "client_id": client[0], "client_secret": client[1],
    })
    if token.status_code != 200:
        raise AssertionError(f"POST /token answered {token.status_code}: {token.text[:300]}")
    body = token.json()
    return Credentials(client[0], client[1], body["access_token"], body.get("refresh_token"))


def from_environment(target: Target, http: requests.Session, environ: Mapping[str, str]) -> Credentials:
    client_id = environ.get("TRADEFENCE_CLIENT_ID", "")
    client_secret = environ.get("TRADEFENCE_CLIENT_SECRET", "")
    access = environ.get("TRADEFENCE_ACCESS_TOKEN")
    refresh = environ.get("TRADEFENCE_REFRESH_TOKEN")
    if access:
        return Credentials(client_id, client_secret, access, refresh)
    if not refresh:
        raise MissingCredentials("set TRADEFENCE_ACCESS_TOKEN, or TRADEFENCE_REFRESH_TOKEN with "
                                 "TRADEFENCE_CLIENT_ID and TRADEFENCE_CLIENT_SECRET")
    if not (client_id and client_secret):
        raise MissingCredentials("TRADEFENCE_REFRESH_TOKEN needs TRADEFENCE_CLIENT_ID and TRADEFENCE_CLIENT_SECRET")
    response = http.post(f"{target.auth_url}/token", timeout=15, data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id,
        "client_secret": client_secret,
    })
    if response.status_code != 200:
        raise MissingCredentials(f"refreshing TRADEFENCE_REFRESH_TOKEN failed: {response.status_code} "
                                 f"{response.text[:200]}")
    body = response.json()
    return Credentials(client_id, client_secret, body["access_token"], body.get("refresh_token"))
