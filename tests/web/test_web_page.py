"""The web page in a real Chromium against a real `parley serve` process."""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any

from playwright.sync_api import expect

from .conftest import ROOT, Site, unique

ACTIVE_NOW_GRACE_S = 45  # contract: gone within 30 s of the last socket closing, plus slack


def part(page: Any, post_id: int | str, testid: str) -> Any:
    """The post's own control (a response's comes before those of its comments in the DOM)."""
    return page.locator(f'[data-post-id="{post_id}"]').locator(f'[data-testid="{testid}"]').first


def posted_long_ago(pg_url: str, post_id: Any) -> None:
    """Move a post's creation ten minutes back, out of the edit grace window (issue 34)."""
    from support.databases import db_fetch

    db_fetch(pg_url, "UPDATE posts SET created_at = created_at - interval '10 minutes' WHERE id = $1 RETURNING id",
             int(post_id))


def response_with(page: Any, text: str) -> Any:
    return page.locator('[data-testid="response"]', has=page.locator('[data-testid="post-body"]', has_text=text))


def test_screenshots_of_the_thread_page(site: Site, readers: Any, artifacts: Any) -> None:
    """The thread page renders on desktop and phone, light and dark (screenshots saved under test-artifacts/)."""
    tid, favourite = _showcase_thread(site)
    typist = readers()
    typist.sign_up("Dana Drafts")
    typist.open_thread(tid)
    viewer = readers()
    viewer.sign_up("Riley Reader")
    assert viewer.context.request.put(f"/api/posts/{favourite}/vote", data={"value": 1}).status == 200
    cookies = viewer.context.cookies()
    viewer.close()
    shots = {}
    for name, viewport, scheme in [("desktop-light", (1280, 900), "light"), ("desktop-dark", (1280, 900), "dark"),
                                   ("phone-light", (390, 844), "light"), ("phone-dark", (390, 844), "dark")]:
        reader = readers(viewport=viewport, color_scheme=scheme)
        reader.context.add_cookies(cookies)
        page = reader.open_thread(tid)
        expect(part(page, favourite, "vote-up")).to_have_attribute("aria-pressed", "true")
        indicator = page.locator('[data-testid="typing-indicator"]')
        for _ in range(40):  # typing notices are throttled to one per ~3 s: keep typing until one lands
            typist.page.locator('[data-testid="reply-input"]').press_sequentially("Good ", delay=20)
            if indicator.text_content() == "Dana Drafts is replying…":
                break
            page.wait_for_timeout(250)
        expect(indicator).to_have_text("Dana Drafts is replying…")
        # The header as a member sees it: no stray "null" where a moderator's Review link would be, and
        # the bell drawn as an icon (an emoji bell shows as a blank box without an emoji font).
        assert "null" not in page.locator("header.site-header").inner_text()
        assert page.locator('[data-testid="bell"] svg, .bell svg').count() == 1
        page.mouse.move(0, 0)
        page.wait_for_timeout(300)
        path = artifacts / f"thread-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots[name] = path
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
        assert reader.errors == []
        typist.page.locator('[data-testid="reply-input"]').fill("")
        reader.close()
    if os.environ.get("PARLEY_UPDATE_SCREENSHOTS"):  # docs/ is only rewritten on request (docs/testing.md)
        docs = ROOT / "docs"
        shutil.copyfile(shots["desktop-light"], docs / "screenshot.png")
        for name, shot in shots.items():  # desktop and phone, light and dark
            shutil.copyfile(shot, docs / f"screenshot-{name}.png")


