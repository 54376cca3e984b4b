"""The page's transports (issue 32): where websockets are refused, the page listens over server-sent events by
itself and the thread is live all the same (writes over HTTP as always). Real Chromium, real `parley serve`."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from .conftest import NO_SHARED_WORKER, Site


def test_websockets_refused_the_page_goes_live_over_sse(site: Site, readers: Any) -> None:
    """Every /ws upgrade is cut before its hello: the header still comes to "online" (transport sse), someone
    else's response appears live, and the reader's own response posts once."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    reader = readers()
    reader.sign_up("Ada Proxied")
    sockets: list[str] = []

    def refuse(ws: Any) -> None:
        sockets.append(ws.url)
        ws.close(code=1011)

    reader.context.add_init_script(NO_SHARED_WORKER)  # route_web_socket reaches the page's sockets only
    reader.context.route_web_socket("**/ws", refuse)
    streams: list[str] = []
    reader.page.on("request", lambda r: streams.append(r.url) if "/api/stream" in r.url else None)
    page = reader.open_thread(tid)  # waits for the header's "online"
    status = page.locator('[data-testid="connection-status"]')
    expect(status).to_have_attribute("data-transport", "sse")
    assert len(sockets) >= 2 and any(f"thread={tid}" in u for u in streams)
    site.reply(asker, tid, "Sent while you listen over HTTP")
    expect(page.locator('[data-testid="response"]', has_text="Sent while you listen over HTTP")).to_have_count(1)
    box = page.locator('[data-testid="reply-input"]')
    box.fill("My answer, over HTTP")
    page.locator('[data-testid="reply-submit"]').click()
    expect(page.locator('[data-testid="response"]', has_text="My answer, over HTTP")).to_have_count(1)
    expect(status).to_have_attribute("data-state", "online")
    assert not reader.errors


def test_offline_is_a_state_a_queued_response_posts_once_when_back(site: Site, readers: Any) -> None:
    """Offline: the header says so; a response sent then waits in the form with a message saying it will be
    posted; back online it is posted by itself, exactly once, and the header is live again."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    reader = readers()
    reader.sign_up("Ada Offline")
    page = reader.open_thread(tid)
    status = page.locator('[data-testid="connection-status"]')
    reader.context.set_offline(True)
    expect(status).to_have_attribute("data-state", "offline")
    expect(status).to_have_text("Offline")
    page.locator('[data-testid="reply-input"]').fill("Written on the train")
    page.locator('[data-testid="reply-submit"]').click()
    form = page.locator('[data-testid="reply-form"]')
    expect(form).to_contain_text("will be posted once the connection is back")
    assert page.locator('[data-testid="response"]', has_text="Written on the train").count() == 0
    reader.context.set_offline(False)
    expect(status).to_have_attribute("data-state", "online")
    expect(page.locator('[data-testid="response"]', has_text="Written on the train")).to_have_count(1)
    expect(page.locator('[data-testid="reply-input"]')).to_have_value("")
    posts = asker.get(f"/api/threads/{tid}").json()["responses"]
    assert [p["body"] for p in posts].count("Written on the train") == 1
    assert not reader.errors


def test_a_vote_cast_offline_is_kept_and_sent_once_back(site: Site, readers: Any) -> None:
    """Offline: an up vote stays shown with a message that it waits; back online it reaches the server (score 1,
    my_vote 1) with no click, and the message goes."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    answer = site.reply(asker, tid, "Vote on me offline")
    reader = readers()
    reader.sign_up("Vic Offline")
    page = reader.open_thread(tid)
    post = page.locator(f'[data-post-id="{answer["id"]}"]')
    reader.context.set_offline(True)
    expect(page.locator('[data-testid="connection-status"]')).to_have_attribute("data-state", "offline")
    post.get_by_test_id("vote-up").click()
    expect(post).to_contain_text("your vote is kept and sent once the connection is back")
    expect(post.get_by_test_id("vote-up")).to_have_attribute("aria-pressed", "true")
    assert asker.get(f"/api/threads/{tid}").json()["responses"][0]["score"] == 0
    reader.context.set_offline(False)
    expect(post).not_to_contain_text("your vote is kept")
    for _ in range(100):
        if asker.get(f"/api/threads/{tid}").json()["responses"][0]["score"] == 1:
            break
        page.wait_for_timeout(100)
    assert asker.get(f"/api/threads/{tid}").json()["responses"][0]["score"] == 1
    assert not reader.errors


def test_a_view_that_failed_offline_loads_by_itself_when_back(site: Site, readers: Any) -> None:
    """Opening a thread while offline shows the failure panel; back online, the thread loads with no click."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker, title="Loaded when back")["thread"]["id"]
    reader = readers()
    page = reader.page
    page.goto("/")
    reader.wait_live()
    reader.context.set_offline(True)
    page.evaluate("(path) => { history.pushState(null, '', path); dispatchEvent(new PopStateEvent('popstate')); }",
                  f"/t/{tid}")
    expect(page.locator('[data-testid="load-failed"]')).to_contain_text("offline")
    reader.context.set_offline(False)
    expect(page.locator('[data-testid="thread-title"]')).to_have_text("Loaded when back")
    expect(page.locator('[data-testid="load-failed"]')).to_have_count(0)
