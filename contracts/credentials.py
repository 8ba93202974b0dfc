"""Getting a token once per run: the code flow on emulators, the CI job's credentials on real targets.

Refresh tokens rotate: the one a job was seeded with dies the first time it is used. So a run that refreshes
reads the newest refresh token from `--contract-token-file` (the environment's `TRADEFENCE_REFRESH_TOKEN` only
seeds it), writes the rotated one back the moment it arrives (atomically, mode 0600), and refreshes at most once.
Credentials that are given but do not work stop the run with a message saying what to do, never a skip.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import requests

from contracts.checking import violation
from contracts.targets import Target

EMULATOR_CLIENT = ("sandbox-client", "sandbox-secret")
REDIRECT_URI = "http://127.0.0.1:8976/contract-callback"
SCOPES = "trading:read trading:write"
RESEED = ("re-seed it: sign in once by hand (the authorization-code flow of the integration guide), then write the "
          "new refresh token to {where} (see the README's contract-suite CI recipe)")


class UnusableCredentials(Exception):
    """Credentials that are missing or refused; the message says what to do."""


@dataclass(frozen=True)
class Credentials:
    """What the run authenticates with. Secrets stay out of reprs (a failure report may print this object)."""

    client_id: str
    client_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: frozenset[str] = frozenset(SCOPES.split())
    issued_at: datetime | None = None
    expires_in: float | None = None  # seconds, as the token endpoint said; None when unknown

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def expires_at(self) -> datetime | None:
        if self.issued_at is None or self.expires_in is None:
            return None
        return self.issued_at + timedelta(seconds=self.expires_in)


class TokenFile:
    """The newest refresh token, kept between runs (a CI cache or artifact); written atomically, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            return self.path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def write(self, token: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(token + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, self.path)  # a reader sees the old token or the new one, never half of one
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def code_flow(target: Target, http: requests.Session, *, login_hint: str, scope: str = SCOPES,
              client: tuple[str, str] = EMULATOR_CLIENT, now: Callable[[], datetime] | None = None) -> Credentials:
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
    issued_at = now() if now else None
    token = http.post(f"{target.auth_url}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier, "client_id": client[0], "client_secret": client[1],
    })
    if token.status_code != 200:
        raise AssertionError(f"POST /token answered {token.status_code}: {token.text[:300]}")
    return _from_token_answer(token, client[0], client[1], issued_at, scope)


def from_environment(target: Target, http: requests.Session, environ: Mapping[str, str], *,
                     token_file: TokenFile | None, now: Callable[[], datetime]) -> Credentials:
    """The CI job's credentials: refresh the newest refresh token once (keeping the rotated one), or use a given
    access token as it is. Raises UnusableCredentials saying what to do."""
    client_id = environ.get("TRADEFENCE_CLIENT_ID", "")
    client_secret = environ.get("TRADEFENCE_CLIENT_SECRET", "")
    kept = token_file.read() if token_file else None
    refresh = kept or environ.get("TRADEFENCE_REFRESH_TOKEN")
    source = (f"the refresh token in {token_file.path}" if kept and token_file else "TRADEFENCE_REFRESH_TOKEN")
    access = environ.get("TRADEFENCE_ACCESS_TOKEN")
    if refresh:
        if token_file is None:
            if access:  # nothing rotates when the given access token is used as it is
                return _checked_access_token(target, http, client_id, client_secret, access, now)
            raise UnusableCredentials(
                "TRADEFENCE_REFRESH_TOKEN rotates when used, and the run would lose the new one: pass "
                "--contract-token-file PATH (kept between runs; the suite reads the newest token from it and writes "
                "each rotated one back), or give TRADEFENCE_ACCESS_TOKEN instead")
        if not client_id:
            raise UnusableCredentials("refreshing needs TRADEFENCE_CLIENT_ID (and TRADEFENCE_CLIENT_SECRET for a "
                                      "confidential client)")
        return _refreshed(target, http, client_id, client_secret, refresh, source, token_file, now)
    if access:
        return _checked_access_token(target, http, client_id, client_secret, access, now)
    where = f" or in {token_file.path}" if token_file else ""
    raise UnusableCredentials(
        f"no credentials for {target.name}: set TRADEFENCE_CLIENT_ID, TRADEFENCE_CLIENT_SECRET and "
        f"TRADEFENCE_REFRESH_TOKEN{where} (with --contract-token-file), or TRADEFENCE_ACCESS_TOKEN")


def _refreshed(target: Target, http: requests.Session, client_id: str, client_secret: str, refresh: str,
               source: str, token_file: TokenFile, now: Callable[[], datetime]) -> Credentials:
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id}
    if client_secret:
        form["client_secret"] = client_secret
    issued_at = now()
    response = http.post(f"{target.auth_url}/token", timeout=15, data=form)
    if response.status_code != 200:
        error = _oauth_error(response)
        raise UnusableCredentials(
            f"{source} was refused by POST {urlsplit(target.auth_url).path}/token: {response.status_code} {error}. "
            f"It was revoked, expired, or already used (each refresh rotates it); "
            + RESEED.format(where=token_file.path))
    body = _token_body(response)
    rotated = body.get("refresh_token")
    if isinstance(rotated, str) and rotated and rotated != refresh:
        token_file.write(rotated)  # before anything else can fail: the old token is spent now
    elif not token_file.read():
        token_file.write(refresh)
    return _from_token_answer(response, client_id, client_secret, issued_at, SCOPES)


def _checked_access_token(target: Target, http: requests.Session, client_id: str, client_secret: str, access: str,
                          now: Callable[[], datetime]) -> Credentials:
    """A given access token, tried once (GET /account) so a dead one stops the run instead of failing every test."""
    probe = http.get(f"{target.api_url}/account", headers={"Authorization": f"Bearer {access}"}, timeout=15)
    if probe.status_code == 401:
        raise UnusableCredentials(
            "TRADEFENCE_ACCESS_TOKEN was refused (401): it expired or was revoked. Give a fresh one, or a refresh "
            "token with --contract-token-file so the suite gets its own")
    claims = _claims(access)
    scope, issued, expires = claims.get("scope"), claims.get("iat"), claims.get("exp")
    scopes = frozenset((scope if isinstance(scope, str) else SCOPES).split())
    if isinstance(issued, int | float) and isinstance(expires, int | float):
        return Credentials(client_id, client_secret, access, None, scopes,
                           datetime.fromtimestamp(issued, now().tzinfo), float(expires - issued))
    return Credentials(client_id, client_secret, access, None, scopes)


def _token_body(response: requests.Response) -> dict[str, object]:
    """A token answer's body, checked for what the run needs before anything uses it."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise violation("token", "token answer", response, "a 200 from the token endpoint must carry access_token")
    return body


def _from_token_answer(response: requests.Response, client_id: str, client_secret: str,
                       issued_at: datetime | None, requested_scope: str) -> Credentials:
    body = _token_body(response)
    scope = body.get("scope") if isinstance(body.get("scope"), str) else requested_scope
    expires_in, refresh = body.get("expires_in"), body.get("refresh_token")
    return Credentials(client_id, client_secret, str(body["access_token"]),
                       refresh if isinstance(refresh, str) and refresh else None,
                       frozenset(str(scope).split()), issued_at,
                       float(expires_in) if isinstance(expires_in, int | float) else None)


def _claims(token: str) -> dict[str, object]:
    """An access token's claims when it is a JWT (RFC 9068), unverified: only to learn its scope and lifetime."""
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


def _oauth_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""