def _showcase_thread(site: Site) -> tuple[int, int]:
    """A lively thread by several people: Markdown, comments, votes, an edit. Returns (thread id, top response id)."""
    maya, _ = site.client("Maya Patel")
    jonas, _ = site.client("Jonas Berg")
    priya, _ = site.client("Priya Shah")
    category = site.category_path("Discussion", "Questions", "Kitchen Science")
    made = site.thread(
        maya, category=category,
        title="How do I keep a sourdough starter alive while travelling for two weeks?",
        body="I'm away for **two weeks** and nobody can feed my starter. Options I've read about:\n\n"
             "- put it in the fridge and hope\n- dry it on parchment\n- freeze a spoonful\n\n"
             "Which of these actually works?")
    tid, qid = made["thread"]["id"], made["question"]["id"]
    first = site.reply(jonas, tid, "The fridge is fine for two weeks. Feed it a **stiff** meal first (1:5:5) and "
                                    "it will barely notice you were gone.")
    site.reply(priya, tid, "Drying is the safest for longer trips: spread a thin layer on parchment, let it dry "
                            "for a day, crumble it into a jar. It revives in 2–3 feeds.")
    site.reply(maya, tid, "Thank you, fridge it is!", parent_id=first["id"])
    site.reply(priya, tid, "Agreed — I've left mine for a month this way.", parent_id=first["id"])
    r = jonas.patch(f"/api/posts/{first['id']}", json={
        "body": "The fridge is fine for two weeks. Feed it a **stiff** meal first (1:5:5 starter:flour:water) and "
                "it will barely notice you were gone. Give it two feeds at room temperature when you're back."})
    assert r.status_code == 200, r.text
    for voter in (maya, priya):
        assert voter.put(f"/api/posts/{first['id']}/vote", json={"value": 1}).status_code == 200
    assert jonas.put(f"/api/posts/{qid}/vote", json={"value": 1}).status_code == 200
    return int(tid), int(first["id"])


def test_two_readers_see_responses_comments_edits_and_votes_live(site: Site, readers: Any, pg_url: str) -> None:
    """Two signed-in readers of a thread see each other's response, comment, edit and votes live, scores right."""
    asker, _ = site.client("Quinn Asker")
    thread = site.thread(asker)
    tid, qid = thread["thread"]["id"], thread["question"]["id"]
    alice, bob = readers(), readers()
    alice.sign_up("Alice Archer")
    bob.sign_up("Bob Baker")
    a, b = alice.open_thread(tid), bob.open_thread(tid)
    expect(b.locator('[data-testid="watching-count"]')).to_have_text("2 watching")

    a.locator('[data-testid="reply-input"]').fill("Replies travel over the websocket, **instantly**.")
    a.locator('[data-testid="reply-submit"]').click()
    expect(response_with(b, "Replies travel over the websocket")).to_have_count(1)
    expect(response_with(a, "Replies travel over the websocket")).to_have_count(1)
    expect(a.locator('[data-testid="reply-input"]')).to_have_value("")
    rid = response_with(b, "Replies travel").get_attribute("data-post-id")
    expect(part(b, rid, "post-author")).to_have_text("Alice Archer")
    expect(b.locator(f'[data-post-id="{rid}"] [data-testid="post-body"] strong')).to_have_text("instantly")
    expect(b.locator('[data-testid="responses-heading"]')).to_have_text("1 Response")

    a.locator(f'[data-post-id="{rid}"] [data-testid="comment-input"]').fill("A comment from Alice.")
    a.locator(f'[data-post-id="{rid}"] [data-testid="comment-submit"]').click()
    comment = b.locator(f'[data-post-id="{rid}"] [data-testid="comment"]', has_text="A comment from Alice.")
    expect(comment).to_have_count(1)
    cid = comment.get_attribute("data-post-id")

    posted_long_ago(pg_url, rid)  # an author's edit within 5 minutes of posting is not marked (issue 34)
    part(a, rid, "edit").click()
    edited = "Edited: replies travel over one shared socket."
    a.locator(f'[data-post-id="{rid}"] [data-testid="edit-input"]').fill(edited)
    a.locator(f'[data-post-id="{rid}"] [data-testid="edit-save"]').click()
    expect(part(b, rid, "post-body")).to_have_text(edited)
    expect(part(b, rid, "edited-marker")).to_contain_text(re.compile(r"^Edited just now by Alice Archer @\S+$"))
    expect(part(b, rid, "edited-marker").locator("time")).to_have_attribute(
        "title", re.compile(r"^\w+ \d{1,2}, \d{4} \d{1,2}:\d{2} [AP]M \S+$"))
    expect(part(a, rid, "edited-marker")).to_be_visible()

    # Votes: Bob up-votes Alice's response and comment; Alice cannot vote on her own.
    part(b, rid, "vote-up").click()
    expect(part(b, rid, "vote-up")).to_have_attribute("aria-pressed", "true")
    expect(part(b, rid, "score")).to_have_text("1")
    expect(part(a, rid, "score")).to_have_text("1")
    expect(part(a, rid, "vote-up")).to_be_disabled()
    expect(part(a, rid, "vote-up")).to_have_attribute("aria-pressed", "false")
    part(b, cid, "vote-up").click()
    expect(part(a, cid, "score")).to_have_text("1")
    expect(part(a, rid, "score")).to_have_text("1")

    # Both vote on the question: opposite votes cancel out, then agree.
    part(a, qid, "vote-up").click()
    expect(part(b, qid, "score")).to_have_text("1")
    part(b, qid, "vote-down").click()
    expect(part(a, qid, "score")).to_have_text("0")
    expect(part(b, qid, "vote-down")).to_have_attribute("aria-pressed", "true")
    expect(part(a, qid, "vote-up")).to_have_attribute("aria-pressed", "true")
    expect(part(a, qid, "vote-down")).to_have_attribute("aria-pressed", "false")
    part(b, qid, "vote-up").click()
    expect(part(a, qid, "score")).to_have_text("2")
    expect(part(b, qid, "score")).to_have_text("2")

    # The "edited by" marker opens the revision history.
    part(b, rid, "edited-marker").click()
    dialog = b.locator('[data-testid="revisions-dialog"]')
    expect(dialog).to_be_visible()
    expect(dialog.locator(".revision")).to_have_count(2)
    expect(dialog).to_contain_text("Replies travel over the websocket")
    b.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # Deleting (with a confirmation dialog, not window.confirm) reaches the other reader too.
    part(a, cid, "delete").click()
    a.locator('[data-testid="confirm-ok"]').click()
    expect(part(b, cid, "post-body")).to_have_text("This comment was deleted.")
    assert alice.errors == [] and bob.errors == []
    assert alice.dialogs == [] and bob.dialogs == []


