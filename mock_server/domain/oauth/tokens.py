"""JWT access tokens (RFC 9068) signed with HS256, checked against the emulator's clock, not the host's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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
    def __init__(self, *, key: str, issuer: str, audience: str, clock: Clock) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._clock = clock

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
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "sub", "jti", "gid"]},
            )
        except jwt.InvalidTokenError as exc:
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, f"The access token is invalid: {exc}") from None
        if datetime.fromtimestamp(claims["exp"], self._clock.now().tzinfo) <= self._clock.now():
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token expired")
        return Principal(
            subject=str(claims["sub"]), client_id=str(claims.get("client_id", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()), grant_id=str(claims["gid"]),
            token_id=str(claims["jti"]),
        )
