"""Opaque list cursors: the urlsafe base64 of the last order id of a page, so pages stay stable as orders arrive."""

from __future__ import annotations

import base64
import binascii

from mock_server.domain.errors import ApiError, ErrorCode


def encode_cursor(order_id: str) -> str:
    return base64.urlsafe_b64encode(order_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The order id inside ``cursor``; anything that is not one of ours is a 4000 on ``cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        order_id = raw.decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad(cursor) from None
    if not order_id.startswith("ord_") or encode_cursor(order_id) != cursor:
        raise _bad(cursor)
    return order_id


def _bad(cursor: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, f"Invalid cursor {cursor!r}", field="cursor")