def test_active_now_lists_both_readers_and_drops_one_who_leaves(site: Site, readers: Any) -> None:
    """Both signed-in readers appear in Active Now; when one closes the tab they are gone after the grace period."""
    alice, bob = readers(), readers()
    an, bn = unique("Ann "), unique("Ben ")
    alice.sign_up(an)
    bob.sign_up(bn)
    alice.page.goto("/")
    bob.page.goto("/")
    for r in (alice, bob):
        r.wait_live()
        for name in (an, bn):
            expect(r.page.locator('[data-testid="active-now"] li', has_text=name)).to_have_count(1)
    bob.close()
    expect(alice.page.locator('[data-testid="active-now"] li', has_text=bn)).to_have_count(
        0, timeout=ACTIVE_NOW_GRACE_S * 1000)
    expect(alice.page.locator('[data-testid="active-now"] li', has_text=an)).to_have_count(1)


def test_typing_shows_name_is_replying_on_the_other_page(site: Site, readers: Any) -> None:
    """While one reader types a reply the other sees "NAME is replying…", which expires after they stop."""
    asker, _ = site.client()
    tid = site.thread(asker)["thread"]["id"]
    alice, bob = readers(), readers()
    alice.sign_up("Tilly Typist")
    bob.sign_up("Walt Watcher")
    a, b = alice.open_thread(tid), bob.open_thread(tid)
    expect(b.locator('[data-testid="watching-count"]')).to_have_text("2 watching")
    a.locator('[data-testid="reply-input"]').press_sequentially("I think the answer is", delay=40)
    indicator = b.locator('[data-testid="typing-indicator"]')
    expect(indicator).to_have_text("Tilly Typist is replying…")
    expect(a.locator('[data-testid="typing-indicator"]')).to_have_text("")
    expect(indicator).to_have_text("", timeout=12_000)


