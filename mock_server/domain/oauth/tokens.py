"""JWT access tokens (RFC 9068) signed with HS256, checked against the emulator's clock, not the host's."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the OAuth subject (one account each), through which client, with which scopes."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    grant_id: str
    token_id: str


class AccessTokens:
    def __init__(self, *, key: str, issuer: str, audience: str, clock: Clock, cache_size: int = 10_000) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        # Signature and claim checks of a token never change, so they are done once per token; expiry is
        # checked on every use against the (movable) clock, revocation by the caller.
        self._verified: dict[str, tuple[Principal, datetime]] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def issue(self, *, subject: str, client_id: str, scopes: tuple[str, ...], grant_id: str, token_id: str,
              ttl: timedelta) -> str:
        now = self._clock.now()
        claims = {
            "iss": self._issuer, "aud": self._audience, "sub": subject, "client_id": client_id,
            "scope": " ".join(scopes), "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
            "jti": token_id, "gid": grant_id,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": "at+jwt"})

    def verify(self, token: str) -> Principal:
        """Decode and check a bearer token; any failure is 1001 with a description fit for WWW-Authenticate."""
        with self._lock:
            known = self._verified.get(token)
        if known is None:
            known = self._decode(token)
            with self._lock:
                if len(self._verified) >= self._cache_size:
                    self._verified.clear()
                self._verified[token] = known
        principal, expires = known
        if expires <= self._clock.now():
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token expired")
        return principal

    def _decode(self, token: str) -> tuple[Principal, datetime]:
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "sub", "jti", "gid"]},
            )
        except jwt.InvalidTokenError as exc:
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, f"The access token is invalid: {exc}") from None
        principal = Principal(
            subject=str(claims["sub"]), client_id=str(claims.get("client_id", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()), grant_id=str(claims["gid"]),
            token_id=str(claims["jti"]),
        )
        return principal, _expiry(claims["exp"])


def _expiry(exp: object) -> datetime:
    """`exp` as an instant; one no clock can show (1e20, NaN, a string) makes the token invalid, not the request
    fail. PyJWT checks its type only when it checks expiry, which it leaves to us (our clock, not the host's)."""
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token is invalid: exp must be a number")
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, ValueError, OSError):
        raise ApiError(ErrorCode.INVALID_CREDENTIALS, f"The access token is invalid: exp {exp} is out of range"
                       ) from None
