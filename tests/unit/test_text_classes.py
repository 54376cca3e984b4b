"""The OpenAPI text patterns' character classes, picked from a C-speed superset, are those of a full scan."""

from __future__ import annotations

import re
import sys

from server import fields
from server.render import is_invisible


def _full_scan(test) -> str:  # type: ignore[no-untyped-def]
    """The class the slow way: the rule called on every code point of Unicode."""
    return fields.char_class(test)


def test_refused_classes_equal_a_full_scan() -> None:
    """Each refuse rule's published class holds exactly the characters a scan of all of Unicode finds."""
    for refuse, test in fields.REFUSE.items():
        published = fields.refused_pattern(refuse)
        full = _full_scan(lambda ch, t=test: t(ch) and not 0xD800 <= ord(ch) <= 0xDFFF)
        assert f"[^{full}]*" in published, refuse


def test_visible_class_equals_a_full_scan() -> None:
    """The "shows something" pattern's two classes are those of is_invisible run on every printable character."""
    word = re.compile(r"\w")
    printable = [chr(cp) for cp in range(sys.maxunicode + 1) if chr(cp).isprintable()]
    blanks = fields.char_class(lambda ch: word.match(ch) is not None and is_invisible(ch), printable)
    others = fields.char_class(lambda ch: word.match(ch) is None and not is_invisible(ch), printable)
    assert fields.visible_pattern() == f"(?:(?![{blanks}])\\w|[{others}])"
