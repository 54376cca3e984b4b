"""Issue 34, "The page, second walk": each defect, seen in a real Chromium."""

from __future__ import annotations

import os
import re
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


def test_sign_up_names_every_bad_field_at_once_in_the_words_of_its_label(site: Site, readers: Any) -> None:
    """A bad username, e-mail and password show three messages at once, each under its field, in plain words
    (no validator text); a display name of invisible characters refused by the server is put in its label's words."""
    reader = readers()
    page = reader.page
    page.goto("/signup")
    page.get_by_test_id("auth-username").fill("a b")
    page.get_by_test_id("auth-email").fill("nope")
    page.get_by_test_id("auth-password").fill("short")
    page.get_by_test_id("auth-submit").click()
    for field, words in (("username", "username"), ("email", "e-mail"), ("password", "password")):
        err = page.locator(f"#{field}-error")
        expect(err).to_be_visible()
        expect(err).to_contain_text(words)
        assert "Expected" not in err.inner_text() and "regex" not in err.inner_text()
    expect(page.get_by_test_id("auth-username")).to_be_focused()
    page.get_by_test_id("auth-username").fill(unique("ok"))
    page.get_by_test_id("auth-email").fill("")
    page.get_by_test_id("auth-password").fill("long enough password")
    page.get_by_test_id("auth-display-name").fill("\u00ad\u00ad")
    page.get_by_test_id("auth-submit").click()
    err = page.locator("#display_name-error")
    expect(err).to_be_visible()
    expect(err).to_contain_text("display name")
    assert "display_name" not in err.inner_text()
    assert reader.errors == []


def test_a_suspended_reader_is_told_why_and_until_when_in_local_time(site: Site, readers: Any) -> None:
    """A suspension closes the reader's page session: the toast, still there after the page is drawn again,
    says suspended, the reason, and the end in local time (never an ISO time)."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    reader = signed_in(readers, "Soon Suspended")
    page = reader.open_thread(tid)
    name = reader.user["username"]
    r = site.mod.put(f"/api/users/{name}/suspension", json={"until": "2031-03-04T05:06:07Z", "reason": "Spam links"})
    assert r.status_code == 200, r.text
    expect(page.get_by_test_id("sign-in")).to_be_visible(timeout=20_000)
    toast = page.get_by_test_id("toast")
    expect(toast).to_contain_text("suspended until", timeout=20_000)
    expect(toast).to_contain_text("Spam links")
    expect(toast).to_contain_text("2031")
    assert not re.search(r"\d{4}-\d\d-\d\dT", toast.inner_text())
    page.wait_for_timeout(1500)
    expect(toast).to_be_visible()
    # Signing in again is refused with the end in local time too.
    page.goto("/signin")
    page.get_by_test_id("auth-username").fill(name)
    page.get_by_test_id("auth-password").fill("correct-horse-battery")
    page.get_by_test_id("auth-submit").click()
    refusal = page.locator(".auth-form [data-testid='form-error']")
    expect(refusal).to_contain_text("suspended until")
    expect(refusal).to_contain_text("2031")
    assert not re.search(r"\d{4}-\d\d-\d\dT", refusal.inner_text())


def test_a_sign_out_elsewhere_leaves_a_readable_toast(site: Site, readers: Any) -> None:
    """The session ended by another client: the signed-out page shows a toast that says so (not hidden by the
    redraw)."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    reader = signed_in(readers, "Ended Elsewhere")
    page = reader.open_thread(tid)
    assert reader.context.request.delete("/api/session").status in (200, 204)
    expect(page.get_by_test_id("reply-signin")).to_be_visible(timeout=20_000)
    toast = page.get_by_test_id("toast")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("signed out")


