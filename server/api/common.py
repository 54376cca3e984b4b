"""Request parsing and responses shared by every handler.

Bodies are read with a hard 64 KiB cap (refused by Content-Length before
reading, or as soon as the stream passes it), decoded with msgspec into typed
structs, and every failure becomes the contract's error body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import typing
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import auth
from ..errors import BadRequest, Invalid, TooLarge, UnsupportedMediaType
from ..render import first_refused, is_invisible, refused_in_name, refused_in_title
from ..state import AppState
from ..wire import TIME_PATTERN, TIME_YEARS, time_in_range

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
T = TypeVar("T")
ID_MAX = 2**63 - 1  # ids are bigint: every id 1–ID_MAX is well formed (unknown ones are 404)
Id = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
_FIELD = re.compile(r"`\$\.([A-Za-z_]+)")
_MISSING = re.compile(r"missing required field `([A-Za-z_]+)`")


# --- Text rules: declared once on the Structs (and query parameters), read by parse() and by server/openapi.py.
# JSON Schema patterns are ECMA-262 and are also run by Python tools (schemathesis): `$` would let "ada\n" pass
# in Python, so the end of the string is written as a lookahead both engines read the same way.
END = "(?![\\s\\S])"
NO_NUL = "^[^\\u0000]*" + END  # parse() refuses NUL in any string of a body: PostgreSQL text cannot hold it


def whole(pattern: re.Pattern[str]) -> str:
    """A fullmatch() pattern as a JSON Schema pattern (which searches): anchored at both ends."""
    return f"^(?:{pattern.pattern}){END}"


def _esc(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x80 else f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)


def char_class(test: typing.Callable[[str], bool], chars: typing.Iterable[str] | None = None) -> str:
    """The regex character class (without brackets) of every character (of `chars`, in code point order; else of
    all of Unicode) for which test(ch) holds."""
    out: list[str] = []
    start = prev = -2
    for ch in chars if chars is not None else map(chr, range(sys.maxunicode + 1)):
        if not test(ch):
            continue
        cp = ord(ch)
        if cp != prev + 1:
            if start >= 0:
                out.append(_esc(start) if start == prev else f"{_esc(start)}-{_esc(prev)}")
            start = cp
        prev = cp
    if start >= 0:
        out.append(_esc(start) if start == prev else f"{_esc(start)}-{_esc(prev)}")
    return "".join(out)


def _all(keep: typing.Callable[[str], bool]) -> typing.Iterator[str]:
    """The characters of Unicode for which the str method `keep` holds, filtered at C speed."""
    return filter(keep, map(chr, range(sys.maxunicode + 1)))


@cache
def _space() -> str:
    return char_class(str.isspace, _all(str.isspace))  # what str.strip() removes


def trimmed_pattern(high: int, required: bool) -> str:
    """Strings whose strip() is at most `high` characters (and not empty when required), without NUL."""
    w = _space()
    core = f"[^{w}\\u0000](?:[^\\u0000]{{0,{high - 2}}}[^{w}\\u0000])?" if high > 1 else f"[^{w}\\u0000]"
    return f"^[{w}]*{core if required else f'(?:{core})?'}[{w}]*{END}"


def blank_pattern() -> str:
    """Strings that strip() to nothing."""
    return f"^[{_space()}]*{END}"


_WORD = re.compile(r"\w")


@cache
def visible_pattern() -> str:
    """Strings holding at least one character that shows (render.is_invisible is the rule).

    Written as Python's Unicode `\\w` (minus the few blank letters it includes) or one of the ~9,000 other
    characters that show: exact, and small enough for a fuzzer to build a generator from in well under a second
    (the plain list of all ~150,000 visible characters takes many seconds, every time)."""
    # Whatever is not printable (controls, format, private-use, unassigned, separators) is invisible too
    # (tests/security/test_sec_openapi.py checks it): only the ~150,000 printable code points need is_invisible.
    printable = list(_all(str.isprintable))
    blanks = char_class(lambda ch: _WORD.match(ch) is not None and is_invisible(ch), printable)
    others = char_class(lambda ch: _WORD.match(ch) is None and not is_invisible(ch), printable)
    return f"(?:(?![{blanks}])\\w|[{others}])"


# Characters a Text rule's `refuse` keeps out (server/render.py says why): "name" for display and category names,
# "title" for thread titles.
REFUSE = {"name": refused_in_name, "title": refused_in_title}
REFUSED_WHAT = {"name": "invisible, control or text-direction characters",
                 "title": "text-direction controls (U+202A–U+202E, U+2066–U+2069)"}


@dataclass(frozen=True)
class Text:
    """A text field: low–high characters after trimming, refused (422) when blank or only invisible characters.
    With blank_is_none a blank value means "absent" (an optional note). Stored trimmed. `refuse` ("name",
    "title") also refuses the characters of REFUSE anywhere in it."""

    low: int
    high: int
    blank_is_none: bool = False
    refuse: str = ""

    def check(self, value: str | None, field: str) -> str | None:
        if value is None or (self.blank_is_none and not value.strip()):
            return None
        value = trimmed(value, field, self.low, self.high)
        if self.refuse:
            check_chars(value, field, self.refuse)
        return value


@cache
def refused_pattern(refuse: str) -> str:
    """A JSON Schema pattern of strings without the characters the rule `refuse` keeps out, but in the white space
    that trimming removes (lone surrogates are left out of it: they are not valid JSON text, so no body holds one)."""
    test = REFUSE[refuse]
    w = _space()
    return f"^[{w}]*[^{char_class(lambda ch: test(ch) and not 0xD800 <= ord(ch) <= 0xDFFF)}]*[{w}]*{END}"


def check_chars(value: str, field: str, refuse: str) -> None:
    """422 naming `field` when `value` holds a character the rule `refuse` ("name", "title") keeps out."""
    bad = first_refused(value, REFUSE[refuse])
    if bad is not None:
        raise Invalid(f"{field} must not contain {REFUSED_WHAT[refuse]}: it holds U+{ord(bad):04X}", field=field)


@dataclass(frozen=True)
class Time:
    """A time field (docs/api.md "Times"): with a zone, its year as written TIME_YEARS (the JSON Schema pattern
    TIME_PATTERN says the same), else 422 naming the field. Kept in UTC. Every time a client sends is an Instant."""

    def check(self, value: datetime | None, field: str) -> datetime | None:
        if value is None:
            return None
        if not time_in_range(value):
            raise Invalid(f"{field} must be a time with a zone in the years {TIME_YEARS[0]}–{TIME_YEARS[1]}, "
                          "like 2030-01-31T12:00:00Z", field=field)
        return value.astimezone(UTC)


Instant = Annotated[datetime, msgspec.Meta(tz=True, extra_json_schema={
    "pattern": TIME_PATTERN,
    "description": f"A time with a zone; its year (as written) {TIME_YEARS[0]}–{TIME_YEARS[1]}"}), Time()]


def _rules(model: type, kinds: tuple[type, ...]) -> tuple[tuple[str, Any], ...]:
    rules = []
    for name, hint in typing.get_type_hints(model, include_extras=True).items():
        for part in (hint, *typing.get_args(hint)):
            rule = next((m for m in getattr(part, "__metadata__", ()) if isinstance(m, kinds)), None)
            if rule is not None:
                rules.append((name, rule))
                break
    return tuple(rules)


@cache
def text_rules(model: type) -> tuple[tuple[str, Text], ...]:
    """The (field, Text rule) pairs of a Struct, from its annotations (`X | None` included)."""
    return _rules(model, (Text,))


@cache
def field_rules(model: type) -> tuple[tuple[str, Text | Time], ...]:
    """Every rule parse() applies after decoding: the Text and Time fields of a Struct."""
    return _rules(model, (Text, Time))


def state(request: Request) -> AppState:
    return request.app.state.parley  # type: ignore[no-any-return]


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json",
                    headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


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
    return b"".join(chunks)


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
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
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


def trimmed(value: str, field: str, low: int, high: int) -> str:
    value = value.strip()
    if not low <= len(value) <= high:
        raise Invalid(f"{field} must be {low}–{high} characters" + (" after trimming" if low else ""), field=field)
    if "\x00" in value:
        raise Invalid(f"{field} must not contain NUL characters", field=field)
    if low and is_invisible(value):  # zero-width, word joiner, Braille blank…: shows as blank
        raise Invalid(f"{field} must show something: it holds only invisible characters", field=field)
    return value


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


async def limit(st: AppState, key: str, rule: tuple[int, float], cost: float = 1.0,
                need: float | None = None) -> None:
    """Take from a token bucket; 429 with Retry-After when it is empty."""
    from ..errors import RateLimited
    wait = await st.limiter.hit(key, rule, cost, need)
    if wait > 0:
        raise RateLimited(wait)


# A user's token buckets for writes, by name: the key is "<name>:<user id>", the rule a field of Limits.
BUCKETS = {
    "thread": lambda lim: lim.thread_per_user,
    "post": lambda lim: lim.post_per_user,
    "flag": lambda lim: lim.post_per_user,
    "edit": lambda lim: lim.edit_per_user,
    "render": lambda lim: lim.edit_per_user,
    "vote": lambda lim: lim.vote_per_user,
    "read": lambda lim: lim.read_per_user,
    "notifications_read": lambda lim: lim.notifications_read_per_user,
    "moderation": lambda lim: lim.moderation_per_user,
    "preferences": lambda lim: lim.edit_per_user,
    "upload": lambda lim: lim.upload_per_user,
}


class Writing(NamedTuple, Generic[T]):
    st: AppState
    user: Any  # the users row of the session (asyncpg.Record)
    body: T
    id: int  # the route's {id}, 0 when it has none


async def writing(request: Request, model: type[T] | None = None, *, bucket: str | None = None,
                  moderator: bool = False) -> Writing[T]:
    """The opening of every signed-in write, in one order: the Origin first (a cross-site request
    learns nothing else), the session, moderator rights, the {id} in the path, the body parsed with its
    limits, and last the user's token bucket (a request refused for its shape spends no token)."""
    st = state(request)
    auth.check_origin(request, st.settings)
    user = await auth.require_user(request, st)
    if moderator:
        auth.require_moderator(user)
    id_ = path_id(request) if "id" in request.path_params else 0
    body = await parse(request, model) if model is not None else None
    if bucket is not None:
        await limit(st, f"{bucket}:{user['id']}", BUCKETS[bucket](st.settings.limits))
    return Writing(st, user, body, id_)  # type: ignore[arg-type]
