"""Which bodies the event loop renders itself, and that the others still go to a worker."""

from __future__ import annotations

import asyncio

import pytest

from server.errors import Invalid, Unavailable
from server.render import INLINE_CHARS, INLINE_MARKS, Renderer, render, renders_inline


def test_short_plain_bodies_render_inline_and_long_or_marked_ones_do_not() -> None:
    """The in-line rule bounds both the length and the count of Markdown marks."""
    assert renders_inline("Thanks, that fixed it.")
    assert renders_inline("a" * INLINE_CHARS)
    assert not renders_inline("a" * (INLINE_CHARS + 1))
    assert renders_inline("[" * INLINE_MARKS)
    assert not renders_inline("[" * (INLINE_MARKS + 1))
    assert not renders_inline("http://a.b/(" * 17)  # slow linkify: colons and parens count
    assert not renders_inline("x@y.z " * 40)


def test_inline_body_needs_no_worker_and_others_wait_for_one() -> None:
    """A renderer with no worker started still renders a short body, and refuses a marked one with 503."""
    async def run() -> None:
        renderer = Renderer(workers=1, wait=0.05)  # never started: no worker is idle
        assert await renderer.render("Hello *world*") == render("Hello *world*")
        with pytest.raises(Unavailable):
            await renderer.render("[a](b) " * 10)
    asyncio.run(run())


def test_inline_body_is_held_to_the_same_rules() -> None:
    """A blank body rendered in-line is refused like one rendered by a worker."""
    async def run() -> None:
        with pytest.raises(Invalid):
            await Renderer(workers=1, wait=0.05).render("\u200b\u200b")
    asyncio.run(run())