def test_enter_posts_a_comment_and_shift_enter_makes_a_new_line(site: Site, readers: Any) -> None:
    """In "Add a comment…", Shift+Enter adds a line and Enter posts the comment (both lines in it)."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    rid = site.reply(asker, tid, "A response to comment on")["id"]
    me = signed_in(readers, "Commenter")
    page = me.open_thread(tid)
    box = page.locator(f'[data-post-id="{rid}"] [data-testid="comment-input"]')
    box.click()
    box.type("First line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "First line\nsecond line"
    box.press("Enter")
    comment = page.locator(f'[data-post-id="{rid}"] [data-testid="comment"]')
    expect(comment).to_have_count(1)
    expect(comment).to_contain_text("second line")
    expect(box).to_have_value("")
    assert "Enter" in (box.get_attribute("placeholder") or "")


def test_a_paste_past_20000_characters_is_counted_and_refused_never_cut(site: Site, readers: Any) -> None:
    """Pasting 20,500 characters keeps them all, the counter says 500 too many, and posting is refused with
    nothing sent; near the limit the counter shows the count."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    me = signed_in(readers, "Paster")
    page = me.open_thread(tid)
    box = page.get_by_test_id("reply-input")
    counter = page.locator("#reply-body-count")
    box.focus()
    page.evaluate("n => document.execCommand('insertText', false, 'a'.repeat(n))", 19_000)
    expect(counter).to_have_text("19,000 of 20,000 characters")
    page.evaluate("n => document.execCommand('insertText', false, 'b'.repeat(n))", 1_500)
    assert len(box.input_value()) == 20_500
    expect(counter).to_contain_text("500 too many")
    page.get_by_test_id("reply-submit").click()
    expect(counter).to_have_attribute("role", "alert")
    page.wait_for_timeout(500)
    assert me.context.request.get(f"/api/threads/{tid}").json()["responses"] == []
    assert len(box.input_value()) == 20_500


def test_the_moderation_log_is_in_the_footer_and_names_threads_by_title(site: Site, readers: Any) -> None:
    """The footer links the public log; its entries show the thread's title (not "thread 5") linking to it,
    and the member's name linking to the profile."""
    asker, _ = site.client("Asker")
    title = unique("Locked kettle question ")
    tid = site.thread(asker, title=title)["thread"]["id"]
    assert site.mod.patch(f"/api/threads/{tid}", json={"locked": True}).status_code == 200
    reader = readers()
    page = reader.page
    page.goto("/")
    page.get_by_test_id("footer-modlog").click()
    expect(page.get_by_role("heading", name="Moderation log")).to_be_visible()
    entry = page.locator('[data-testid="modlog-entry"][data-action="thread.locked"]').first
    expect(entry).to_contain_text(title)
    expect(entry.get_by_test_id("modlog-target")).to_have_attribute("href", f"/t/{tid}")
    assert "thread " + str(tid) not in entry.inner_text()
    assert reader.errors == []


def test_search_filters_by_category_and_author_with_each_label_on_its_control(site: Site, readers: Any) -> None:
    """The search page has Category and Author filters (kept in the URL) that narrow the results, and every
    filter's label sits right above its control ("Order" included), on a phone too."""
    word = unique("zebrafish")
    ada, ada_user = site.client("Ada Filter")
    bob, _ = site.client("Bob Filter")
    other = site.category_path("Filters", "Aquaria")
    in_main = site.thread(ada, title=f"About {word} in the main category")["thread"]["id"]
    in_other = site.thread(bob, title=f"About {word} in aquaria", category=other)["thread"]["id"]
    for viewport in ((1280, 900), (360, 740)):
        reader = readers(viewport=viewport)
        page = reader.page
        page.goto(f"/search?q={word}")
        results = page.get_by_test_id("search-result")
        expect(results).to_have_count(2)
        for control in ("search-category", "search-author", "search-sort"):
            el = page.get_by_test_id(control)
            label = page.locator(f'label[for="{el.get_attribute("id")}"]')
            lb, cb = label.bounding_box(), el.bounding_box()
            assert lb and cb and 0 <= cb["y"] - (lb["y"] + lb["height"]) <= 12, (control, lb, cb)
            assert abs(lb["x"] - cb["x"]) <= 4, (control, lb, cb)
        page.get_by_test_id("search-category").select_option(other)
        expect(results).to_have_count(1)
        expect(results.first).to_have_attribute("data-post-id", str(question_id(site, in_other)))
        assert f"category={other}" in page.url
        page.get_by_test_id("search-category").select_option("")
        expect(results).to_have_count(2)
        page.get_by_test_id("search-author").fill(ada_user["username"])
        page.get_by_test_id("search-author").press("Enter")
        expect(results).to_have_count(1)
        expect(results.first).to_have_attribute("data-post-id", str(question_id(site, in_main)))
        assert reader.errors == []