def test_page_reconnects_after_a_server_restart_and_shows_every_reply_once(
        site: Site, readers: Any, server: Any) -> None:
    """After a server restart the open page reconnects, resumes with since, and shows each reply made meanwhile once."""
    poster, _ = site.client("Rita Restart")
    thread = site.thread(poster)
    tid = thread["thread"]["id"]
    site.reply(poster, tid, "Before the restart.")
    reader = readers()
    reader.sign_up("Sam Stays")
    page = reader.open_thread(tid)
    expect(response_with(page, "Before the restart.")).to_have_count(1)

    server.stop()
    status = page.locator('[data-testid="connection-status"]')
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_be_visible()
    expect(status).to_contain_text("Reconnecting")
    server.start()
    bodies = [f"Posted during the outage #{i}." for i in range(1, 4)]
    first = site.reply(poster, tid, bodies[0])
    site.reply(poster, tid, bodies[1])
    site.reply(poster, tid, "A comment during the outage.", parent_id=first["id"])
    site.reply(poster, tid, bodies[2])

    reader.wait_live()
    for text in bodies:
        expect(response_with(page, text)).to_have_count(1, timeout=60_000)
    expect(page.locator('[data-testid="comment"]', has_text="A comment during the outage.")).to_have_count(1)
    time.sleep(1.5)  # any duplicate delivery would have landed by now
    for text in [*bodies, "Before the restart."]:
        expect(response_with(page, text)).to_have_count(1)
    expect(page.locator('[data-testid="response"]')).to_have_count(4)
    ids = page.locator("[data-post-id]").evaluate_all("els => els.map(e => e.dataset.postId)")
    assert len(ids) == len(set(ids))
    expect(page.locator('[data-testid="responses-heading"]')).to_have_text("4 Responses")
    expect(status).to_be_hidden()

    # A reply after the reconnect arrives live, too.
    site.reply(poster, tid, "After the restart.")
    expect(response_with(page, "After the restart.")).to_have_count(1)
    assert reader.errors == []


def test_xss_attempts_show_as_text_and_run_nothing(site: Site, readers: Any) -> None:
    """Script in titles, names and post bodies shows as text; no script runs and no dialog fires."""
    evil_name = '<img src=x onerror=alert("name")>'
    mallory, _ = site.client(evil_name)
    title = '<script>alert("title")</script> Title with <b>tags</b>'
    body = ('<script>alert("body")</script>\n\n<img src=x onerror=alert("img")> '
            '[click me](javascript:alert("link")) <svg onload=alert("svg")></svg>')
    thread = site.thread(mallory, title=title, body=body)
    tid = thread["thread"]["id"]
    site.reply(mallory, tid, '<iframe src="javascript:alert(1)"></iframe> <a href="javascript:alert(2)">x</a>')
    reader = readers()
    reader.sign_up('"><svg onload=alert("me")>')
    page = reader.open_thread(tid)
    page.locator('[data-testid="reply-input"]').fill('<img src=x onerror=alert("mine")> **still bold**')
    page.locator('[data-testid="reply-submit"]').click()
    expect(page.locator('[data-testid="response"]')).to_have_count(2)

    expect(page.locator('[data-testid="thread-title"]')).to_have_text(title)
    expect(part(page, thread["question"]["id"], "post-author")).to_have_text(evil_name)
    expect(page.locator('[data-testid="whoami"]')).to_contain_text('"><svg onload=alert("me")>')
    content = page.locator("#main")
    assert content.locator("script, iframe, svg[onload], [onerror], [onload]").count() == 0
    assert content.locator('a[href^="javascript:"]').count() == 0
    page.goto("/")
    expect(page.locator('[data-testid="thread-list"]')).to_contain_text("<script>")
    page.wait_for_timeout(1000)
    assert reader.dialogs == []
    assert reader.errors == []


