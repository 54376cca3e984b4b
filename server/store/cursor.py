"""Opaque keyset cursors for every paged list: base64 of a JSON list of the last row's sort key."""

from __future__ import annotations

import base64
import re
from typing import Any

from .. import limits
from ..errors import BadRequest, NotFound
from ..wire import decode, encode

# What every cursor looks like (unpadded base64url); server/openapi.py publishes it as the parameters' pattern.
# A string of another shape is a malformed parameter (400); one of this shape that is not a position of this
# list and sort (forged, or from another list or sort) names nothing here: 404, both with code bad_cursor.
CURSOR = re.compile(r"[A-Za-z0-9_-]{1,400}")


def unknown_cursor(name: str, message: str | None = None) -> NotFound:
    return NotFound(message or f"{name} is not a cursor of this list", code="bad_cursor", field=name)


def cursor_encode(*key: Any) -> str:
    return base64.urlsafe_b64encode(encode(list(key))).decode().rstrip("=")


def cursor_decode(raw: str, name: str, types: tuple[type, ...]) -> list[Any]:
    """Decode an opaque cursor: 400 when it is not shaped like one, 404 when it is no position of this list."""
    if not CURSOR.fullmatch(raw):
        raise BadRequest(f"{name} is not a cursor (base64url)", code="bad_cursor", field=name)
    try:
        key = decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError
        for value, typ in zip(key, types, strict=True):
            if not isinstance(value, typ) or isinstance(value, bool):
                raise ValueError
            if isinstance(value, int) and not -limits.BIGINT - 1 <= value <= limits.BIGINT:
                raise ValueError
        return key
    except Exception:
        raise unknown_cursor(name) from None
