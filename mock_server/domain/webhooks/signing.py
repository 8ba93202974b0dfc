"""Standard Webhooks signing: ``whsec_`` secrets and the ``webhook-*`` headers of one delivery attempt.

The HMAC itself comes from the reference implementation (the ``standardwebhooks`` package, no dependencies), so
what the emulator signs is by construction what Standard Webhooks receivers verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from datetime import UTC, datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64 bytes


def check_secret(secret: str) -> str:
    """Return ``secret`` if it is ``whsec_`` + non-empty standard base64; raise ValueError saying what is wrong."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"a webhook secret starts with {PREFIX!r}")
    encoded = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {PREFIX!r} is not base64") from None
    if not key:
        raise ValueError(f"the part after {PREFIX!r} is empty")
    return secret


def new_secret(rng: random.Random) -> str:
    """A fresh secret from the emulator's seeded generator (so a seed reproduces the secrets it hands out)."""
    return _encode(rng.getrandbits(SECRET_BYTES * 8).to_bytes(SECRET_BYTES, "big"))


def derived_secret(seed: int, label: str) -> str:
    """The secret of a configured endpoint that names none: stable across restarts with the same seed."""
    return _encode(hashlib.sha256(f"tradefence-sandbox:webhook:{seed}:{label}".encode()).digest())


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the decoded secret."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body.decode())


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one attempt; ``timestamp`` is the attempt's unix seconds on the emulator clock."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def _encode(key: bytes) -> str:
    return PREFIX + base64.b64encode(key).decode()