def question_id(site: Site, tid: int) -> int:
    """The id of a thread's question."""
    import httpx

    return httpx.get(f"{site.base_url.rstrip('/')}/api/threads/{tid}?limit=1").json()["question"]["id"]


def test_a_view_that_fails_offline_says_so_and_loads_again_when_back(site: Site, readers: Any) -> None:
    """Offline, opening a thread shows "can't be reached: you may be offline" with a Try again button (never
    "your text is kept"); back online, the thread loads by itself."""
    asker, _ = site.client("Asker")
    title = unique("Offline thread ")
    tid = site.thread(asker, title=title)["thread"]["id"]
    reader = readers()
    page = reader.page
    page.goto("/?tab=new")
    link = page.locator(f'[data-thread-id="{tid}"] a.thread-link')
    expect(link).to_be_visible()
    reader.context.set_offline(True)
    link.click()
    failed = page.get_by_test_id("load-failed")
    expect(failed).to_be_visible()
    expect(failed).to_contain_text("you may be offline")
    assert "text is kept" not in failed.inner_text()
    expect(failed.get_by_test_id("try-again")).to_be_visible()
    reader.context.set_offline(False)
    expect(page.get_by_test_id("thread-title")).to_have_text(title, timeout=30_000)


def test_sign_in_to_respond_lands_at_the_reply_box(site: Site, readers: Any) -> None:
    """A guest's "Sign in to respond", then signing in, comes back to the thread with the reply box focused."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    _, user = site.client("Returning Member")
    reader = readers()
    page = reader.open_thread(tid)
    page.get_by_test_id("reply-signin").click()
    page.get_by_test_id("auth-username").fill(user["username"])
    page.get_by_test_id("auth-password").fill("correct-horse-battery")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("reply-input")).to_be_focused()
    expect(page.get_by_test_id("reply-input")).to_be_in_viewport()
    assert page.url.endswith(f"/t/{tid}#reply")


def test_a_live_lock_keeps_a_half_written_reply_on_screen_with_a_note(site: Site, readers: Any) -> None:
    """A moderator locks the thread while the reader writes: the text stays visible (read-only) with a note."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    me = signed_in(readers, "Half Writer")
    page = me.open_thread(tid)
    box = page.get_by_test_id("reply-input")
    box.fill("My careful half-written answer")
    assert site.mod.patch(f"/api/threads/{tid}", json={"locked": True}).status_code == 200
    expect(page.get_by_test_id("locked-badge")).to_be_visible()
    expect(box).to_be_visible()
    expect(box).to_have_value("My careful half-written answer")
    expect(page.get_by_test_id("locked-text-note")).to_be_visible()
    assert box.evaluate("el => el.readOnly")
    assert site.mod.patch(f"/api/threads/{tid}", json={"locked": False}).status_code == 200
    expect(page.get_by_test_id("locked-text-note")).to_have_count(0)
    assert not box.evaluate("el => el.readOnly")


def test_touch_screens_are_not_told_about_the_slash_key(site: Site, browser: Any) -> None:
    """On a phone (touch, no hover) the header search says "Search", not "Search ( / )"."""
    ctx = browser.new_context(viewport={"width": 390, "height": 800}, has_touch=True, is_mobile=True,
                              base_url=site.base_url)
    try:
        page = ctx.new_page()
        page.goto("/")
        expect(page.get_by_test_id("site-search-input")).to_have_attribute("placeholder", "Search")
    finally:
        ctx.close()