def test_keyboard_only_reader_can_post_a_response_and_a_comment(site: Site, readers: Any) -> None:
    """With the keyboard alone a reader reaches the reply box, posts a response, then comments with Ctrl+Enter."""
    asker, _ = site.client()
    tid = site.thread(asker)["thread"]["id"]
    reader = readers()
    reader.sign_up("Kim Keys")
    page = reader.open_thread(tid)

    def tab_to(testid: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement?.dataset?.testid === '{testid}'"):
                return
        raise AssertionError(f"Tab never reached {testid}")

    tab_to("reply-input")
    page.keyboard.type("Typed without a mouse.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "reply-submit"
    page.keyboard.press("Enter")
    expect(response_with(page, "Typed without a mouse.")).to_have_count(1)

    page.locator("#main").focus()
    tab_to("comment-input")
    page.keyboard.type("A keyboard comment.")
    page.keyboard.press("Control+Enter")
    expect(page.locator('[data-testid="comment"]', has_text="A keyboard comment.")).to_have_count(1)
    assert reader.errors == []


def test_phone_width_360px_has_no_horizontal_scroll(site: Site, readers: Any) -> None:
    """At 360 px wide, home, category, thread and sign-in pages never scroll sideways, even with long words."""
    long_name = "Maximilian " + "W" * 50
    poster, _ = site.client(long_name)
    long_word = "Supercalifragilistic" * 6
    # A category whose name is one unbroken 100-character word, in a thread's breadcrumb and on home.
    slug = site.category_path("C" * 100)
    long_tid = site.thread(poster, title="T" * 200, body=long_word, category=slug)["thread"]["id"]
    thread = site.thread(poster, title="A very long title " + long_word,
                          body=f"{long_word} https://example.com/{'a' * 120}\n\n```\n{'x' * 200}\n```")
    tid = thread["thread"]["id"]
    reply = site.reply(poster, tid, long_word)
    site.reply(poster, tid, long_word, parent_id=reply["id"])
    reader = readers(viewport=(360, 740))
    reader.sign_up("Phoebe " + "P" * 50)

    def no_sideways_scroll(path: str) -> None:
        page.goto(path)
        reader.network_idle()
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width}px wide"

    page = reader.page
    reader.open_thread(tid)
    no_sideways_scroll(f"/t/{tid}")
    no_sideways_scroll("/")
    no_sideways_scroll(f"/c/{thread['thread']['category']['slug']}")
    no_sideways_scroll(f"/c/{slug}")
    no_sideways_scroll(f"/t/{long_tid}")
    no_sideways_scroll("/signin")


def test_stale_edit_shows_a_message_and_keeps_the_typed_text(site: Site, readers: Any) -> None:
    """Saving an edit over someone else's newer revision gets a 409 message next to the form; the typed text stays."""
    asker, _ = site.client()
    tid = site.thread(asker)["thread"]["id"]
    first, second = readers(), readers()
    first.sign_up("Edna Editor")
    cookies = first.context.cookies()
    second.context.add_cookies(cookies)  # the same person in a second tab
    p1 = first.open_thread(tid)
    p1.locator('[data-testid="reply-input"]').fill("Version one.")
    p1.locator('[data-testid="reply-submit"]').click()
    expect(response_with(p1, "Version one.")).to_have_count(1)
    rid = response_with(p1, "Version one.").get_attribute("data-post-id")
    p2 = second.open_thread(tid)
    part(p1, rid, "edit").click()
    part(p2, rid, "edit").click()
    p2.locator(f'[data-post-id="{rid}"] [data-testid="edit-input"]').fill("Version two, from the other tab.")
    p2.locator(f'[data-post-id="{rid}"] [data-testid="edit-save"]').click()
    expect(part(p2, rid, "post-body")).to_have_text("Version two, from the other tab.")

    editor = p1.locator(f'[data-post-id="{rid}"] [data-testid="edit-input"]')
    editor.fill("My careful rewrite.")
    p1.locator(f'[data-post-id="{rid}"] [data-testid="edit-save"]').click()
    msg = p1.locator(f'[data-post-id="{rid}"] [data-testid="editor"] [data-testid="form-error"]')
    expect(msg).to_contain_text("while you were writing")
    expect(editor).to_have_value("My careful rewrite.")
    p1.locator(f'[data-post-id="{rid}"] [data-testid="edit-save"]').click()  # now based on the latest revision
    expect(part(p1, rid, "post-body")).to_have_text("My careful rewrite.")
    expect(part(p2, rid, "post-body")).to_have_text("My careful rewrite.")


def test_new_responses_pill_when_scrolled_up_and_screen_reader_announcement(site: Site, readers: Any) -> None:
    """A reader scrolled up gets an "N new responses" pill (no jump) and an aria-live announcement; the pill scrolls."""
    poster, _ = site.client("Petra Poster")
    tid = site.thread(poster)["thread"]["id"]
    for i in range(8):
        site.reply(poster, tid, f"Earlier response number {i} " + "with some words to fill the page. " * 6)
    reader = readers(viewport=(1000, 600))
    page = reader.open_thread(tid)
    page.evaluate("window.scrollTo(0, 0)")
    site.reply(poster, tid, "Fresh response one.")
    site.reply(poster, tid, "Fresh response two.")
    pill = page.locator('[data-testid="new-pill"]')
    expect(pill).to_have_text("2 new responses")
    expect(page.locator('[data-testid="live-region"]')).to_have_text("New response from Petra Poster.")
    assert page.evaluate("window.scrollY") == 0
    pill.click()
    expect(pill).to_be_hidden()
    expect(response_with(page, "Fresh response one.")).to_be_in_viewport()


def test_api_errors_show_next_to_the_form_and_keep_the_text(site: Site, readers: Any) -> None:
    """A failed post (here: a body of invisible characters only, which the server refuses) shows the server's
    message by the form and keeps what was typed. (A body over the limit is refused before sending: the length
    counter, test_web_second_walk.py.)"""
    asker, _ = site.client()
    tid = site.thread(asker)["thread"]["id"]
    reader = readers()
    reader.sign_up("Ernie Error")
    page = reader.open_thread(tid)
    box = page.locator('[data-testid="reply-input"]')
    too_long = "\u200b" * 5
    box.fill(too_long)
    page.locator('[data-testid="reply-submit"]').click()
    error = page.locator('[data-testid="reply-form"] [data-testid="form-error"]')
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    assert box.input_value() == too_long
    expect(page.locator('[data-testid="response"]')).to_have_count(0)


def test_apply_event_rules(site: Site, readers: Any) -> None:
    """apply.js inserts, edits, deletes and scores posts, keeps my_vote, and ignores duplicate or old seqs."""
    reader = readers()
    reader.page.goto("/")
    result = reader.page.evaluate("""async () => {
      const { applyEvent } = await import('/static/js/apply.js');
      const post = (id, kind, parent, extra = {}) => ({ id, kind, parent_id: parent, thread_id: 1, body: 'b' + id,
        html: '<p>b' + id + '</p>', score: 0, my_vote: 0, deleted: false, revision: 1, ...extra });
      let s = { thread: { id: 1, seq: 5, title: 'T', response_count: 1 }, question: post(1, 'question', null),
        responses: [{ ...post(2, 'response', 1, { my_vote: 1, score: 3 }), comments: [] }] };
      const frozen = JSON.stringify(s);
      const out = {};
      const ap = (ev) => { const r = applyEvent(s, { thread: 1, ...ev }); s = r.state; return r.change; };
      out.old = ap({ seq: 5, name: 'post.created', data: post(9, 'response', 1) });
      out.inputUntouched = JSON.stringify(s) === frozen;
      ap({ seq: 6, name: 'post.created', data: post(3, 'response', 1) });
      out.dupId = ap({ seq: 7, name: 'post.created', data: post(3, 'response', 1) });
      ap({ seq: 8, name: 'post.created', data: post(4, 'comment', 2) });
      ap({ seq: 9, name: 'post.edited', data: post(2, 'response', 1, { body: 'new', revision: 2, score: 3 }) });
      ap({ seq: 10, name: 'vote.changed', data: { post_id: 4, score: 7 } });
      ap({ seq: 11, name: 'post.deleted', data: { id: 3 } });
      ap({ seq: 12, name: 'thread.updated', data: { id: 1, title: 'T2', locked: true, seq: 99 } });
      out.otherThread = applyEvent(s, { thread: 2, seq: 13, name: 'post.deleted', data: { id: 2 } }).change;
      out.s = s;
      return out;
    }""")
    s = result["s"]
    assert result["old"] is None and result["dupId"] is None and result["otherThread"] is None
    assert result["inputUntouched"]
    assert [r["id"] for r in s["responses"]] == [2, 3]
    first, second = s["responses"]
    assert first["body"] == "new" and first["my_vote"] == 1 and first["revision"] == 2
    assert [c["id"] for c in first["comments"]] == [4] and first["comments"][0]["score"] == 7
    assert second["deleted"] is True and second["body"] == "" and second["html"] == ""
    assert s["thread"]["title"] == "T2" and s["thread"]["locked"] is True and s["thread"]["seq"] == 12
