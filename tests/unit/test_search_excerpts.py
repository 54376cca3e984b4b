"""Search snippets' excerpts (server/store/search.py): cut at word boundaries, never losing the word the cut
lands on the start of (issue 34: "search snippets drop the first word")."""

from __future__ import annotations

import re

from server.store.search import SNIPPET, SNIPPET_LEAD, excerpts


def test_an_excerpt_that_starts_at_a_word_keeps_that_word() -> None:
    """When the excerpt's start falls exactly on the first letter of a word, that word is its first word."""
    for shift in range(0, 8):
        lead = "a" * (SNIPPET - SNIPPET_LEAD + shift) + " "
        body = lead + "Firstword " + "x " * (SNIPPET_LEAD // 2 - 5) + "kettle and more words after it"
        hit = body.index("kettle")
        start = hit - SNIPPET_LEAD
        if body[start - 1] != " ":
            continue
        got = excerpts(body, re.compile("kettle"))[0]
        assert got.startswith(body[start:start + 10].split()[0]), (shift, got[:30])


def test_an_excerpt_that_starts_inside_a_word_drops_only_that_part() -> None:
    """A start inside a word moves to the next word: no half word begins the excerpt."""
    body = "word " * 60 + "kettle " + "tail " * 40
    got = excerpts(body, re.compile("kettle"))[0]
    assert got.split()[0] == "word" and "kettle" in got
