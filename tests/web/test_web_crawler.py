"""The pages crawlers read (server/api/pages.py) over real HTTP against `parley serve`: a plain client reads
the thread without a script; Chromium's script takes the page over without a second fetch, a flash or a
duplicate; the server's HTML alone passes axe-core."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import Site, unique
from .test_web_axe import axe_source, violations  # noqa: F401 - axe_source is a fixture

# Samples, before each painted frame, whether <main> shows a heading (what a reader sees is never empty).
FRAMES = """
window.__frames = [];
const sample = () => {
  const main = document.getElementById('main');
  if (main) window.__frames.push(main.querySelector('h1') ? 1 : 0);
  if (window.__frames.length < 2000) requestAnimationFrame(sample);
};
requestAnimationFrame(sample);
"""


def test_plain_client_reads_the_thread(site: Site) -> None:
    """An HTTP client without JavaScript gets the title, description, OpenGraph and the posts' text."""
    asker, _ = site.client()
    helper, _ = site.client()
    tid = site.thread(asker, title="Which kettle boils fastest?", body="I want tea **quickly**.")["thread"]["id"]
    site.reply(helper, tid, "An electric one, by far.")
    r = httpx.get(f"{site.base_url}/t/{tid}", timeout=20)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    text = r.text
    assert "<title>Which kettle boils fastest? · Parley</title>" in text
    assert '<meta name="description" content="I want tea quickly.">' in text
    assert '<meta property="og:title" content="Which kettle boils fastest?">' in text
    assert f'<link rel="canonical" href="{site.base_url}/t/{tid}/which-kettle-boils-fastest">' in text
    main = text.split("<main", 1)[1].split("</main>", 1)[0]
    assert "<strong>quickly</strong>" in main and "An electric one, by far." in main


@pytest.mark.parametrize("signed_in", [False, True])
def test_script_takes_over_without_refetch_flash_or_duplicate(site: Site, readers: Any, signed_in: bool) -> None:
    """In Chromium the thread view replaces the server's HTML: no /api/threads fetch, no empty frame, each
    post once."""
    asker, _ = site.client()
    helper, _ = site.client()
    tid = site.thread(asker, title="Loose or bagged tea?", body="Which brews better?")["thread"]["id"]
    site.reply(helper, tid, "Loose leaves, given room.")
    reader = readers()
    if signed_in:
        reader.sign_up(unique("Reader "))
    fetched: list[str] = []
    reader.page.on("request", lambda req: fetched.append(req.url) if "/api/threads/" in req.url else None)
    reader.page.add_init_script(FRAMES)
    reader.page.goto(f"/t/{tid}")
    reader.wait_live()
    expect(reader.page.locator("main[data-server-rendered]")).to_have_count(0)
    expect(reader.page.locator('[data-testid="question"]')).to_have_count(1)
    main = reader.page.locator("main")
    assert main.inner_text().count("Loose leaves, given room.") == 1
    assert main.inner_text().count("Which brews better?") == 1
    expect(reader.page.locator("main h1")).to_have_count(1)
    frames = reader.page.evaluate("window.__frames")
    assert frames and 0 not in frames, frames
    assert [u for u in fetched if f"/api/threads/{tid}?" in u] == []
    assert reader.errors == []


def test_server_html_alone_passes_axe(site: Site, readers: Any, axe_source: str) -> None:  # noqa: F811
    """The thread, profile and category pages as the server renders them (the script blocked) pass axe-core
    in both themes."""
    asker, user = site.client(display_name=unique("Asker "))
    helper, _ = site.client()
    tid = site.thread(asker, title="Milk first?")["thread"]["id"]
    resp = site.reply(helper, tid, "Never, says **everyone**.")
    site.reply(asker, tid, "Noted.", parent_id=resp["id"])
    problems: dict[str, list[str]] = {}
    for scheme in ("light", "dark"):
        reader = readers(color_scheme=scheme)
        reader.page.route("**/static/js/**", lambda route: route.abort())
        for path in (f"/t/{tid}", f"/u/{user['username']}", f"/c/{site.category()}"):
            reader.page.goto(path)
            expect(reader.page.locator("main[data-server-rendered] h1")).to_have_count(1)
            if found := violations(reader.page, axe_source):
                problems[f"{scheme} {path}"] = found
    assert problems == {}, problems
