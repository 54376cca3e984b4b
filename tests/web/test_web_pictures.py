"""Pictures in Chromium (CONTRACT "Pictures"): an image pasted into a composer is uploaded with a progress row,
its Markdown goes in the text, and once posted it shows inline (sized, lazy) and opens large on a click; a
failed upload offers Retry; avatars replace initials."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

from PIL import Image
from playwright.sync_api import expect

from .conftest import Site

PASTE = """([b64, name, type, box]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], name, { type }));
    const ta = document.querySelector(`[data-testid="${box}"]`);
    ta.focus();
    ta.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
}"""


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def paste(page: Any, data: bytes, name: str = "screenshot.png", ctype: str = "image/png",
          box: str = "reply-input") -> None:
    page.evaluate(PASTE, [base64.b64encode(data).decode(), name, ctype, box])


def test_pasted_image_is_uploaded_posted_and_shown_inline(site: Site, readers: Any) -> None:
    """Paste a PNG into the reply box: its Markdown replaces the placeholder, and the posted response shows the
    image inline with its width and height, which opens large in a dialog that Escape closes."""
    c, _ = site.client("Asker")
    tid = site.thread(c, body="Show me the wiring")["thread"]["id"]
    r = readers()
    r.sign_up("Electrician")
    page = r.open_thread(tid)
    page.locator('[data-testid="reply-input"]').fill("Here it is:\n")
    paste(page, png(320, 200, (30, 120, 200)))
    box = page.locator('[data-testid="reply-input"]')
    expect(box).to_have_value(re.compile(r"!\[screenshot\]\(/uploads/[0-9a-f]{64}\.png\)"),
                              timeout=60_000)
    expect(page.locator('[data-testid="md-upload"]')).to_have_count(0)
    page.locator('[data-testid="reply-submit"]').click()
    img = page.locator('[data-testid="response"] [data-testid="post-image"] img')
    expect(img).to_be_visible(timeout=30_000)
    expect(img).to_have_attribute("width", "320")
    expect(img).to_have_attribute("height", "200")
    expect(img).to_have_attribute("loading", "lazy")
    assert img.evaluate("(el) => el.complete && el.naturalWidth") == 320
    page.locator('[data-testid="response"] [data-testid="post-image"]').click()
    dialog = page.locator('[data-testid="image-dialog"]')
    expect(dialog).to_be_visible()
    expect(dialog.locator("img.enlarged")).to_have_attribute("src", img.get_attribute("src") or "")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert r.errors == []


def test_a_failed_upload_offers_retry(site: Site, readers: Any) -> None:
    """The first upload fails (503): its row shows the reason and Retry; Retry uploads it and the Markdown goes in."""
    c, _ = site.client("Asker")
    tid = site.thread(c, body="Any photo?")["thread"]["id"]
    r = readers()
    r.sign_up("Photographer")
    page = r.open_thread(tid)
    failures = {"left": 1}

    def once(route: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            route.fulfill(status=503, content_type="application/json",
                          body='{"error": {"code": "unavailable", "message": "Busy; try again"}}')
        else:
            route.continue_()

    page.route("**/api/uploads", once)
    paste(page, png(40, 40, (200, 50, 50)), "photo.png")
    row = page.locator('[data-testid="md-upload"]')
    expect(row).to_contain_text("Busy; try again")
    row.locator('[data-testid="upload-retry"]').click()
    expect(page.locator('[data-testid="reply-input"]')).to_have_value(
        re.compile(r"!\[photo\]\(/uploads/[0-9a-f]{64}\.png\)"), timeout=60_000)
    expect(row).to_have_count(0)


def test_a_file_that_is_not_an_image_is_refused_with_its_reason(site: Site, readers: Any) -> None:
    """A text file dropped in as image/png is refused by the server (422): the row says why, offers no Retry,
    and Remove takes the placeholder out of the text."""
    c, _ = site.client("Asker")
    tid = site.thread(c, body="Paste something")["thread"]["id"]
    r = readers()
    r.sign_up("Paster")
    page = r.open_thread(tid)
    paste(page, b"not an image at all\n" * 20, "notes.png")
    row = page.locator('[data-testid="md-upload"]')
    expect(row).to_contain_text("not a PNG, JPEG, GIF or WebP")
    expect(row.locator('[data-testid="upload-retry"]')).to_be_hidden()
    row.get_by_role("button", name="Remove").click()
    expect(page.locator('[data-testid="reply-input"]')).to_have_value("\n")


def test_avatar_replaces_initials_in_posts(site: Site, readers: Any) -> None:
    """A user with an avatar shows as their picture beside their posts; one without keeps initials."""
    c, _ = site.client("Pictured")
    up = c.post("/api/uploads", files={"file": ("me.png", png(90, 60, (10, 160, 90)), "image/png")}).json()["upload"]
    assert c.put("/api/me/avatar", json={"upload_id": up["id"]}).status_code == 200
    tid = site.thread(c, body="With a face")["thread"]["id"]
    other, _ = site.client("Plain")
    site.reply(other, tid, "Without one")
    page = readers().open_thread(tid)
    avatar = page.locator('[data-testid="question"] [data-testid="avatar-img"]')
    expect(avatar).to_be_visible()
    assert avatar.evaluate("(el) => el.complete && el.naturalWidth") == 256
    expect(page.locator('[data-testid="response"] [data-testid="avatar-img"]')).to_have_count(0)


def test_settings_sets_and_removes_the_picture(site: Site, readers: Any, tmp_path: Any) -> None:
    """Settings → Picture: choosing a file uploads it and shows the square picture; Remove brings the initials back."""
    r = readers()
    r.sign_up("Settler")
    page = r.page
    page.goto("/settings")
    path = tmp_path / "me.png"
    path.write_bytes(png(120, 80, (150, 30, 200)))
    page.locator('[data-testid="avatar-file"]').set_input_files(str(path))
    shown = page.locator('[data-testid="settings-avatar"] [data-testid="avatar-img"]')
    expect(shown).to_be_visible(timeout=60_000)
    assert (r.context.request.get("/api/me").json()["user"]["avatar_url"] or "").startswith("/uploads/")
    page.locator('[data-testid="avatar-remove"]').click()
    expect(shown).to_have_count(0)
    assert r.context.request.get("/api/me").json()["user"]["avatar_url"] is None


def test_an_image_pasted_into_a_comment_box_goes_in_as_markdown(site: Site, readers: Any) -> None:
    """The comment boxes (no toolbar) take a pasted image too: its Markdown ends up in the comment's text."""
    c, _ = site.client("Asker")
    tid = site.thread(c, body="Question")["thread"]["id"]
    helper, _ = site.client("Helper")
    site.reply(helper, tid, "An answer")
    r = readers()
    r.sign_up("Commenter")
    page = r.open_thread(tid)
    paste(page, png(50, 30, (1, 200, 1)), "diagram.png", box="comment-input")
    expect(page.locator('[data-testid="comment-input"]').first).to_have_value(
        re.compile(r"!\[diagram\]\(/uploads/[0-9a-f]{64}\.png\)"), timeout=60_000)
