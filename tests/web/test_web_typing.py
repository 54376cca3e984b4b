"""Typing in the page (issue 17): "NAME is commenting…" under the response being commented on, "NAME is
replying…" below the responses, in a real Chromium against a real `parley serve` process."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Site
from .test_web_axe import axe_source, violations  # noqa: F401 - axe_source is a fixture


def comment_typing(page: Any, post_id: int) -> Any:
    return page.locator(f'[data-post-id="{post_id}"] [data-testid="comment-typing"]')


def test_typing_a_comment_shows_is_commenting_under_that_response_only(site: Site, readers: Any) -> None:
    """B typing in the comment box under response R shows "B is commenting…" under R on A's page, not elsewhere."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    first = site.reply(asker, tid, "The first response")["id"]
    second = site.reply(asker, tid, "The second response")["id"]
    alice, bob = readers(), readers()
    alice.sign_up("Ada Watcher")
    bob.sign_up("Bea Commenter")
    a, b = alice.open_thread(tid), bob.open_thread(tid)
    expect(a.locator('[data-testid="watching-count"]')).to_have_text("2 watching")
    box = b.locator(f'[data-post-id="{second}"] [data-testid="comment-input"]')
    box.click()
    box.press_sequentially("Could you say more about", delay=40)
    under_second = comment_typing(a, second)
    expect(under_second).to_have_text("Bea Commenter is commenting…")
    expect(under_second).to_have_attribute("aria-live", "polite")
    expect(comment_typing(a, first)).to_have_text("")
    expect(a.locator('[data-testid="typing-indicator"]')).to_have_text("")  # not "is replying…"
    expect(comment_typing(b, second)).to_have_text("")  # the typist's own page shows nothing
    # It expires like the reply indicator once the typing stops.
    expect(under_second).to_have_text("", timeout=12_000)


def test_moving_from_a_comment_box_to_the_response_box_moves_the_indicator(site: Site, readers: Any) -> None:
    """After commenting under R, typing a response shows "is replying…" at once and clears R's "is commenting…"."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    rid = site.reply(asker, tid, "A response to comment on")["id"]
    alice, bob = readers(), readers()
    alice.sign_up("Ada Watcher")
    bob.sign_up("Cal Switcher")
    a, b = alice.open_thread(tid), bob.open_thread(tid)
    expect(a.locator('[data-testid="watching-count"]')).to_have_text("2 watching")
    box = b.locator(f'[data-post-id="{rid}"] [data-testid="comment-input"]')
    box.click()
    box.press_sequentially("Hmm", delay=40)
    expect(comment_typing(a, rid)).to_have_text("Cal Switcher is commenting…")
    b.locator('[data-testid="reply-input"]').press_sequentially("Actually, a full answer", delay=40)
    expect(a.locator('[data-testid="typing-indicator"]')).to_have_text("Cal Switcher is replying…")
    expect(comment_typing(a, rid)).to_have_text("")
    assert not alice.errors and not bob.errors


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_is_commenting_passes_axe(site: Site, readers: Any, axe_source: str, scheme: str) -> None:  # noqa: F811
    """The thread page with "NAME is commenting…" showing under a response has no axe violation, in both themes."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    rid = site.reply(asker, tid, "A response")["id"]
    watcher, typist = readers(color_scheme=scheme), readers()
    watcher.sign_up("Ada Watcher")
    typist.sign_up("Dee Typist")
    a, b = watcher.open_thread(tid), typist.open_thread(tid)
    expect(a.locator('[data-testid="watching-count"]')).to_have_text("2 watching")
    b.locator(f'[data-post-id="{rid}"] [data-testid="comment-input"]').press_sequentially("Well", delay=40)
    expect(comment_typing(a, rid)).to_have_text("Dee Typist is commenting…")
    assert violations(a, axe_source) == []
