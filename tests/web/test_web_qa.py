"""The Q&A pages in Chromium: a profile lists a user's answers, a search result opens its post highlighted,
list tabs sort and mark answered threads, and "/" focuses the header search."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect

from .conftest import Site, unique


def word() -> str:
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def test_profile_lists_a_users_answers_with_permalinks(site: Site, readers: Any) -> None:
    """/u/NAME shows the display name as the one h1, the stats and each answer linking to its place."""
    asker, _ = site.client()
    helper, user = site.client(display_name=unique("Helpful Hana "))
    tid = site.thread(asker, title="How do kettles whistle?")["thread"]["id"]
    answer = site.reply(helper, tid, "Steam through a small hole.")
    reader = readers()
    page = reader.page
    page.goto(f"/u/{user['username']}")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator('[data-testid="profile-name"]')).to_have_text(user["display_name"])
    expect(page).to_have_title(re.compile(re.escape(user["display_name"])))
    expect(page.locator('[data-testid="stat-responses"] dd')).to_have_text("1")
    link = page.locator('[data-testid="profile-post-link"]')
    expect(link).to_have_count(1)
    expect(link).to_have_text("How do kettles whistle?")
    expect(link).to_have_attribute("href", f"/t/{tid}#post-{answer['id']}")
    assert page.locator("main").count() == 1 and page.locator('nav[aria-label="Main"]').count() == 1
    page.goto("/u/nobody-here-at-all")
    expect(page.locator("main")).to_contain_text("No such user")
    assert reader.errors == []


def test_search_result_opens_the_post_highlighted(site: Site, readers: Any) -> None:
    """Searching from the header lists the post with the word marked; the result opens the thread at that post."""
    w = word()
    asker, _ = site.client()
    helper, _ = site.client()
    tid = site.thread(asker, title="Where is the spare key?")["thread"]["id"]
    answer = site.reply(helper, tid, f"Under the {w} <b>flowerpot</b>, of course.")
    reader = readers()
    page = reader.page
    page.goto("/")
    reader.wait_live()
    page.keyboard.press("/")
    expect(page.locator('[data-testid="site-search-input"]')).to_be_focused()
    page.keyboard.type(w)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=" + w))
    result = page.locator('[data-testid="search-result"]')
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text(w)
    expect(result.locator(".search-snippet")).to_contain_text("<b>flowerpot</b>")  # shown as text, not markup
    expect(page.locator("h1")).to_have_count(1)
    result.locator('[data-testid="search-result-link"]').click()
    expect(page).to_have_url(re.compile(rf"/t/{tid}#post-{answer['id']}$"))
    post = page.locator(f'[data-post-id="{answer["id"]}"]')
    expect(post).to_have_class(re.compile(r"\bis-permalinked\b"))
    assert reader.errors == []


def test_list_tabs_sort_and_show_the_answered_mark(site: Site, readers: Any) -> None:
    """A category's Top tab lists by question score, Unanswered drops answered threads, ✓ marks the accepted."""
    slug = site.category_path("Tabs")
    asker, _ = site.client()
    helper, _ = site.client()
    voter, _ = site.client()
    low = site.thread(asker, title="Low question", category=slug)
    high = site.thread(asker, title="High question", category=slug)
    assert voter.put(f"/api/posts/{high['question']['id']}/vote", json={"value": 1}).status_code == 200
    answer = site.reply(helper, low["thread"]["id"], "Answered.")
    assert asker.put(f"/api/threads/{low['thread']['id']}/accepted", json={"post_id": answer["id"]}).status_code == 200
    reader = readers()
    page = reader.page
    page.goto(f"/c/{slug}?tab=top")
    items = page.locator('[data-testid="thread-list"] .thread-link')
    expect(items).to_have_text(["High question", "Low question"])
    expect(page.locator('[data-testid="list-tabs"] a[aria-current="page"]')).to_have_text("Top")
    expect(page.locator('[data-testid="answered"]')).to_have_count(1)
    answered = page.locator(f'[data-thread-id="{low["thread"]["id"]}"] [data-testid="answered"]')
    expect(answered).to_have_text("✓ answered")
    page.locator('[data-testid="list-tabs"] a', has_text="Unanswered").click()
    expect(page).to_have_url(re.compile(r"\?tab=unanswered$"))
    expect(items).to_have_text(["High question"])
    page.locator('[data-testid="list-tabs"] a', has_text="New").click()
    expect(items).to_have_text(["High question", "Low question"])
    expect(page.locator('.thread-item .user-link').first).to_have_attribute("href", re.compile(r"^/u/"))
    assert reader.errors == []
