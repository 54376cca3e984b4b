"""Tags, similar questions, duplicates and bookmarks in Chromium: asking shows similar questions while the title
is typed and completes tags, the thread and its list row carry the tags, a duplicate shows its banner (live),
and a bookmark appears on the user's own profile."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect

from .conftest import Site, unique


def word() -> str:
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def test_asking_shows_similar_questions_and_completes_tags(site: Site, readers: Any) -> None:
    """Typing a title lists questions like it (answered first); the tag field offers tags in use; the question is
    posted with its tags, shown on the thread and on its list row, and a tag chip leads to the tag's questions."""
    w = word()
    tag = unique("kt-")[:20]
    asker, _ = site.client()
    helper, _ = site.client()
    r = asker.post("/api/threads", json={"category": site.category(), "title": f"How do I descale a {w} kettle",
                                         "body": "Limescale everywhere.", "tags": [tag]})
    assert r.status_code == 201, r.text
    old = r.json()
    answer = site.reply(helper, old["thread"]["id"], "Vinegar and water.")
    assert asker.put(f"/api/threads/{old['thread']['id']}/accepted", json={"post_id": answer["id"]}).status_code == 200
    reader = readers()
    reader.sign_up(unique("Asker "))
    page = reader.page
    page.goto(f"/c/{site.category()}")
    page.locator('[data-testid="ask-open"]').click()
    page.locator('[data-testid="ask-title"]').fill(f"descaling my {w} kettle")
    similar = page.locator('[data-testid="similar-item"]')
    expect(similar.first).to_contain_text(f"How do I descale a {w} kettle", timeout=30_000)
    expect(similar.first.locator("a")).to_have_attribute("href", f"/t/{old['thread']['id']}")
    expect(page.locator('[data-testid="similar"] h2')).to_have_text("Questions that may already have your answer")
    tags = page.locator('[data-testid="ask-tags"]')
    tags.press_sequentially(tag[:6], delay=30)
    expect(page.locator(f'[data-testid="ask-tags-list"] option[value="{tag}"]')).to_have_count(1, timeout=30_000)
    tags.fill(f"{tag} Second-Tag")
    page.locator('[data-testid="ask-body"]').fill("Same kettle, new question.")
    page.locator('[data-testid="ask-submit"]').click()
    expect(page).to_have_url(re.compile(r"/t/\d+$"))
    chips = page.locator('[data-testid="thread-tags"] [data-testid="tag"]')
    expect(chips).to_have_text([tag, "second-tag"])
    page.goto(f"/c/{site.category()}")
    row = page.locator(".thread-item", has_text=f"descaling my {w} kettle")
    expect(row.locator('[data-testid="tag"]')).to_have_text([tag, "second-tag"])
    row.locator('[data-testid="tag"]', has_text=tag).click()
    expect(page).to_have_url(re.compile(r"/search\?q=tag%3A"))
    expect(page.locator('[data-testid="search-result"]')).to_have_count(2)
    assert reader.errors == []


def test_bad_tags_are_shown_on_the_field(site: Site, readers: Any) -> None:
    """A tag the server refuses (a space inside is split; a look-alike letter is not) is shown on the tag field."""
    reader = readers()
    reader.sign_up(unique("Asker "))
    page = reader.page
    page.goto(f"/c/{site.category()}")
    page.locator('[data-testid="ask-open"]').click()
    page.locator('[data-testid="ask-title"]').fill("A question with a bad tag")
    page.locator('[data-testid="ask-body"]').fill("Body")
    page.locator('[data-testid="ask-tags"]').fill("p\u0443thon")
    page.locator('[data-testid="ask-submit"]').click()
    expect(page.locator('[data-testid="ask-tags"]')).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-testid="ask-tags"]')).to_be_focused()