def test_a_vote_in_one_tab_presses_the_arrow_in_the_other(site: Site, readers: Any) -> None:
    """Up-voting in one tab shows the pressed up-arrow (and score) in the reader's other tab; withdrawing
    releases it there too."""
    asker, _ = site.client("Asker")
    made = site.thread(asker)
    tid, qid = made["thread"]["id"], made["question"]["id"]
    me = signed_in(readers, "Two Tab Voter")
    one = me.open_thread(tid)
    two = me.context.new_page()
    two.goto(f"/t/{tid}")
    expect(two.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    up_two = two.locator(f'[data-post-id="{qid}"] [data-testid="vote-up"]').first
    expect(up_two).to_have_attribute("aria-pressed", "false")
    one.locator(f'[data-post-id="{qid}"] [data-testid="vote-up"]').first.click()
    expect(up_two).to_have_attribute("aria-pressed", "true")
    expect(two.locator(f'[data-post-id="{qid}"] [data-testid="score"]').first).to_have_text("1")
    one.locator(f'[data-post-id="{qid}"] [data-testid="vote-up"]').first.click()
    expect(up_two).to_have_attribute("aria-pressed", "false")
    expect(two.locator(f'[data-post-id="{qid}"] [data-testid="score"]').first).to_have_text("0")
    assert me.errors == []


def test_the_footers_api_link_opens_a_readable_page(site: Site, readers: Any) -> None:
    """The footer's "API" opens a page (not raw JSON) listing the endpoints by subject, with the raw document linked."""
    reader = readers()
    page = reader.page
    page.goto("/")
    page.get_by_test_id("footer-api").click()
    expect(page.get_by_role("heading", name="The Parley API", level=1)).to_be_visible()
    ops = page.get_by_test_id("api-op")
    expect(ops.filter(has_text="/api/threads/{id}/posts").first).to_be_visible()
    assert ops.count() >= 20
    ops.filter(has_text="/api/threads/{id}/posts").first.locator("summary").click()
    expect(ops.filter(has_text="/api/threads/{id}/posts").first).to_contain_text("Answers")
    expect(page.get_by_test_id("openapi-raw")).to_have_attribute("href", "/api/openapi.json")
    page.goto("/developers")
    expect(page.get_by_role("heading", name="The Parley API", level=1)).to_be_visible()
    assert reader.errors == []


SMALL_TARGETS = """() => [...document.querySelectorAll(
    'button, select, input, textarea, summary, a.btn, .list-tabs a, .site-nav a, .link-btn')]
  .filter(e => e.offsetParent !== null && !e.closest('.skip-link, .sr-only')
    && getComputedStyle(e).visibility !== 'hidden')
  .map(e => { const r = e.getBoundingClientRect();
    return [e.dataset.testid || e.className || e.tagName, (e.textContent || '').trim().slice(0, 20),
            Math.round(r.width), Math.round(r.height)]; })
  .filter(x => x[2] < 44 || x[3] < 44)"""


def test_phone_tap_targets_are_at_least_44_px(site: Site, browser: Any) -> None:
    """On a phone, every button, field, tab and action link of home and a thread (signed in) is ≥ 44×44 px."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    rid = site.reply(asker, tid, "A response")["id"]
    site.reply(asker, tid, "A comment", parent_id=rid)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                              base_url=site.base_url)
    try:
        r = ctx.request.post("/api/users", data={"username": unique("tap"), "password": "correct-horse-battery"})
        assert r.status == 201, r.text()
        page = ctx.new_page()
        for path in (f"/t/{tid}", "/"):
            page.goto(path)
            expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
            expect(page.locator("main h1").first).to_be_visible()
            assert page.evaluate(SMALL_TARGETS) == [], path
    finally:
        ctx.close()


def test_screenshots_of_the_reworked_views(site: Site, readers: Any, artifacts: Any) -> None:
    """The views reworked for issue 34, in Chromium, saved to test-artifacts/ (and docs/screenshots/ with
    PARLEY_UPDATE_SCREENSHOTS=1): a thread
    with a tombstone, the grouped bell, sign-up errors, search with filters, the API page; phone and desktop,
    light and dark. Each page is wider than nothing and scrolls no wider than its viewport."""
    import shutil

    from .conftest import ROOT

    ada = signed_in(readers, "Ada Lindqvist")
    r = ada.context.request.post("/api/threads", data={
        "category": site.category(), "title": "Cast iron: is soap really forbidden?",
        "body": "My grandmother never let soap near her pan. Is that still good advice?"})
    assert r.status == 201, r.text()
    tid = r.json()["thread"]["id"]
    names = ["Brook Okafor", "Chen Wei", "Dmitri Sokolov", "Esme Hartley"]
    posted = []
    for i, name in enumerate(names):
        c, _ = site.client(name)
        posted.append((c, site.reply(c, tid, f"Take {i + 1}: dry it on the stove and oil it thinly.")))
    c, gone = posted[1]
    assert c.delete(f"/api/posts/{gone['id']}").status_code == 204
    site.reply(posted[0][0], tid, "And never soak it overnight.", parent_id=posted[0][1]["id"])
    out = ROOT / "docs" / "screenshots"
    shots = []

    def shot(page: Any, name: str, full: bool = True) -> None:
        page.mouse.move(0, 0)
        page.evaluate("""() => document.getAnimations().forEach(a => {
            if (a.effect && a.effect.getComputedTiming().endTime !== Infinity) a.finish(); })""")
        path = artifacts / f"walk2-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], name
        shots.append(path)

    cookies = ada.context.cookies()
    for label, viewport, scheme in (("desktop-light", (1280, 900), "light"), ("phone-dark", (390, 844), "dark")):
        me = readers(viewport=viewport, color_scheme=scheme)
        me.context.add_cookies(cookies)
        page = me.open_thread(tid)
        expect(page.get_by_test_id("tombstone")).to_be_visible()
        shot(page, f"thread-tombstone-{label}")
        page.goto("/")
        me.wait_live()
        page.get_by_test_id("bell").click()
        expect(page.get_by_test_id("notification").first).to_be_visible()
        shot(page, f"bell-grouped-{label}", full=False)
        page.goto("/search?q=oil")
        expect(page.get_by_test_id("search-filters")).to_be_visible()
        shot(page, f"search-filters-{label}")
        page.goto("/developers")
        expect(page.get_by_test_id("api-op").first).to_be_visible()
        shot(page, f"api-page-{label}", full=False)
        guest = readers(viewport=viewport, color_scheme=scheme)
        guest.page.goto("/signup")
        guest.page.get_by_test_id("auth-username").fill("a b")
        guest.page.get_by_test_id("auth-email").fill("nope")
        guest.page.get_by_test_id("auth-password").fill("short")
        guest.page.get_by_test_id("auth-submit").click()
        expect(guest.page.locator("#password-error")).to_be_visible()
        shot(guest.page, f"signup-errors-{label}")
        assert me.errors == [] and guest.errors == []
    if os.environ.get("PARLEY_UPDATE_SCREENSHOTS"):  # docs/ is only rewritten on request (docs/testing.md)
        out.mkdir(parents=True, exist_ok=True)
        for path in shots:
            shutil.copyfile(path, out / path.name.removeprefix("walk2-"))


def test_an_authors_edit_within_five_minutes_is_not_marked_and_edit_times_are_relative(
        site: Site, readers: Any, pg_url: str) -> None:
    """The author's own quick fix (within 5 minutes of posting) shows no "edited" note; a moderator's edit and an
    author's later edit do, as "Edited 10 minutes ago by …" like every other time on the page."""
    from .test_web_page import posted_long_ago

    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    helper, _ = site.client("Quick Fixer")
    quick = site.reply(helper, tid, "Teh answer")["id"]
    assert helper.patch(f"/api/posts/{quick}", json={"body": "The answer"}).status_code == 200
    late = site.reply(helper, tid, "A slow thought")["id"]
    posted_long_ago(pg_url, late)
    assert helper.patch(f"/api/posts/{late}", json={"body": "A slow thought, revised"}).status_code == 200
    modded = site.reply(helper, tid, "Rude words")["id"]
    assert site.mod.patch(f"/api/posts/{modded}", json={"body": "Kind words"}).status_code == 200
    page = readers().open_thread(tid)
    expect(page.locator(f'[data-post-id="{late}"] [data-testid="edited-marker"]')).to_contain_text(
        re.compile(r"^Edited (just now|\d+ minutes? ago) by Quick Fixer"))
    marker = page.locator(f'[data-post-id="{modded}"] [data-testid="edited-marker"]')
    expect(marker).to_contain_text("Edited just now by")
    expect(page.locator(f'[data-post-id="{quick}"] [data-testid="post-body"]')).to_have_text("The answer")
    expect(page.locator(f'[data-post-id="{quick}"] [data-testid="edited-marker"]')).to_have_count(0)


def test_a_data_image_shows_as_its_alt_text_not_a_link_to_the_page(site: Site, readers: Any) -> None:
    """`![a dot](data:…)` (its address dropped by the server) shows as the text "a dot", not a link to this page."""
    asker, _ = site.client("Asker")
    made = site.thread(asker, body="See ![a dot](data:image/png;base64,iVBORw0KGgo=) here.")
    page = readers().open_thread(made["thread"]["id"])
    body = page.locator('[data-testid="question"] [data-testid="post-body"]')
    expect(body).to_contain_text("See a dot here.")  # the server renders an image without an address as its alt
    expect(body.locator("a")).to_have_count(0)
    expect(body.locator("img")).to_have_count(0)


def test_the_thread_pages_right_column_shows_watchers_linked_threads_and_more(site: Site, readers: Any) -> None:
    """Beside the thread (wide screens): who is watching now, the threads its posts link to (by title), and more
    threads from its category."""
    asker, _ = site.client("Asker")
    cat = site.category_path("Aside", "Kettles")
    other_title = unique("Descaling a kettle ")
    other = site.thread(asker, title=other_title, category=cat)["thread"]["id"]
    base = site.base_url.rstrip("/")
    tid = site.thread(asker, title=unique("Whistling kettles "), category=cat,
                      body=f"Related: [the descaling one]({base}/t/{other}).")["thread"]["id"]
    me = signed_in(readers, "Aside Watcher")
    page = me.open_thread(tid)
    aside = page.get_by_test_id("thread-aside")
    expect(aside.get_by_test_id("aside-linked")).to_contain_text(other_title)
    expect(aside.get_by_test_id("aside-more")).to_contain_text(other_title)
    expect(aside.get_by_test_id("aside-watching")).to_contain_text("Aside Watcher")
    main_box = page.locator(".page-thread").bounding_box()
    side_box = aside.bounding_box()
    assert main_box and side_box and side_box["x"] >= main_box["x"] + main_box["width"], (main_box, side_box)
    assert me.errors == []


def test_a_new_password_of_spaces_is_refused_in_words_in_settings(site: Site, readers: Any) -> None:
    """Settings: a new password of spaces only is refused under its field in plain words; nothing changes."""
    me = signed_in(readers, "Space Bar")
    page = me.page
    page.goto("/settings")
    page.get_by_test_id("old-password").fill("correct-horse-battery")
    page.get_by_test_id("new-password").fill(" " * 10)
    page.get_by_test_id("new-password-again").fill(" " * 10)
    page.get_by_test_id("password-submit").click()
    err = page.locator("#new-password-error, [id$='-error']").filter(has_text="only spaces")
    expect(err).to_be_visible()
    expect(err).to_contain_text("new password")
    assert me.context.request.post("/api/session", data={
        "username": me.user["username"], "password": "correct-horse-battery"}).status == 200
