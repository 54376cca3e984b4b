"""The @mention scanner on rendered HTML: candidates outside code and links, in order; links only for
known names; punctuation after a name; the HTML cap holds after linking."""

from __future__ import annotations

import pytest

from server import mentions
from server.errors import Invalid
from server.render import MAX_HTML, render


def test_candidates_skip_code_links_and_addresses():
    """Names in text count (first appearance first, lower case); in code, pre, links or e-mail addresses not."""
    html = render("Hi @Ada and @bob_2, `@inline` and\n\n```\n@block\n```\n\nmail ada@example.com, [@linked](https://x.y)")
    assert mentions.candidates(html) == ["ada", "bob_2"]


def test_a_trailing_dot_is_punctuation_unless_the_name_has_it():
    """"@ada." links ada and keeps the dot; a user literally named "ada." would win."""
    html = render("thanks @ada.")
    assert mentions.candidates(html) == ["ada.", "ada"]
    assert mentions.link(html, {"ada": "Ada"}).strip() == '<p>thanks <a class="mention" href="/u/Ada">@Ada</a>.</p>'
    assert 'href="/u/ada."' in mentions.link(html, {"ada.": "ada.", "ada": "ada"})


def test_only_known_names_become_links():
    """An unknown name stays text; the known one is linked with its stored spelling."""
    html = render("@ghost meets @BOB")
    linked = mentions.link(html, {"bob": "Bob"}).strip()
    assert linked == '<p>@ghost meets <a class="mention" href="/u/Bob">@Bob</a></p>'


def test_linking_cannot_grow_the_html_past_the_cap():
    """A body of many short mentions that fits as text but not as links is refused (field body)."""
    body = " ".join(["@abc"] * 7000)
    html = "<p>" + body + "</p>"
    assert len(html) < MAX_HTML
    with pytest.raises(Invalid) as err:
        mentions.link(html, {"abc": "abc"})
    assert err.value.field == "body"
