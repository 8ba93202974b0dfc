"""Registered OAuth clients and the redirect URIs each may use."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

ALL_SCOPES = ("trading:read", "trading:write")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ALL_SCOPES
    allow_loopback_redirects: bool = False

    def accepts_redirect(self, uri: str) -> bool:
        """Exact match against the registered URIs; loopback clients also take any http://localhost URL.

        Exact string comparison (no prefix or pattern matching) is what RFC 9700 §4.1.3 asks for, so the
        authorization endpoint can never be turned into an open redirector.
        """
        parts = urlsplit(uri)
        if not _valid_port(parts):
            return False
        if uri in self.redirect_uris:
            return True
        if not self.allow_loopback_redirects:
            return False
        return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and not parts.fragment


def _valid_port(parts: SplitResult) -> bool:
    """No port, or one a browser could connect to: `:99999` or `:http` is no URL to redirect to."""
    try:
        parts.port  # noqa: B018  # raises ValueError for a port out of range or not a number
    except ValueError:
        return False
    return True


SANDBOX_CLIENT = OAuthClient("sandbox-client", "sandbox-secret", allow_loopback_redirects=True)
