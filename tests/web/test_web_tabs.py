"""One socket per browser (issue 32): the tabs of a browser share one live connection — a shared worker, or
where there is none the tab that holds the leader lock, relaying over a BroadcastChannel — and each tab hears
only its own subscriptions. Counted by the server's own gauge of open sockets. Real Chromium, real
`parley serve` (the module's own: no other test's sockets in the count)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import NO_SHARED_WORKER, Site

# Neither a shared worker nor Web Locks: every tab opens its own socket, as the page did before issue 32.
OWN_SOCKET = NO_SHARED_WORKER + " Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });"
MODES = {"shared": None, "leader": NO_SHARED_WORKER, "own": OWN_SOCKET}


def sockets(site: Site) -> int:
    """The server's parley_ws_open_sockets (its /metrics answers loopback)."""
    text = httpx.get(site.base_url.rstrip("/") + "/metrics").text
    m = re.search(r"^parley_ws_open_sockets(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


def settle_sockets(site: Site, want: int, page: Any) -> int:
    """Wait (up to 10 s of the page's clock) for the count to reach `want`; the last count read."""
    n = sockets(site)
    for _ in range(50):
        if n == want:
            break
        page.wait_for_timeout(200)
        n = sockets(site)
    return n


def tabs_of(reader: Any, mode: str) -> Any:
    script = MODES[mode]
    if script:
        reader.context.add_init_script(script)
    return reader


def open_tab(reader: Any, path: str) -> Any:
    page = reader.context.new_page()
    page.on("pageerror", lambda e: reader.errors.append(str(e)))
    page.goto(path)
    expect(page.locator('[data-testid="connection-status"]')).to_have_attribute("data-state", "online")
    return page


def response(page: Any, text: str) -> Any:
    return page.locator('[data-testid="response"]', has_text=text)


@pytest.mark.parametrize("mode", ["shared", "leader"])
def test_two_tabs_on_two_threads_share_one_socket_and_hear_only_their_own(site: Site, readers: Any,
                                                                          mode: str) -> None:
    """Two tabs of one browser on two threads: the server sees one socket; each tab shows its own thread's
    live replies and never the other's; the tab that stays after the other closes keeps the socket, stays
    in Active Now, and is still live."""
    asker, _ = site.client("Asker")
    one = site.thread(asker, title="The first thread")["thread"]["id"]
    two = site.thread(asker, title="The second thread")["thread"]["id"]
    reader = tabs_of(readers(), mode)
    user = reader.sign_up(f"Two Tabs {mode}")
    assert settle_sockets(site, 0, reader.page) == 0
    reader.page.close()
    a = open_tab(reader, f"/t/{one}")
    b = open_tab(reader, f"/t/{two}")
    assert settle_sockets(site, 1, a) == 1

    site.reply(asker, two, "Only for the second")
    expect(response(b, "Only for the second")).to_have_count(1)
    site.reply(asker, one, "Only for the first")
    expect(response(a, "Only for the first")).to_have_count(1)
    site.reply(asker, two, "Again for the second")
    expect(response(b, "Again for the second")).to_have_count(1)
    expect(response(a, "second")).to_have_count(0)
    expect(response(b, "Only for the first")).to_have_count(0)

    # Typing goes out through the shared connection: someone else on the first thread sees it.
    other = readers()
    other.sign_up("Watcher Of One")
    watcher = other.open_thread(one)
    expect(a.locator('[data-testid="watching-count"]')).to_have_text("2 watching")  # both subscribed
    a.locator('[data-testid="reply-input"]').press_sequentially("Typing here", delay=40)
    expect(watcher.locator('[data-testid="typing-indicator"]')).to_contain_text(f"Two Tabs {mode}")
    other.close()

    a.close()  # the leader, in the fallback: b takes over
    site.reply(asker, two, "After the first tab closed")
    expect(response(b, "After the first tab closed")).to_have_count(1)
    assert settle_sockets(site, 1, b) == 1
    present = httpx.get(site.base_url.rstrip("/") + "/api/presence").json()["users"]
    assert user["id"] in [u["id"] for u in present]
    assert not reader.errors


def test_the_leader_leaves_and_the_next_tab_resumes_without_a_gap(site: Site, readers: Any) -> None:
    """Without a shared worker the first tab leads; when it closes, a follower takes the lock, opens the one
    socket again and resumes from what it holds: a reply posted while no tab led still arrives, once."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker, title="Handed over")["thread"]["id"]
    reader = tabs_of(readers(), "leader")
    reader.sign_up("Follower")
    reader.page.close()
    leader = open_tab(reader, f"/t/{tid}")
    follower = open_tab(reader, f"/t/{tid}")
    third = open_tab(reader, "/")
    assert settle_sockets(site, 1, follower) == 1
    site.reply(asker, tid, "Heard by both")
    expect(response(follower, "Heard by both")).to_have_count(1)
    expect(response(leader, "Heard by both")).to_have_count(1)
    leader.close()
    site.reply(asker, tid, "Posted during the hand-over")
    site.reply(asker, tid, "Posted after it")
    expect(response(follower, "Posted during the hand-over")).to_have_count(1)
    expect(response(follower, "Posted after it")).to_have_count(1)
    expect(follower.locator('[data-testid="connection-status"]')).to_have_attribute("data-state", "online")
    expect(third.locator('[data-testid="connection-status"]')).to_have_attribute("data-state", "online")
    assert settle_sockets(site, 1, follower) == 1
    assert follower.locator('[data-testid="response"]').count() == 3
    assert not reader.errors


@pytest.mark.parametrize("mode", ["shared", "leader", "own"])
def test_sockets_per_browser_for_1_2_and_10_tabs(site: Site, readers: Any, mode: str) -> None:
    """Open sockets for 1, 2 and 10 tabs of one browser: 1, 1, 1 shared (worker or leader), 1, 2, 10 with a
    socket per tab (no SharedWorker, no Web Locks: the page before issue 32, and its last resort)."""
    asker, _ = site.client("Asker")
    threads = [site.thread(asker, title=f"Tab thread {i}")["thread"]["id"] for i in range(3)]
    reader = tabs_of(readers(), mode)
    reader.sign_up(f"Ten Tabs {mode}")
    assert settle_sockets(site, 0, reader.page) == 0
    reader.page.close()
    pages: list[Any] = []
    counts: dict[int, int] = {}
    for n in range(1, 11):
        pages.append(open_tab(reader, f"/t/{threads[n % 3]}" if n % 4 else "/"))
        if n in (1, 2, 10):
            counts[n] = settle_sockets(site, 1 if mode != "own" else n, pages[0])
    print(f"\nsockets per browser ({mode}): " + ", ".join(f"{n} tabs → {c}" for n, c in counts.items()))
    assert counts == ({1: 1, 2: 2, 10: 10} if mode == "own" else {1: 1, 2: 1, 10: 1})
    site.reply(asker, threads[1], "To every tab of thread one")
    for i, page in enumerate(pages, start=1):
        if i % 4 and i % 3 == 1:
            expect(response(page, "To every tab of thread one")).to_have_count(1)
    assert not reader.errors
