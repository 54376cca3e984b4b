"""Names in the page (issue 25, finding 9): display names are free, so wherever who wrote or who is here matters
(a post's author line, its edited-by, Active Now) the unique @username is shown beside the display name, and a
right-to-left name cannot reorder the text around it. Real Chromium, real `parley serve`."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from .conftest import Site, unique
from .test_web_page import posted_long_ago


def test_username_is_shown_beside_display_names_in_posts_and_active_now(site: Site, readers: Any,
                                                                       pg_url: str) -> None:
    """Two people both called "Alice …": the question's and the response's author lines, the edited-by marker
    and Active Now each show that person's own @username beside the shared display name."""
    same = unique("Alice Same ")
    ra, rb = readers(), readers()
    a, b = ra.sign_up(same), rb.sign_up(same)
    r = ra.context.request.post("/api/threads", data={"category": site.category(), "title": "Who is who?",
                                                      "body": "Two of us share a name."})
    assert r.status == 201, r.text()
    tid = r.json()["thread"]["id"]
    r = rb.context.request.post(f"/api/threads/{tid}/posts", data={"body": "And yet we differ."})
    assert r.status == 201, r.text()
    rid = r.json()["post"]["id"]
    posted_long_ago(pg_url, rid)  # out of the 5-minute grace in which an author's edit is not marked
    assert rb.context.request.patch(f"/api/posts/{rid}", data={"body": "And yet we differ, see?"}).status == 200

    rb.open_thread(tid)  # b is on the thread too: both are in Active Now
    page = ra.open_thread(tid)
    question = page.locator('[data-testid="question"]')
    expect(question.locator('[data-testid="post-author"]')).to_have_text(same)
    expect(question.locator('[data-testid="user-handle"]')).to_have_text(f"@{a['username']}")
    response = page.locator(f'[data-post-id="{rid}"]')
    expect(response.locator('[data-testid="post-author"]')).to_have_text(same)
    expect(response.locator('[data-testid="user-handle"]').first).to_have_text(f"@{b['username']}")
    expect(response.locator('[data-testid="edited-marker"]')).to_contain_text(f"by {same} @{b['username']}")

    header = page.locator('[data-testid="active-now"]')
    for user in (a, b):
        item = header.locator(f'li[data-user-id="{user["id"]}"]')
        expect(item.locator("a")).to_have_text(same)
        expect(item.locator('[data-testid="user-handle"]')).to_have_text(f"@{user['username']}")
    assert ra.errors == [] and rb.errors == []


def test_a_right_to_left_name_does_not_move_its_username(site: Site, readers: Any) -> None:
    """An Arabic display name stays right to left, and its @username still reads after it, left to right
    (each in its own isolate), in the author line of a post."""
    rn = readers()
    user = rn.sign_up("سارة")
    r = rn.context.request.post("/api/threads", data={"category": site.category(), "title": "سؤال",
                                                      "body": "مرحبا"})
    assert r.status == 201, r.text()
    page = rn.open_thread(r.json()["thread"]["id"])
    question = page.locator('[data-testid="question"]')
    name, handle = question.locator('[data-testid="post-author"]'), question.locator('[data-testid="user-handle"]')
    expect(handle).to_have_text(f"@{user['username']}")
    # Retried until it holds: the view may render the author line again meanwhile (live, drafts), and a detached
    # element has no computed direction.
    expect(name).to_have_css("direction", "rtl")
    expect(handle).to_have_css("direction", "ltr")
    # Both boxes read in one step of the page (the line may be rendered again between two reads: a detached
    # element has no box), retried until the line is there.
    boxes = None
    for _ in range(100):
        boxes = question.evaluate("""q => {
            const n = q.querySelector('[data-testid="post-author"]');
            const h = q.querySelector('[data-testid="user-handle"]');
            if (!n || !h) return null;
            const a = n.getBoundingClientRect(), b = h.getBoundingClientRect();
            return a.width && b.width ? { nameRight: a.x + a.width, handleLeft: b.x } : null;
        }""")
        if boxes:
            break
        page.wait_for_timeout(100)
    assert boxes and boxes["handleLeft"] >= boxes["nameRight"] - 1, boxes
