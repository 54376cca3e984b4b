"""Opaque keyset cursors for every paged list: base64 of a JSON list of the last row's sort key."""

from __future__ import annotations

import base64
from typing import Any

from ..errors import BadRequest
from ..wire import decode, encode


def cursor_encode(*key: Any) -> str:
    return base64.urlsafe_b64encode(encode(list(key))).decode().rstrip("=")


def cursor_decode(raw: str, name: str, types: tuple[type, ...]) -> list[Any]:
    """Decode an opaque cursor; anything that is not one we made is a 400 naming the parameter."""
    try:
        key = decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError
        for value, typ in zip(key, types, strict=True):
            if not isinstance(value, typ) or isinstance(value, bool):
                raise ValueError
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ValueError
        return key
    except Exception:
        raise BadRequest(f"{name} is not a cursor this server made", code="bad_cursor", field=name) from None
