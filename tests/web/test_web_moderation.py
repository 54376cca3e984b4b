"""Moderation in Chromium: a member flags a post from its menu, the moderator's open page counts it live,
the moderator deletes it from the review queue, and a guest reads the deletion in the public log."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from support.databases import make_moderator

from .conftest import Site, unique


def test_flag_count_live_delete_from_queue_and_public_log(site: Site, readers: Any, pg_url: str) -> None:
    """Flag → the moderator's header count rises without a reload → Delete post in /review → /modlog lists it."""
    asker, _ = site.client()
    spammer, spam_user = site.client(display_name=unique("Spammy "))
    tid = site.thread(asker, title="Which bread flour?")["thread"]["id"]
    spam = site.reply(spammer, tid, "Buy cheap watches at example.com!!!")

    moderator = readers()
    mod_user = moderator.sign_up(unique("Mod "))
    make_moderator(pg_url, mod_user["username"])
    mpage = moderator.page
    mpage.goto("/")
    moderator.wait_live()
    review = mpage.locator('[data-testid="review-link"]')
    expect(review).to_be_visible()
    before = site.mod.get("/api/flags?limit=1").json()["open"]

    member = readers()
    member.sign_up(unique("Member "))
    page = member.open_thread(tid)
    post = page.locator(f'[data-post-id="{spam["id"]}"]').first
    post.locator('[data-testid="flag"]').click()
    dialog = page.locator('[data-testid="flag-dialog"]')
    expect(dialog).to_be_visible()
    dialog.get_by_label("Spam").check()
    dialog.get_by_label("Anything else (optional)").fill("a link farm")
    dialog.locator('[data-testid="flag-submit"]').click()
    expect(dialog).to_have_count(0)
    expect(page.locator('[data-testid="toast"]')).to_contain_text("moderator")

    # Live on the moderator's page: no reload.
    expect(mpage.locator('[data-testid="review-count-badge"]')).to_have_text(str(before + 1))
    review.click()
    expect(mpage).to_have_url(re.compile(r"/review$"))
    expect(mpage.locator("h1")).to_have_text("Review queue")
    item = mpage.locator(f'[data-testid="review-item"][data-post-id="{spam["id"]}"]')
    expect(item).to_contain_text("Which bread flour?")
    expect(item).to_contain_text("a link farm")
    expect(item.locator('[data-testid="review-body"]')).to_contain_text("cheap watches")
    item.locator('[data-testid="review-delete"]').click()
    mpage.locator('[data-testid="confirm-ok"]').click()
    expect(item).to_have_count(0)
    expect(mpage.locator('[data-testid="review-count-badge"]')).to_have_count(0 if before == 0 else 1)

    guest = readers()
    gpage = guest.page
    gpage.goto("/modlog")
    expect(gpage).to_have_title(re.compile("Moderation log"))
    entry = gpage.locator('[data-testid="modlog-entry"][data-action="post.deleted"]').first
    expect(entry).to_contain_text("deleted a post")
    expect(entry).to_contain_text(spam_user["username"])
    expect(entry.locator('[data-testid="modlog-target"]')).to_have_attribute("href", f"/t/{tid}#post-{spam['id']}")
    expect(gpage.locator("main")).not_to_contain_text("cheap watches")
    assert member.errors == [] and moderator.errors == [] and guest.errors == []
