"""axe-core (npm) in Chromium over every view of the page, in the light and the dark theme, as a guest,
a member and a moderator: no violation of WCAG 2 A/AA rules (contrast included)."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from support.databases import make_moderator

from .conftest import ROOT, Site, unique

AXE = ROOT / ".venv" / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        message = f"axe-core is not installed at {AXE} (scripts/test runs: npm install --prefix .venv axe-core@4)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(AXE).read_text()


def violations(page: Any, axe: str) -> list[str]:
    # A live update may be mid-animation (the arrival highlight): judge the settled page.
    page.evaluate("""() => document.getAnimations().forEach(a => {
        if (a.effect && a.effect.getComputedTiming().endTime !== Infinity) a.finish();
    })""")
    page.evaluate(axe + "\n;true")  # through the devtools protocol: the page's CSP allows no inline script
    found = page.evaluate("""async (tags) => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        const where = (v) => v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ');
        return r.violations.map(v => `${v.id} (${v.impact}): ${where(v)}`);
    }""", RULES)
    return list(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_passes_axe(site: Site, readers: Any, pg_url: str, axe_source: str, scheme: str) -> None:
    """Home, category, thread (with a deleted response), sign-in, sign-up (and its errors), not found, profile,
    search, the API page, settings (with the address and mail preferences), review queue and log, the bell open,
    and the pages mail links lead to (forgot, reset, verify, unsubscribe); a tagged duplicate with its banner, a
    tag's search, one's own profile with bookmarks, the ask form with similar questions."""
    asker, user = site.client(display_name=unique("Asker "))
    helper, _ = site.client()
    tid = site.thread(asker, title="Is the kettle on?")["thread"]["id"]
    resp = site.reply(helper, tid, "Yes, and **the tea** is `brewing`.")
    site.reply(asker, tid, "Thanks!", parent_id=resp["id"])
    site.mod.post(f"/api/posts/{resp['id']}/flags", json={"reason": "other", "note": "check this"})
    gone = site.reply(helper, tid, "Soon a tombstone.")
    assert helper.delete(f"/api/posts/{gone['id']}").status_code == 204
    tag = unique("axe-")[:20].lower()
    r = asker.post("/api/threads", json={"category": site.category(), "title": "Is the kettle on again?",
                                         "body": "Same question.", "tags": [tag, "c++"]})
    assert r.status_code == 201, r.text
    dup = r.json()["thread"]["id"]
    assert site.mod.put(f"/api/threads/{dup}/duplicate", json={"of": tid}).status_code == 200
    guest_views = ["/", f"/c/{site.category()}", f"/t/{tid}", "/signin", "/signup", "/no/such/page",
                   f"/u/{user['username']}", "/search?q=kettle", "/modlog", "/developers", "/forgot-password",
                   "/reset-password?token=t", "/verify-email?token=t", "/unsubscribe?token=t", "/reset-password",
                   f"/t/{dup}", f"/search?q=tag:{tag}"]
    problems: dict[str, list[str]] = {}
    guest = readers(color_scheme=scheme)
    for path in guest_views:
        guest.page.goto(path)
        expect(guest.page.locator("main[data-server-rendered]")).to_have_count(0)  # the script's view (the
        expect(guest.page.locator("main h1").first).to_be_visible()                # server's: test_web_crawler)
        if found := violations(guest.page, axe_source):
            problems[f"guest {path}"] = found
    mod = readers(color_scheme=scheme)
    mod_user = mod.sign_up(unique("Mod "))
    make_moderator(pg_url, mod_user["username"])
    mod.page.goto(f"/t/{resp['thread_id']}")
    mod.page.locator('[data-testid="bookmark"]').first.click()
    # The PUT has landed once the toast shows: navigating away before could cancel it (CI once found no bookmark).
    expect(mod.page.locator('[data-testid="toast"]')).to_contain_text("Bookmarked")
    for path in ["/", f"/t/{tid}", "/settings", "/review", f"/u/{user['username']}", f"/t/{dup}",
                 f"/u/{mod_user['username']}", f"/c/{site.category()}"]:
        mod.page.goto(path)
        mod.wait_live()
        expect(mod.page.locator("main h1").first).to_be_visible()
        if path == "/review":
            expect(mod.page.locator('[data-testid="review-item"] h2').first).to_be_visible()
        if path == f"/u/{mod_user['username']}":
            expect(mod.page.locator('[data-testid="bookmarks"] li').first).to_be_visible()
        if path == f"/t/{tid}":  # the moderator's "Mark duplicate" dialog open
            mod.page.locator('[data-testid="question"] [data-testid="mark-duplicate"]').click()
            expect(mod.page.locator('[data-testid="duplicate-dialog"]')).to_be_visible()
        if path.startswith("/c/"):  # the ask form open, with similar questions and tag completion showing
            mod.page.locator('[data-testid="ask-open"]').click()
            mod.page.locator('[data-testid="ask-title"]').fill("Is the kettle on?")
            expect(mod.page.locator('[data-testid="similar-item"]').first).to_be_visible(timeout=30_000)
        if found := violations(mod.page, axe_source):
            problems[f"moderator {path}"] = found
    # The bell open with a grouped row, and the sign-up form showing every field's error (issue 34).
    made = mod.context.request.post("/api/threads", data={"category": site.category(), "title": "Bell check",
                                                          "body": "Anyone?"})
    assert made.status == 201, made.text()
    for i in range(2):
        site.reply(helper, made.json()["thread"]["id"], f"Answer {i}")
    mod.page.goto("/")
    mod.wait_live()
    expect(mod.page.get_by_test_id("bell-count")).to_have_text("1")
    mod.page.get_by_test_id("bell").click()
    expect(mod.page.get_by_test_id("notification")).to_have_count(1)
    if found := violations(mod.page, axe_source):
        problems["moderator bell"] = found
    guest.page.goto("/signup")
    guest.page.get_by_test_id("auth-username").fill("a b")
    guest.page.get_by_test_id("auth-password").fill("short")
    guest.page.get_by_test_id("auth-submit").click()
    expect(guest.page.locator("#password-error")).to_be_visible()
    if found := violations(guest.page, axe_source):
        problems["guest sign-up errors"] = found
    assert problems == {}, problems


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pictures_pass_axe(site: Site, readers: Any, axe_source: str, scheme: str) -> None:
    """A thread with an inline image and an avatar, the composer's upload row (a refused file, with its reason and
    Remove), and the image enlarged in its dialog."""
    asker, _ = site.client(display_name=unique("Pictured "))
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (40, 90, 160)).save(buf, "PNG")
    up = asker.post("/api/uploads", files={"file": ("wiring.png", buf.getvalue(), "image/png")}).json()["upload"]
    assert asker.put("/api/me/avatar", json={"upload_id": up["id"]}).status_code == 200
    body = f"My wiring: ![the wiring]({up['url']})"
    tid = site.thread(asker, title="Is this wired right?", body=body)["thread"]["id"]
    member = readers(color_scheme=scheme)
    member.sign_up(unique("Member "))
    page = member.open_thread(tid)
    expect(page.locator('[data-testid="post-image"] img')).to_be_visible()
    page.evaluate("""(b64) => {
        const data = new DataTransfer();
        data.items.add(new File([atob(b64)], 'notes.png', { type: 'image/png' }));
        document.querySelector('[data-testid="reply-input"]').dispatchEvent(
            new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }""", base64.b64encode(b"not an image").decode())
    expect(page.locator('[data-testid="md-upload"]')).to_contain_text("not a PNG")
    problems: dict[str, list[str]] = {}
    if found := violations(page, axe_source):
        problems["thread with an image and an upload row"] = found
    page.locator('[data-testid="post-image"]').click()
    expect(page.locator('[data-testid="image-dialog"] img')).to_be_visible()
    if found := violations(page, axe_source):
        problems["enlarged image"] = found
    assert problems == {}, problems
