"""The authorization server: the code flow with PKCE, rotating refresh tokens, and token checks.

Behaves as RFC 6749 and RFC 9700 ask, because client libraries and security reviews depend on the details:
bad client or redirect URI never redirects; codes are single-use, short-lived and bound to client, redirect
URI and PKCE challenge; a replayed code or a replayed refresh token revokes the whole grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.oauth.tokens import AccessTokens, Principal

VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
SUBJECT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error of the token endpoint."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """Shown instead of redirecting, when the redirect target itself cannot be trusted."""

    message: str


@dataclass(frozen=True, slots=True)
class ConsentPage:
    """Ask the user: `approve` and `deny` are the same authorization request plus `consent=approve|deny`."""

    client_id: str
    scopes: tuple[str, ...]
    subject: str
    approve: str
    deny: str


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    via_basic: bool


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    subject: str
    challenge: str | None
    expires_at: datetime
    grant_id: str
    used: bool = False


@dataclass(slots=True)
class Grant:
    """What one authorization produced: the current refresh token and every retired one (to detect reuse)."""

    client_id: str
    subject: str
    scopes: tuple[str, ...]
    refresh_token: str
    revoked: bool = False
    retired_refresh_tokens: set[str] = field(default_factory=set)


class GrantStore(Protocol):
    """Where grants and registered clients are written through with ``--state``, before the token response (or
    the 201) is sent. Authorization codes are not: they live ten minutes, and a restart simply makes the client
    start the flow again."""

    def save_grant(self, grant_id: str, grant: Grant) -> None: ...

    def drop_grants(self) -> None: ...

    def save_client(self, client: OAuthClient) -> None: ...


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    issuer: str
    audience: str
    signing_key: str
    access_token_ttl: timedelta = timedelta(hours=1)
    code_ttl: timedelta = timedelta(minutes=10)
    default_subject: str = "sandbox-user"
    consent_page: bool = False  # show an approve/deny page before issuing a code, as a real login would


class AuthorizationServer:
    def __init__(self, settings: OAuthSettings, clients: Mapping[str, OAuthClient] | None, clock: Clock,
                 ids: IdGenerator) -> None:
        self.settings = settings
        self._clock = clock
        self._ids = ids
        self._tokens = AccessTokens(key=settings.signing_key, issuer=settings.issuer, audience=settings.audience,
                                    clock=clock)
        self._lock = threading.Lock()
        self._clients: dict[str, OAuthClient] = dict(clients or {})
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, Grant] = {}
        self._refresh_index: dict[str, str] = {}
        self._store: GrantStore | None = None

    # -- persistence -----------------------------------------------------------------------------------------
    def persist_with(self, store: GrantStore) -> None:
        """Write every later grant change and client registration through to ``store`` (once, before serving)."""
        self._store = store

    def restore_grant(self, grant_id: str, grant: Grant) -> None:
        """Put back a grant read from a state file: its access tokens verify again (same signing key) and each of
        its refresh tokens, current or retired, is known again, so reuse detection survives the restart."""
        with self._lock:
            self._grants[grant_id] = grant
            for token in (grant.refresh_token, *grant.retired_refresh_tokens):
                self._refresh_index[token] = grant_id

    # -- clients ---------------------------------------------------------------------------------------------
    def register_client(self, client: OAuthClient) -> OAuthClient:
        with self._lock:
            self._clients[client.client_id] = client
            if self._store is not None:
                self._store.save_client(client)
        return client

    def restore_client(self, client: OAuthClient) -> None:
        """Put back a client registered through the control plane before a restart (nothing is written)."""
        with self._lock:
            self._clients[client.client_id] = client

    def client(self, client_id: str) -> OAuthClient | None:
        with self._lock:
            return self._clients.get(client_id)

    # -- authorization endpoint ------------------------------------------------------------------------------
    def authorize(self, params: Mapping[str, str]) -> Redirect | ErrorPage | ConsentPage:
        trusted = self._trusted_redirect(params)
        if isinstance(trusted, ErrorPage):
            return trusted
        client, redirect_uri = trusted
        state = params.get("state")

        def fail(error: str, description: str) -> Redirect:
            return _error_redirect(redirect_uri, error, description, state)

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported")
        requested = tuple(params.get("scope", "").split()) or client.scopes
        if not set(requested) <= set(client.scopes):
            return fail("invalid_scope", f"This client may request only: {' '.join(client.scopes)}")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is not None and method != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        if method is not None and challenge is None:
            return fail("invalid_request", "code_challenge_method given without code_challenge")
        if challenge is not None and not VERIFIER.match(challenge):
            return fail("invalid_request", "code_challenge must be 43-128 characters of base64url")
        subject = params.get("login_hint") or self.settings.default_subject
        if not SUBJECT.match(subject):
            return fail("invalid_request", "login_hint must be 1-64 letters, digits, '_' or '-'")
        consent = params.get("consent")
        if consent == "deny":
            return fail("access_denied", "The user denied the authorization request")
        if self.settings.consent_page and consent != "approve":
            base = {key: value for key, value in params.items() if key != "consent"}
            return ConsentPage(client.client_id, requested, subject,
                               approve="?" + urlencode({**base, "consent": "approve"}),
                               deny="?" + urlencode({**base, "consent": "deny"}))
        code = self._ids.token("ac")
        with self._lock:
            self._codes[code] = _Code(
                client_id=client.client_id, redirect_uri=redirect_uri, scopes=requested, subject=subject,
                challenge=challenge, expires_at=self._clock.now() + self.settings.code_ttl,
                grant_id=self._ids.new("grt"),
            )
        return Redirect(_with_query(redirect_uri, {"code": code, "state": state}))

    def authorize_failure(self, params: Mapping[str, str], description: str) -> Redirect | ErrorPage:
        """A malformed authorization request: redirect with invalid_request, unless the target is untrusted."""
        trusted = self._trusted_redirect(params)
        if isinstance(trusted, ErrorPage):
            return trusted
        return _error_redirect(trusted[1], "invalid_request", description, params.get("state"))

    def _trusted_redirect(self, params: Mapping[str, str]) -> tuple[OAuthClient, str] | ErrorPage:
        client = self.client(params.get("client_id", ""))
        if client is None:
            return ErrorPage("Unknown client_id: this authorization request cannot be completed.")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not client.accepts_redirect(redirect_uri):
            return ErrorPage("The redirect_uri is not registered for this client.")
        return client, redirect_uri

    # -- token endpoint --------------------------------------------------------------------------------------
    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        """Answer a token request, or raise OAuthError."""
        client = self._authenticate(form, basic)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type == "authorization_code":
            return self._exchange_code(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def mint(self, *, subject: str, scopes: tuple[str, ...], client_id: str, ttl: timedelta | None = None
             ) -> dict[str, object]:
        """A token for scripts and tests, without the browser flow; shaped like a token endpoint answer."""
        if self.client(client_id) is None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown client_id {client_id}", field="client_id")
        unknown = sorted(set(scopes) - {"trading:read", "trading:write"})
        if unknown:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown scope {unknown[0]}", field="scope")
        with self._lock:
            grant_id = self._ids.new("grt")
            grant = Grant(client_id, subject, scopes, self._ids.token("rt"))
            self._grants[grant_id] = grant
            self._refresh_index[grant.refresh_token] = grant_id
            self._save(grant_id, grant)
        return self._token_response(grant_id, grant, ttl or self.settings.access_token_ttl)

    def verify(self, token: str) -> Principal:
        principal = self._tokens.verify(token)
        with self._lock:
            grant = self._grants.get(principal.grant_id)
        if grant is None or grant.revoked:
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token was revoked")
        # A token speaks only for its grant's subject, through its client, within its scopes: one signed with the
        # key but naming someone else's grant (the key follows the seed unless configured) gets nothing.
        if (grant.subject != principal.subject or grant.client_id != principal.client_id
                or not principal.scopes <= frozenset(grant.scopes)):
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token does not match its grant")
        return principal

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()
            self._grants.clear()
            self._refresh_index.clear()
            if self._store is not None:
                self._store.drop_grants()

    # -- internals -------------------------------------------------------------------------------------------
    def _authenticate(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> OAuthClient:
        if basic is not None and "client_secret" in form:
            raise OAuthError("invalid_request", "Use one client authentication method, not both")
        if basic is not None:
            credentials = ClientCredentials(basic[0], basic[1], via_basic=True)
        elif "client_id" in form and "client_secret" in form:
            credentials = ClientCredentials(form["client_id"], form["client_secret"], via_basic=False)
        else:
            raise OAuthError("invalid_client", "Client authentication is required", status=401)
        if basic is not None and form.get("client_id", basic[0]) != basic[0]:
            raise OAuthError("invalid_request", "client_id does not match the authenticated client")
        client = self.client(credentials.client_id)
        if client is None or not hmac.compare_digest(client.client_secret.encode(),
                                                     credentials.client_secret.encode()):
            raise OAuthError("invalid_client", "Client authentication failed", status=401)
        return client

    def _exchange_code(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, object]:
        code_value = form.get("code")
        if not code_value:
            raise OAuthError("invalid_request", "code is required")
        with self._lock:
            code = self._codes.get(code_value)
            if code is None or code.client_id != client.client_id:
                raise OAuthError("invalid_grant", "The authorization code is invalid")
            if code.used:
                self._revoke(code.grant_id)
                raise OAuthError("invalid_grant", "The authorization code was already used; its tokens are revoked")
            code.used = True
            if code.expires_at <= self._clock.now():
                raise OAuthError("invalid_grant", "The authorization code expired")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
            self._check_pkce(code.challenge, form.get("code_verifier"))
            grant = Grant(client.client_id, code.subject, code.scopes, self._ids.token("rt"))
            self._grants[code.grant_id] = grant
            self._refresh_index[grant.refresh_token] = code.grant_id
            grant_id = code.grant_id
            self._save(grant_id, grant)
        return self._token_response(grant_id, grant, self.settings.access_token_ttl)

    @staticmethod
    def _check_pkce(challenge: str | None, verifier: str | None) -> None:
        if challenge is None:
            if verifier is not None:
                raise OAuthError("invalid_grant", "code_verifier sent but the authorization request had no challenge")
            return
        if verifier is None:
            raise OAuthError("invalid_grant", "code_verifier is required for this code")
        if not VERIFIER.match(verifier):
            raise OAuthError("invalid_request", "code_verifier must be 43-128 unreserved characters")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(digest, challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")

    def _refresh(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, object]:
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required")
        with self._lock:
            grant_id = self._refresh_index.get(presented)
            grant = self._grants.get(grant_id) if grant_id else None
            if grant is None or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "The refresh token is invalid")
            if grant.revoked:
                raise OAuthError("invalid_grant", "The refresh token was revoked")
            if presented != grant.refresh_token:
                self._revoke(grant_id)  # type: ignore[arg-type]
                raise OAuthError("invalid_grant", "The refresh token was already used; the grant is revoked")
            requested = tuple(form.get("scope", "").split()) or grant.scopes
            if not set(requested) <= set(grant.scopes):
                raise OAuthError("invalid_scope", "A refresh cannot widen the granted scope")
            grant.retired_refresh_tokens.add(presented)
            grant.refresh_token = self._ids.token("rt")
            self._refresh_index[grant.refresh_token] = grant_id  # type: ignore[assignment]
            self._save(grant_id, grant)  # type: ignore[arg-type]
            narrowed = Grant(grant.client_id, grant.subject, requested, grant.refresh_token)
        return self._token_response(grant_id, narrowed, self.settings.access_token_ttl)  # type: ignore[arg-type]

    def _revoke(self, grant_id: str) -> None:
        grant = self._grants.get(grant_id)
        if grant is not None:
            grant.revoked = True
            self._save(grant_id, grant)

    def _save(self, grant_id: str, grant: Grant) -> None:
        """Caller holds the lock, so grants reach the store in the order they changed."""
        if self._store is not None:
            self._store.save_grant(grant_id, grant)

    def _token_response(self, grant_id: str, grant: Grant, ttl: timedelta) -> dict[str, object]:
        access = self._tokens.issue(subject=grant.subject, client_id=grant.client_id, scopes=grant.scopes,
                                    grant_id=grant_id, token_id=self._ids.new("tok"), ttl=ttl)
        return {"access_token": access, "token_type": "Bearer", "expires_in": int(ttl.total_seconds()),
                "refresh_token": grant.refresh_token, "scope": " ".join(grant.scopes)}


def _error_redirect(uri: str, error: str, description: str, state: str | None) -> Redirect:
    return Redirect(_with_query(uri, {"error": error, "error_description": description, "state": state}))


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(uri)
    extra = urlencode({key: value for key, value in params.items() if value is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
