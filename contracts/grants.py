"""Tokens of the run's own, for checks that must not spend the user's: a grant through `/authorize` with the
user's client where the target approves without a browser (emulators do at once), and what a token says of itself.

Watching a token to its end, reuse detection (which revokes a grant) and read-only tokens use such a grant; a
target whose `/authorize` shows a login page cannot give one, and those checks skip, saying so.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests

from contracts.credentials import SCOPES, Credentials, code_flow
from contracts.targets import Target

OWN_SUBJECT = "contract-suite"  # the login hint: on emulators, the suite's own user


def own_grant(target: Target, http: requests.Session, credentials: Credentials, *, scope: str = SCOPES) -> Credentials:
    """A fresh grant with the user's client, or the test skips with the reason there is none."""
    if not credentials.client_secret:
        pytest.skip("needs a grant of its own, which needs the client secret (TRADEFENCE_CLIENT_SECRET)")
    try:
        return code_flow(target, http, login_hint=OWN_SUBJECT, scope=scope,
                         client=(credentials.client_id, credentials.client_secret))
    except AssertionError as exc:
        pytest.skip(f"needs a grant of its own, and {target.name} did not give one without a browser: {exc}")


def claims(token: str) -> dict[str, Any] | None:
    """An access token's claims, unverified (the spec's tokens are JWTs, RFC 9068); None for an opaque token."""
    try:
        found = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return found if isinstance(found.get("iat"), int | float) and isinstance(found.get("exp"), int | float) else None
