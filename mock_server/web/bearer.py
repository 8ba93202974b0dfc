"""Bearer tokens on HTTP (RFC 6750): reading one from `Authorization`, and the `WWW-Authenticate` challenge of a
refusal. One reading for the API's pipeline, the control plane's token (beyond loopback), the faults that look
up the caller and the stream's handshake."""

from __future__ import annotations

from mock_server.domain.errors import ErrorCode

REALM = 'Bearer realm="tradefence"'
CONTROL_REALM = 'Bearer realm="tradefence-control"'  # the control plane's own secret, off loopback


def bearer_token(header: str) -> str | None:
    """The token of `Bearer <token>` (the scheme in any case; blanks around the token dropped; it may be empty),
    or None for another scheme."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def challenge(code: ErrorCode | None = None, *, description: str = "", scopes: tuple[str, ...] = ()) -> str:
    """The `WWW-Authenticate` value of a refusal: the bare realm when no token came, `invalid_token` with its
    description for 1001, `insufficient_scope` with the scopes the operation needs for 1005."""
    if code is ErrorCode.INVALID_CREDENTIALS:
        quoted = description.replace('"', "'")  # the value is a quoted string
        return f'{REALM}, error="invalid_token", error_description="{quoted}"'
    if code is ErrorCode.INSUFFICIENT_SCOPE:
        return f'{REALM}, error="insufficient_scope", scope="{" ".join(scopes)}"'
    return REALM
