"""Coming back, in Chromium: the bell counts a reply live in two tabs and reading in one clears both,
the title shows the count, a third reader's home page shows a new thread without reload, and the composer
completes an @mention by keyboard."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .conftest import Site, unique


def test_a_reply_turns_the_askers_bell_to_one_in_two_tabs_and_reading_clears_both(site: Site, readers: Any) -> None:
    """B replies to A's question; A's two open tabs show 1 (and "(1) …" in the title); mark all read in one
    tab clears the other."""
    ada = readers()
    ada.sign_up(unique("Ada "))
    r = ada.context.request.post("/api/threads", data={"category": site.category(), "title": "Kettles: why whistle?",
                                                      "body": "I wonder."})
    assert r.status == 201, r.text()
    tid = r.json()["thread"]["id"]
    tab1 = ada.page
    tab2 = ada.context.new_page()
    for tab in (tab1, tab2):
        tab.goto("/")
        expect(tab.locator('[data-testid="connection-status"]')).to_have_attribute("data-state", "online")
        expect(tab.locator('[data-testid="bell-count"]')).to_have_text("0")
    bob, _ = site.client()
    site.reply(bob, tid, f"Steam, @{ada.user['username']}.")
    for tab in (tab1, tab2):
        expect(tab.locator('[data-testid="bell-count"]')).to_have_text("1")
        expect(tab).to_have_title(re.compile(r"^\(1\) "))
    tab1.locator('[data-testid="bell"]').click()
    item = tab1.locator('[data-testid="notification"]')
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Kettles: why whistle?")
    expect(item.locator("a")).to_have_attribute("href", re.compile(rf"^/t/{tid}#post-\d+$"))
    tab1.locator('[data-testid="mark-all-read"]').click()
    for tab in (tab1, tab2):
        expect(tab.locator('[data-testid="bell-count"]')).to_have_text("0")
        expect(tab).not_to_have_title(re.compile(r"^\(\d+\) "))
    assert ada.errors == []


def test_a_new_thread_appears_on_a_third_readers_home_page_without_reload(site: Site, readers: Any) -> None:
    """A guest's home page (Active tab) shows a thread created meanwhile at the top, and its count moves live."""
    guest = readers()
    page = guest.page
    page.goto("/")
    guest.wait_live()
    asker, _ = site.client()
    title = unique("Live list question ")
    tid = site.thread(asker, title=title)["thread"]["id"]
    first = page.locator('[data-testid="thread-list"] .thread-item').first
    expect(first).to_contain_text(title)
    helper, _ = site.client()
    site.reply(helper, tid, "An answer that moves the count")
    expect(page.locator(f'[data-thread-id="{tid}"] .thread-count strong')).to_have_text("1")
    assert guest.errors == []


def test_the_composer_completes_a_mention_by_keyboard(site: Site, readers: Any) -> None:
    """Typing @ and a prefix lists matching users; ArrowDown then Enter puts the chosen @username in the text."""
    tag = unique("mz")
    first, _ = site.client(username=f"{tag}first")
    second, _ = site.client(username=f"{tag}second")
    asker, _ = site.client()
    tid = site.thread(asker)["thread"]["id"]
    me = readers()
    me.sign_up(unique("Writer "))
    page = me.open_thread(tid)
    box = page.locator("textarea").last
    box.click()
    box.type(f"Thanks @{tag}")
    options = page.locator('[data-testid="mention-option"]')
    expect(options).to_have_count(2)
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(page.locator('[data-testid="mention-box"]')).to_have_count(0)
    assert box.input_value() == f"Thanks @{tag}second "
    box.type("x")
    box.press("Escape")
    assert me.errors == []


def test_a_returning_reader_sees_how_many_are_new_and_can_unfollow(site: Site, readers: Any) -> None:
    """Opening a thread records the read position; two replies later the reader sees "2 new since your last
    visit"; the Follow control toggles following over the API."""
    asker, _ = site.client()
    tid = site.thread(asker, title="Coming back later")["thread"]["id"]
    me = readers()
    me.sign_up(unique("Returner "))
    page = me.open_thread(tid)
    follow = page.locator('[data-testid="follow"]')
    expect(follow).to_have_attribute("aria-pressed", "false")
    reported = False
    for _ in range(40):  # the page reports its read position after a short debounce
        r = me.context.request.get(f"/api/threads/{tid}")
        if r.json()["thread"]["unread"] == 0:
            reported = True
            break
        page.wait_for_timeout(250)
    assert reported, "the page never reported its read position"
    page.goto("/")
    other, _ = site.client()
    site.reply(other, tid, "News one")
    site.reply(other, tid, "News two")
    page = me.open_thread(tid)
    expect(page.locator('[data-testid="unread-banner"]')).to_contain_text("2 new since your last visit")
    follow = page.locator('[data-testid="follow"]')
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    assert me.context.request.get(f"/api/threads/{tid}").json()["thread"]["following"] is True
    assert me.errors == []
