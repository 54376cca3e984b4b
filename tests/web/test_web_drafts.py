"""Drafts in the page (issue 32): what a person types is saved to the server as they type, shows up in their
other browser (another device) live and on opening, goes when the post is sent; leaving with text not yet
saved asks first when the server cannot be reached, and sends the text along when it can. Real Chromium
contexts against a real `parley serve`."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from .conftest import PASSWORD, Site


def same_person(readers: Any, first: Any) -> Any:
    """Another browser context (another device) signed in as `first`'s user."""
    other = readers()
    r = other.context.request.post("/api/session", data={"username": first.user["username"], "password": PASSWORD})
    assert r.status == 200, r.text()
    other.user = first.user
    return other


def server_drafts(reader: Any) -> dict[str, str]:
    r = reader.context.request.get("/api/me/drafts")
    assert r.status == 200, r.text()
    return {d["key"]: d["body"] for d in r.json()["drafts"]}


def test_a_draft_typed_in_one_browser_appears_in_another_and_goes_with_the_post(site: Site, readers: Any) -> None:
    """Ada types a response on her laptop: her phone's open thread shows the text live, a third browser that
    opens the thread afterwards finds it in the box, and once the laptop posts it the other boxes empty."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    laptop = readers()
    laptop.sign_up("Ada Drafter")
    phone = same_person(readers, laptop)
    a, b = laptop.open_thread(tid), phone.open_thread(tid)
    box_a, box_b = a.locator('[data-testid="reply-input"]'), b.locator('[data-testid="reply-input"]')
    box_a.click()
    box_a.press_sequentially("Boil it for seven minutes", delay=20)
    expect(box_b).to_have_value("Boil it for seven minutes")
    tablet = same_person(readers, laptop)
    c = tablet.open_thread(tid)
    expect(c.locator('[data-testid="reply-input"]')).to_have_value("Boil it for seven minutes")
    assert server_drafts(laptop) == {f"thread:{tid}": "Boil it for seven minutes"}
    a.locator('[data-testid="reply-submit"]').click()
    expect(b.locator(".post-body", has_text="Boil it for seven minutes")).to_have_count(1)
    expect(box_b).to_have_value("")
    expect(c.locator('[data-testid="reply-input"]')).to_have_value("")
    assert server_drafts(laptop) == {}
    assert not laptop.errors and not phone.errors and not tablet.errors


def test_leaving_with_text_not_yet_saved_asks_first(site: Site, readers: Any) -> None:
    """Offline, a typed comment cannot be saved: closing the page asks (beforeunload) and the page stays; back
    online the draft is saved by itself, and then the page closes without asking; a reload shows the text."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    rid = site.reply(asker, tid, "A response to comment on")["id"]
    ada = readers()
    ada.sign_up("Ada Leaver")
    page = ada.open_thread(tid)
    kinds: list[str] = []
    page.on("dialog", lambda d: kinds.append(d.type))
    box = page.locator(f'[data-post-id="{rid}"] [data-testid="comment-input"]')
    ada.context.set_offline(True)
    box.click()
    box.press_sequentially("Could you say more", delay=20)
    page.close(run_before_unload=True)
    expect(box).to_have_value("Could you say more")  # still open: the person was asked
    assert kinds == ["beforeunload"] and not page.is_closed()
    ada.context.set_offline(False)
    saved = page.locator(f'[data-post-id="{rid}"] [data-testid="draft-status"]')
    expect(saved).to_have_text("Draft saved")
    assert server_drafts(ada) == {f"comment:{rid}": "Could you say more"}
    other = ada.context.new_page()
    other.goto(f"/t/{tid}")
    expect(other.locator(f'[data-post-id="{rid}"] [data-testid="comment-input"]')).to_have_value("Could you say more")
    with page.expect_event("close"):  # with run_before_unload, close() does not wait for the page to go
        page.close(run_before_unload=True)
    assert page.is_closed() and kinds == ["beforeunload"]


def test_leaving_online_sends_the_unsaved_text_along_without_asking(site: Site, readers: Any) -> None:
    """Online, a response typed and left at once (before its save): the page closes without asking, and the
    text reaches the server all the same (a keepalive request), so the next visit finds it."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    ada = readers()
    ada.sign_up("Ada Hasty")
    page = ada.open_thread(tid)
    kinds: list[str] = []
    page.on("dialog", lambda d: kinds.append(d.type))
    box = page.locator('[data-testid="reply-input"]')
    box.click()
    box.press_sequentially("Left in a hurry", delay=10)
    with page.expect_event("close"):
        page.close(run_before_unload=True)
    assert kinds == []
    again = ada.context.new_page()
    again.goto(f"/t/{tid}")
    expect(again.locator('[data-testid="reply-input"]')).to_have_value("Left in a hurry")
    assert server_drafts(ada) == {f"thread:{tid}": "Left in a hurry"}


def test_a_drafts_list_answered_after_the_reply_was_sent_leaves_the_box_empty(site: Site, readers: Any) -> None:
    """The drafts list the page asks for on reconnecting is answered only after the reply that deleted the draft
    was sent (a slow answer, under load): its stale text does not come back into the emptied box."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    reader = readers()
    reader.sign_up("Ada Stale")
    page = reader.open_thread(tid)
    box = page.locator('[data-testid="reply-input"]')
    text = "Sent before the list came back"
    box.click()
    box.press_sequentially(text, delay=10)
    for _ in range(100):
        if server_drafts(reader) == {f"thread:{tid}": text}:
            break
        page.wait_for_timeout(100)
    assert server_drafts(reader) == {f"thread:{tid}": text}
    held: list[Any] = []
    page.route("**/api/me/drafts", lambda route: held.append((route, route.fetch())))
    status = page.locator('[data-testid="connection-status"]')
    reader.context.set_offline(True)
    expect(status).to_have_attribute("data-state", "offline")
    reader.context.set_offline(False)
    expect(status).to_have_attribute("data-state", "online")
    for _ in range(100):  # the reconnect asks for the list; it is held with the draft still in it
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page did not read its drafts on reconnecting"
    page.locator('[data-testid="reply-submit"]').click()
    expect(page.locator('[data-testid="response"]', has_text=text)).to_have_count(1)
    expect(box).to_have_value("")
    route, response = held[0]
    with page.expect_response("**/api/me/drafts"):
        route.fulfill(response=response)
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 200))")
    expect(box).to_have_value("")
    page.unroute("**/api/me/drafts")
    assert server_drafts(reader) == {}
