"""The accepted answer and the response order on the thread page, in Chromium: the asker accepts, every
open copy marks it live, Top puts it first, the order is kept in the URL and a new reply lands in its place."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .conftest import Site, unique


def ids(page: Any) -> list[int]:
    return [int(x) for x in page.locator('[data-testid="responses"] > [data-kind="response"]').evaluate_all(
        "els => els.map(e => e.dataset.postId)")]


def test_asker_accepts_watchers_see_it_and_sorts_place_it(site: Site, readers: Any) -> None:
    """Accept → the mark shows on both pages; Top lists it first; ?sort= is kept; Newest puts a new reply on top."""
    helper, _ = site.client()
    other, _ = site.client()
    asker = readers()
    asker.sign_up(unique("Asker "))
    r = asker.context.request.post("/api/threads", data={"category": site.category(), "title": "Which pan?",
                                                         "body": "For pancakes."})
    tid = r.json()["thread"]["id"]
    first = site.reply(helper, tid, "Cast iron.")
    second = site.reply(other, tid, "Non-stick, for a start.")
    site.mod.put(f"/api/posts/{first['id']}/vote", json={"value": 1})

    watcher = readers()
    wpage = watcher.open_thread(tid)
    apage = asker.open_thread(tid)
    apage.locator(f'[data-post-id="{second["id"]}"] [data-testid="accept"]').click()
    for page in (apage, wpage):
        post = page.locator(f'[data-post-id="{second["id"]}"]')
        expect(post.locator('[data-testid="accepted-badge"]')).to_be_visible()
        expect(post).to_have_class(re.compile("is-accepted"))
    assert watcher.page.locator('[data-testid="accept"]').count() == 0  # only the asker (or a moderator)

    expect(wpage.locator('[data-testid="sort-oldest"]')).to_have_attribute("aria-pressed", "true")
    assert ids(wpage) == [first["id"], second["id"]]
    wpage.locator('[data-testid="sort-top"]').click()
    expect(wpage).to_have_url(re.compile(r"\?sort=top"))
    assert ids(wpage) == [second["id"], first["id"]]  # accepted first, though it has the lower score
    wpage.reload()
    watcher.wait_live()
    expect(wpage.locator('[data-testid="sort-top"]')).to_have_attribute("aria-pressed", "true")
    assert ids(wpage) == [second["id"], first["id"]]
    wpage.locator('[data-testid="sort-newest"]').click()
    third = site.reply(helper, tid, "A carbon-steel pan, seasoned.")
    expect(wpage.locator(f'[data-post-id="{third["id"]}"]')).to_be_visible()
    assert ids(wpage) == [third["id"], second["id"], first["id"]]
    # Withdrawing it live, too.
    apage.locator(f'[data-post-id="{second["id"]}"] [data-testid="unaccept"]').click()
    expect(wpage.locator('[data-testid="accepted-badge"]')).to_have_count(0)
    link = wpage.locator(f'[data-post-id="{first["id"]}"] [data-testid="permalink"]')
    expect(link).to_have_attribute("href", f"/t/{tid}#post-{first['id']}")
    assert asker.errors == [] and watcher.errors == []
