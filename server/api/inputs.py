"""Reading a request: the JSON body with a hard 64 KiB cap (refused by Content-Length before reading, or as soon
as the stream passes it) decoded with msgspec into a typed Struct whose field rules (server/fields.py) then
apply; query parameters and path ids; and the client's hang-up, which cancels work nobody waits for.
Every failure becomes the contract's error body.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request

from .. import limits
from ..errors import BadRequest, Invalid, TooLarge, UnsupportedMediaType
from ..fields import ID_MAX, field_rules

MAX_BODY = 64 * 1024
T = TypeVar("T")
_FIELD = re.compile(r"`\$\.([A-Za-z_]+)")
_MISSING = re.compile(r"missing required field `([A-Za-z_]+)`")


async def read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > MAX_BODY:
                raise TooLarge(f"The body is over {MAX_BODY // 1024} KiB")
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise TooLarge(f"The body is over {MAX_BODY // 1024} KiB")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client hung up mid-body: nobody hears the answer, but it is not our bug (no 500, no traceback).
        raise BadRequest("The client went away before sending the body", code="client_disconnected") from None
    body = b"".join(chunks)
    # Kept where Starlette's own request.body() keeps it, so its stream() gives it again: a reply run again from
    # a fresh session lookup (api/forum.create_post) parses the same body.
    request._body = body
    return body


async def parse(request: Request, model: type[T]) -> T:
    """The body as `model`: 415 if not JSON, 413 if too big, 400 if malformed, 422 naming the bad field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType("Send the body as application/json")
    body = await read_body(request)
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 raises the latter
        raise BadRequest("The body is not valid JSON", code="bad_json") from None
    except RecursionError:  # arrays nested thousands deep fit in 64 KiB
        raise BadRequest("The body is nested too deeply", code="bad_json") from None
    if not isinstance(raw, dict):
        raise Invalid("The body must be a JSON object")
    fields = getattr(model, "__struct_fields__", None)
    for key, value in list(raw.items()):
        if isinstance(value, float) and value.is_integer() and abs(value) <= limits.BIGINT:
            raw[key] = int(value)  # JSON (and JSON Schema's "integer") does not tell 42.0 from 42
        # PostgreSQL text cannot hold NUL: refuse it here, or any string reaching a query would be a 500.
        # Keys the model does not have are ignored (as msgspec ignores them), NUL or not.
        if isinstance(value, str) and "\x00" in value and (fields is None or key in fields):
            raise Invalid(f"{key} must not contain NUL characters", field=key)
    try:
        value = msgspec.convert(raw, model)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _MISSING.search(text) or _FIELD.search(text)
        raise Invalid(text.split(" - at ")[0], field=m.group(1) if m else None) from None
    for name, rule in field_rules(model):  # type: ignore[arg-type]
        setattr(value, name, rule.check(getattr(value, name), name))
    return value


async def until_disconnected(request: Request) -> None:
    """Returns once the client has hung up. For a request whose body is not read otherwise (a GET): this takes
    the body's messages, then waits for the server's http.disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """`work`, cancelled as soon as the client hangs up. Starlette lets a handler run on after its client left;
    cancelling the task also cancels a query it is awaiting in PostgreSQL (asyncpg sends a cancel request and
    the transaction rolls back). The client is gone, so the 400 client_disconnected is for the access log."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(until_disconnected(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this handler itself cancelled (shutdown)
        task.cancel()
        gone.cancel()
        raise
    gone.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.wait((task,))  # its clean-up (the rollback, the connection back to the pool) done; errors dropped
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"
    raise BadRequest("The client went away before the answer", code="client_disconnected")


def query(request: Request, name: str, default: str | None = None) -> str | None:
    """A query parameter given at most once (400 when repeated), or `default` when absent."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once", code="bad_parameter", field=name)
    return values[0] if values else default


@dataclass(frozen=True)
class PageSize:
    """A list's `limit`: its default and its most. Declared by each list's handler; openapi.py publishes it."""

    default: int
    high: int


def query_limit(request: Request, size: PageSize) -> int:
    return query_int(request, "limit", size.default, 1, size.high)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer parameter from low to high, `default` when absent; anything else (an empty one too) is 400."""
    raw = query(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", code="bad_parameter", field=name) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", code="bad_parameter", field=name)
    return value


def path_id(request: Request, name: str = "id") -> int:
    """A path id: 1–ID_MAX in decimal digits (what the document states); an id nobody has is then a 404."""
    raw = request.path_params[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(ID_MAX)) or not 1 <= int(raw) <= ID_MAX:
        raise BadRequest(f"{name} must be an integer from 1 to {ID_MAX}", code="bad_parameter", field=name)
    return int(raw)
