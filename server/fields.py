"""The rules of text and time fields, declared once on the request Structs (and on the websocket frames and
query parameters): `Text` and `Time` check a decoded value (422 naming the field), and the same rules written
as JSON Schema patterns, which server/openapi.py publishes and schemathesis runs. Neither HTTP nor the live
path owns them: api/inputs.py, live/ws.py, cli.py and openapi.py all read them here.
"""

from __future__ import annotations

import operator
import re
import sys
import typing
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import compress
from typing import Annotated, Any

import msgspec

from . import limits
from .errors import Invalid
from .render import (
    BIDI_CONTROLS,
    BLANK_LETTERS,
    INVISIBLE_CATEGORIES,
    NAME_REFUSED_CATEGORIES,
    first_refused,
    is_invisible,
    refused_in_name,
    refused_in_title,
)
from .wire import TIME_PATTERN, TIME_YEARS, time_in_range

ID_MAX = limits.BIGINT
Id = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]

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


def _of_categories(categories: frozenset[str], chars: typing.Sequence[str] | None = None) -> list[str]:
    """The characters (of `chars`, else of all of Unicode) whose general category is in `categories`, picked at C
    speed (compress/map over C functions: no Python call per character). The rules below are Python functions;
    calling one for each of Unicode's 1.1 million code points cost the OpenAPI document's first request over a
    second of CPU, so each rule is run only on a superset picked here."""
    every: typing.Iterable[str] = chars if chars is not None else map(chr, range(sys.maxunicode + 1))
    again: typing.Iterable[str] = chars if chars is not None else map(chr, range(sys.maxunicode + 1))
    return list(compress(every, map(categories.__contains__, map(unicodedata.category, again))))


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
    # is_invisible's three parts, each picked at C speed: the printable characters that show as nothing.
    maybe_blank = sorted({*_of_categories(INVISIBLE_CATEGORIES, printable), *filter(str.isspace, printable),
                          *BLANK_LETTERS})
    blanks = char_class(lambda ch: _WORD.match(ch) is not None and is_invisible(ch), maybe_blank)
    non_word = list(compress(printable, map(operator.not_, map(_WORD.match, printable))))
    others = char_class(lambda ch: not is_invisible(ch), non_word)
    return f"(?:(?![{blanks}])\\w|[{others}])"


# Characters a Text rule's `refuse` keeps out (server/render.py says why): "name" for display and category names,
# "title" for thread titles.
REFUSE = {"name": refused_in_name, "title": refused_in_title}
# For the JSON Schema patterns: a superset of each rule's characters, in code point order, which the rule is run on.
_REFUSE_AMONG: dict[str, typing.Callable[[], typing.Sequence[str]]] = {
    "name": lambda: sorted({*_of_categories(NAME_REFUSED_CATEGORIES), *BLANK_LETTERS}),
    "title": lambda: sorted(BIDI_CONTROLS),
}
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
    refused = char_class(lambda ch: test(ch) and not 0xD800 <= ord(ch) <= 0xDFFF, _REFUSE_AMONG[refuse]())
    return f"^[{w}]*[^{refused}]*[{w}]*{END}"


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


@dataclass(frozen=True)
class Shows:
    """A field kept as sent (a password: never trimmed) that must show something: blank once trimmed, or only
    invisible characters, is 422 naming the field (CONTRACT "Limits"). openapi.py's Shows component says the same
    in JSON Schema (the field's Meta refers to it)."""

    def check(self, value: str | None, field: str) -> str | None:
        if value is not None and is_invisible(value.strip()):
            raise Invalid(f"{field} must not be blank: it holds only spaces or invisible characters", field=field)
        return value


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
def field_rules(model: type) -> tuple[tuple[str, Text | Time | Shows], ...]:
    """Every rule parse() applies after decoding: the Text, Time and Shows fields of a Struct."""
    return _rules(model, (Text, Time, Shows))


def trimmed(value: str, field: str, low: int, high: int) -> str:
    value = value.strip()
    if not low <= len(value) <= high:
        raise Invalid(f"{field} must be {low}–{high} characters" + (" after trimming" if low else ""), field=field)
    if "\x00" in value:
        raise Invalid(f"{field} must not contain NUL characters", field=field)
    if low and is_invisible(value):  # zero-width, word joiner, Braille blank…: shows as blank
        raise Invalid(f"{field} must show something: it holds only invisible characters", field=field)
    return value