def test_a_duplicate_shows_its_banner_live_and_bookmarks_reach_the_profile(site: Site, readers: Any) -> None:
    """A moderator marks the open thread a duplicate: its banner appears live, links the original, and the reply
    box goes; a bookmarked post is listed on the reader's own profile."""
    asker, _ = site.client()
    original = site.thread(asker, title="The original kettle question")["thread"]
    dup = site.thread(asker, title="The same kettle question again")
    reader = readers()
    me = reader.sign_up(unique("Reader "))
    page = reader.open_thread(dup["thread"]["id"])
    expect(page.locator('[data-testid="duplicate-banner"]')).to_be_hidden()
    expect(page.locator('[data-testid="reply-form"]')).to_be_visible()
    r = site.mod.put(f"/api/threads/{dup['thread']['id']}/duplicate", json={"of": original["id"]})
    assert r.status_code == 200, r.text
    banner = page.locator('[data-testid="duplicate-banner"]')
    expect(banner).to_be_visible(timeout=30_000)
    expect(banner.locator('[data-testid="duplicate-link"]')).to_have_attribute("href", f"/t/{original['id']}")
    expect(page.locator('[data-testid="reply-form"]')).to_be_hidden()
    page.locator('[data-testid="question"] [data-testid="bookmark"]').click()
    expect(page.locator('[data-testid="toast"]')).to_contain_text("Bookmarked")
    page.goto(f"/u/{me['username']}")
    expect(page.locator('[data-testid="bookmarks"] [data-testid="profile-post-link"]')).to_have_text(
        "The same kettle question again")
    banner_link = f"/t/{dup['thread']['id']}"
    page.goto(banner_link)
    page.locator('[data-testid="duplicate-link"]').click()
    expect(page.locator('[data-testid="thread-title"]')).to_have_text("The original kettle question")
    assert reader.errors == []


def test_search_page_filters_keep_label_and_control_together(site: Site, readers: Any) -> None:
    """The search page has category, author, tag and order filters, each label above its control on a desktop and
    on a phone; filtering by tag and author narrows the results and survives in the URL."""
    w = word()
    tag = unique("sf-")[:20]
    alice, alice_user = site.client()
    bob, _ = site.client()
    for client, tags in ((alice, [tag]), (bob, [tag]), (alice, [])):
        r = client.post("/api/threads", json={"category": site.category(), "title": f"About {w}", "body": "Body",
                                              "tags": tags})
        assert r.status_code == 201, r.text
    for viewport in ((1280, 900), (390, 844)):
        reader = readers(viewport=viewport)
        page = reader.page
        page.goto(f"/search?q={w}")
        expect(page.locator('[data-testid="search-result"]')).to_have_count(3)
        for testid in ("search-category", "search-author", "search-tag", "search-sort"):
            control = page.locator(f'[data-testid="{testid}"]')
            label = page.locator(f'label[for="{control.get_attribute("id")}"]')
            lbox, cbox = label.bounding_box(), control.bounding_box()
            assert lbox and cbox and 0 <= cbox["y"] - (lbox["y"] + lbox["height"]) < 16, (viewport, testid)
            assert abs(lbox["x"] - cbox["x"]) < 4, (viewport, testid)
        page.locator('[data-testid="search-tag"]').fill(tag)
        page.locator('[data-testid="search-author"]').fill(alice_user["username"])
        page.locator('[data-testid="search-form"] button[type="submit"]').click()
        expect(page).to_have_url(re.compile(r"author=.*tag="))
        expect(page.locator('[data-testid="search-result"]')).to_have_count(1)
        assert reader.errors == []


def test_a_moderator_marks_a_duplicate_from_the_page(site: Site, readers: Any, pg_url: str) -> None:
    """A moderator's "Mark duplicate" asks for the original (a link works), the banner appears, and "Not a
    duplicate" lifts it."""
    from support.databases import make_moderator
    asker, _ = site.client()
    original = site.thread(asker, title="Which kettle is quietest?")["thread"]
    dup = site.thread(asker, title="Quiet kettle recommendations")["thread"]
    mod = readers()
    me = mod.sign_up(unique("Mod "))
    make_moderator(pg_url, me["username"])
    page = mod.open_thread(dup["id"])
    page.locator('[data-testid="question"] [data-testid="mark-duplicate"]').click()
    dialog = page.locator('[data-testid="duplicate-dialog"]')
    expect(dialog).to_be_visible()
    dialog.locator('[data-testid="duplicate-of"]').fill(f"{site.base_url}/t/{original['id']}")
    dialog.locator('[data-testid="duplicate-submit"]').click()
    expect(dialog).to_have_count(0)
    expect(page.locator('[data-testid="duplicate-link"]')).to_have_text("Which kettle is quietest?", timeout=30_000)
    page.locator('[data-testid="question"] [data-testid="not-duplicate"]').click()
    expect(page.locator('[data-testid="duplicate-banner"]')).to_be_hidden(timeout=30_000)
    assert mod.errors == []
