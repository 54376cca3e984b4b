"""Issue 34, "The page, second walk": each defect, seen in a real Chromium."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from .conftest import Site, unique


def signed_in(readers: Any, name: str, **kw: Any) -> Any:
    reader = readers(**kw)
    reader.sign_up(name)
    return reader


def unread_of(reader: Any, tid: int) -> Any:
    return reader.context.request.get(f"/api/threads/{tid}?limit=1").json()["thread"]["unread"]


def wait_unread(reader: Any, tid: int, want: int, bound: float = 30.0) -> None:
    """Poll the reader's unread count of a thread until it is `want` (a failure bound, not a timing check)."""
    end = time.monotonic() + bound
    got = None
    while time.monotonic() < end:
        got = unread_of(reader, tid)
        if got == want:
            return
        time.sleep(0.25)
    raise AssertionError(f"unread stayed {got}, wanted {want}")


def test_a_deleted_response_and_comment_are_one_line_tombstones(site: Site, readers: Any) -> None:
    """A deleted response and a deleted comment each show one full-width line, never a letter-wide column."""
    asker, _ = site.client("Asker")
    helper, _ = site.client("Helper")
    tid = site.thread(asker)["thread"]["id"]
    rid = site.reply(helper, tid, "Soon gone " + "words " * 60)["id"]
    keep = site.reply(helper, tid, "A response that stays")["id"]
    cid = site.reply(asker, tid, "A comment that goes " * 10, parent_id=keep)["id"]
    site.reply(asker, tid, "A comment that stays", parent_id=rid)
    assert helper.delete(f"/api/posts/{rid}").status_code == 204
    assert asker.delete(f"/api/posts/{cid}").status_code == 204
    for reader, width in ((readers(), 1280), (readers(viewport=(360, 740)), 360)):
        page = reader.open_thread(tid)
        for pid in (rid, cid):
            stone = page.locator(f'[data-post-id="{pid}"] [data-testid="tombstone"]').first
            expect(stone).to_be_visible()
            box = stone.bounding_box()
            line = stone.evaluate("el => parseFloat(getComputedStyle(el).lineHeight) || 24")
            assert box and box["height"] <= line * 1.5, (pid, box, line)
            assert box["width"] >= width * 0.45, (pid, box)
        # The deleted response's own part (without its comments) is one line too, and its comments stay.
        root = page.locator(f'[data-post-id="{rid}"]')
        expect(root.locator('[data-testid="comment"]')).to_have_count(1)
        expect(root.locator('[data-testid="post-author"]').first).to_be_hidden()
        assert reader.errors == []


def test_the_new_badge_stays_right_when_a_live_post_arrives(site: Site, readers: Any) -> None:
    """A home list's "N new" badge keeps the reader's count through feed frames: a post by another adds one, the
    reader's own post (from another device) adds none."""
    asker, _ = site.client("Asker")
    title = unique("Badge thread ")
    tid = site.thread(asker, title=title)["thread"]["id"]
    me = signed_in(readers, "Badge Reader")
    me.open_thread(tid)
    wait_unread(me, tid, 0)
    other, _ = site.client("Other")
    site.reply(other, tid, "One")
    site.reply(other, tid, "Two")
    page = me.page
    page.goto("/?tab=new")
    me.wait_live()
    badge = page.locator(f'[data-thread-id="{tid}"] [data-testid="thread-unread"]')
    expect(badge).to_have_text("2 new")
    site.reply(other, tid, "Three")
    expect(page.locator(f'[data-thread-id="{tid}"] .thread-count strong')).to_have_text("3")
    expect(badge).to_have_text("3 new")
    mine = httpx_client_of(me, site)
    site.reply(mine, tid, "My own, from my phone")
    expect(page.locator(f'[data-thread-id="{tid}"] .thread-count strong')).to_have_text("4")
    expect(badge).to_have_text("3 new")
    assert me.errors == []


def httpx_client_of(reader: Any, site: Site) -> Any:
    """An HTTP client holding the reader's cookie: the same person on another device."""
    import httpx

    c = httpx.Client(base_url=site.base_url, timeout=20)
    for ck in reader.context.cookies():
        c.cookies.set(ck["name"], ck["value"])
    return c


def test_a_post_that_arrives_on_screen_is_marked_read(site: Site, readers: Any) -> None:
    """The reader watches a response arrive live on a visible page: their read position moves past it."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    me = signed_in(readers, "Watcher")
    page = me.open_thread(tid)
    wait_unread(me, tid, 0)
    other, _ = site.client("Other")
    rid = site.reply(other, tid, "Arriving while you watch")["id"]
    expect(page.locator(f'[data-post-id="{rid}"]')).to_be_in_viewport()
    assert unread_of(me, tid) in (0, 1)
    wait_unread(me, tid, 0)
    assert me.errors == []


def test_the_bell_groups_by_thread_and_kind_and_a_row_reads_its_group(site: Site, readers: Any) -> None:
    """Four responses to one question and two to another make two bell rows ("4 new responses…", the newest
    names), the title counts 2; opening a row lands on its first unread post and marks its four rows read."""
    ada = signed_in(readers, "Ada Asker")
    ids = []
    for title in ("Cast iron: how to season?", "Sourdough: why flat?"):
        r = ada.context.request.post("/api/threads", data={"category": site.category(), "title": title,
                                                          "body": "Please help."})
        assert r.status == 201, r.text()
        ids.append(r.json()["thread"]["id"])
    cast, sour = ids
    page = ada.page
    page.goto("/")
    ada.wait_live()
    first = None
    for i in range(4):
        c, _ = site.client(f"Helper {i}")
        post = site.reply(c, cast, f"Oil and heat, take {i}.")
        first = first or post["id"]
    for i in range(2):
        c, _ = site.client(f"Baker {i}")
        site.reply(c, sour, f"Starter, take {i}.")
    expect(page.locator('[data-testid="bell-count"]')).to_have_text("2")
    expect(page).to_have_title("(2) Parley")
    page.locator('[data-testid="bell"]').click()
    rows = page.locator('[data-testid="notification"]')
    expect(rows).to_have_count(2)
    cast_row = rows.filter(has_text="Cast iron")
    expect(cast_row).to_contain_text("4 new responses to your question")
    expect(cast_row).to_contain_text("Helper 3, Helper 2 and 2 others")
    expect(rows.filter(has_text="Sourdough")).to_contain_text("Baker 1 and Baker 0")
    cast_row.locator("a").click()
    expect(page).to_have_url(f"{site.base_url.rstrip('/')}/t/{cast}#post-{first}")
    expect(page.locator('[data-testid="bell-count"]')).to_have_text("1")
    d = ada.context.request.get("/api/notifications").json()
    assert d["unread"] == 2
    assert {n["thread"]["id"] for n in d["notifications"] if not n["read"]} == {sour}
    assert ada.errors == []
