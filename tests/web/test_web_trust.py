"""Trust on the page (issue 29), in Chromium, light and dark, checked with axe: a profile shows reputation, a
silence and the moderator's silence control; a member ignores someone and their post collapses; a moderator sees a
post held by the spam check marked, approves it, and it is an ordinary post for everyone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from support.databases import db_fetch, make_moderator

from .conftest import Site, unique
from .test_web_axe import axe_source, violations  # noqa: F401  (axe_source: the fixture)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_trust_views_work_and_pass_axe(site: Site, readers: Any, pg_url: str, axe_source: str,  # noqa: F811
                                       scheme: str) -> None:
    """Reputation on a profile; Ignore collapses a member's post (one click shows it); a silence takes the post off
    the member's open page live; the silenced member's profile says so and offers the moderator "Lift silence"; a
    held post is marked for the moderator, who approves it."""
    asker, asker_user = site.client(display_name=unique("Asker "))
    pest, pest_user = site.client(display_name=unique("Pest "))
    tid = site.thread(asker, title="Which kettle?")["thread"]["id"]
    noisy = site.reply(pest, tid, "Buy my kettles")
    held = site.reply(asker, tid, "A reply the spam check held")
    db_fetch(pg_url, "UPDATE posts SET pending = true WHERE id = $1", held["id"])  # as a held post is stored
    problems: dict[str, list[str]] = {}

    member = readers(color_scheme=scheme)
    member.sign_up(unique("Member "))
    member.page.goto(f"/u/{pest_user['username']}")
    expect(member.page.get_by_test_id("stat-reputation")).to_contain_text("1")
    member.page.get_by_test_id("profile-ignore").click()
    expect(member.page.get_by_test_id("profile-ignore")).to_have_attribute("aria-pressed", "true")
    if found := violations(member.page, axe_source):
        problems["member profile"] = found
    member.page.reload()  # the server tells the page it is ignoring them: the button says so after a reload
    expect(member.page.get_by_test_id("profile-ignore")).to_have_attribute("aria-pressed", "true")
    expect(member.page.get_by_test_id("profile-ignore")).to_have_text("Stop ignoring")
    member.page.goto(f"/t/{tid}")
    post = member.page.locator(f'[data-post-id="{noisy["id"]}"]')
    expect(post.get_by_test_id("ignored")).to_be_visible()
    expect(member.page.locator(f'[data-post-id="{held["id"]}"]')).to_have_count(0)  # held: not for members
    if found := violations(member.page, axe_source):
        problems["member thread (ignored post collapsed)"] = found
    post.get_by_test_id("show-ignored").click()
    expect(post.get_by_test_id("post-body")).to_contain_text("Buy my kettles")
    member.wait_live()
    more = site.reply(pest, tid, "More kettles, live")  # a live post by them arrives collapsed too
    expect(member.page.locator(f'[data-post-id="{more["id"]}"]').get_by_test_id("ignored")).to_be_visible()

    mod = readers(color_scheme=scheme)
    mod_user = mod.sign_up(unique("Mod "))
    make_moderator(pg_url, mod_user["username"])
    assert mod.context.request.put(f"/api/users/{pest_user['username']}/silence",
                                   data={"silenced": True}).status == 200
    expect(post).to_be_hidden()  # live, on the member's open page: the silenced member's post leaves it
    mod.page.goto(f"/u/{pest_user['username']}")
    expect(mod.page.get_by_test_id("profile-silenced")).to_be_visible()
    expect(mod.page.get_by_test_id("profile-unsilence")).to_be_visible()
    if found := violations(mod.page, axe_source):
        problems["moderator profile of a silenced member"] = found
    mod.page.goto(f"/t/{tid}")
    mod.wait_live()
    held_el = mod.page.locator(f'[data-post-id="{held["id"]}"]')
    expect(held_el.get_by_test_id("pending-badge")).to_be_visible()
    if found := violations(mod.page, axe_source):
        problems["moderator thread (held post)"] = found
    held_el.get_by_test_id("approve").click()
    expect(mod.page.locator(f'[data-post-id="{held["id"]}"]').get_by_test_id("pending-badge")).to_have_count(0)
    member.page.goto(f"/t/{tid}")
    expect(member.page.locator(f'[data-post-id="{held["id"]}"]')).to_be_visible()
    expect(member.page.locator(f'[data-post-id="{noisy["id"]}"]')).to_have_count(0)  # silenced now
    assert asker_user["id"] != pest_user["id"]
    assert problems == {}, problems
