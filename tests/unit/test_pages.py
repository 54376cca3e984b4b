"""Pages crawlers and link previews can read (server/api/pages.py): read with a plain HTTP client, no script."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

from support import http
from support.api import Api, new_thread

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class Page(HTMLParser):
    """What a crawler reads of a page: title, metas, canonical, <main>'s text and the embedded preload."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.title, self.meta, self.links, self.main_text, self.preload = "", {}, {}, [], None
        self._in: list[str] = []
        self._depth_main = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "meta" and (a.get("name") or a.get("property")):
            self.meta[a.get("name") or a.get("property")] = a.get("content")
        if tag == "link" and a.get("rel"):
            self.links[a["rel"]] = a.get("href")
        if tag == "script" and a.get("id") == "preload":
            self._in.append("preload")
        elif tag == "title":
            self._in.append("title")
        if tag == "main":
            self._depth_main += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "script") and self._in:
            self._in.pop()
        if tag == "main":
            self._depth_main -= 1

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.title += data
        elif self._in and self._in[-1] == "preload":
            self.preload = json.loads(data)
        elif self._depth_main:
            self.main_text.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.main_text).split())


def read(url: str, api: Api | None = None) -> tuple[int, Page, Any]:
    r = api.get(url) if api is not None else http.get(url)
    return r.status_code, Page(r.text), r


def test_thread_page_has_title_description_og_canonical_and_content(server, forum):
    """GET /t/ID answers HTML whose title, description, OpenGraph and canonical name the thread, with its posts."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    body = "How do **tides** work <script>alert(1)</script> near the shore? " + "More words here. " * 30
    t = new_thread(alice, forum["category"], title="Why are there two tides a day?", body=body)
    tid = t["thread"]["id"]
    r = bob.post(f"/api/threads/{tid}/posts", json={"body": "The moon's pull & the earth's spin."})
    assert r.status_code == 201
    bob.post(f"/api/threads/{tid}/posts", json={"body": "A comment on it", "parent_id": r.json()["post"]["id"]})
    for path in (f"/t/{tid}", f"/t/{tid}/any-slug-at-all", f"/t/{tid}/"):
        status, page, resp = read(f"{server.url}{path}")
        assert status == 200 and resp.headers["content-type"].startswith("text/html")
        assert page.title == "Why are there two tides a day? · Parley"
        assert page.meta["og:title"] == "Why are there two tides a day?"
        assert page.meta["description"].startswith("How do tides work") and len(page.meta["description"]) <= 200
        assert page.meta["og:description"] == page.meta["description"]
        assert page.meta["og:type"] == "article"
        canonical = f"{server.url}/t/{tid}/why-are-there-two-tides-a-day"
        assert page.links["canonical"] == canonical and page.meta["og:url"] == canonical
        assert "Why are there two tides a day?" in page.text
        assert "The moon's pull & the earth's spin." in page.text and "A comment on it" in page.text
        assert "1 response" in page.text
        assert "<script>alert" not in resp.text
    # The embedded data is the JSON page the script would fetch, byte for byte in meaning.
    fetched = http.get(f"{server.url}/api/threads/{tid}?limit=100").json()
    assert page.preload == {f"/api/threads/{tid}?limit=100": fetched}


def test_embedded_data_cannot_close_its_script(server, forum):
    """A title holding </script> stays inside the embedded JSON (escaped as \\u003c) and the page's text."""
    alice = Api(server.url).sign_up()
    title = "Ends </script><script>alert(1)</script> here"
    tid = new_thread(alice, forum["category"], title=title)["thread"]["id"]
    _, page, resp = read(f"{server.url}/t/{tid}")
    assert "</script><script>alert" not in resp.text
    assert page.preload[f"/api/threads/{tid}?limit=100"]["thread"]["title"] == title
    assert page.title == f"{title} · Parley"


def test_signed_in_reader_gets_their_own_page_embedded(server, forum):
    """A signed-in reader's page embeds their votes and following, as the JSON API answers them."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    t = new_thread(alice, forum["category"])
    tid, qid = t["thread"]["id"], t["question"]["id"]
    assert bob.put(f"/api/posts/{qid}/vote", json={"value": 1}).status_code == 200
    _, page, resp = read(f"/t/{tid}", bob)
    assert resp.headers["vary"] == "Cookie"
    embedded = page.preload[f"/api/threads/{tid}?limit=100"]
    assert embedded["question"]["my_vote"] == 1 and embedded == bob.get(f"/api/threads/{tid}?limit=100").json()
    _, guest, _ = read(f"{server.url}/t/{tid}")
    assert guest.preload[f"/api/threads/{tid}?limit=100"]["question"]["my_vote"] == 0


def test_guest_page_follows_the_thread(server, forum):
    """The guest's kept HTML is replaced when the thread changes (a new response shows at once)."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    assert "No responses" not in read(f"{server.url}/t/{tid}")[1].text
    assert alice.post(f"/api/threads/{tid}/posts", json={"body": "a fresh answer"}).status_code == 201
    assert "a fresh answer" in read(f"{server.url}/t/{tid}")[1].text


@pytest.mark.parametrize("path", ["/t/999999999", "/t/abc", "/t/", "/u/nobody-here-at-all", "/c/no-such-category",
                                  "/t/99999999999999999999999", "/sitemaps/0.xml", "/sitemaps/99.xml"])
def test_unknown_pages_are_404(server, path):
    """An unknown or malformed thread, user or category answers 404 (the page, which says so)."""
    assert http.get(f"{server.url}{path}").status_code == 404


def test_deleted_thread_page_is_404(server, forum):
    """A deleted thread's page is 404 and shows none of its text."""
    alice = Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], title="soon gone", body="secret words")
    assert read(f"{server.url}/t/{t['thread']['id']}")[0] == 200
    assert forum["mod"].delete(f"/api/posts/{t['question']['id']}").status_code == 204
    status, page, resp = read(f"{server.url}/t/{t['thread']['id']}")
    assert status == 404 and "secret words" not in resp.text and "soon gone" not in resp.text


def test_profile_page(server, forum):
    """GET /u/NAME names the user in title and OpenGraph, lists their posts, embeds both API answers."""
    alice = Api(server.url).sign_up(display_name="Alice Tides")
    name = alice.user["username"]
    tid = new_thread(alice, forum["category"], title="My first question")["thread"]["id"]
    status, page, _ = read(f"{server.url}/u/{name}")
    assert status == 200 and page.title == "Alice Tides · Parley"
    assert page.meta["og:type"] == "profile" and page.links["canonical"] == f"{server.url}/u/{name}"
    assert "1 questions" in page.meta["description"] and "My first question" in page.text
    assert f"/t/{tid}" in http.get(f"{server.url}/u/{name}").text
    assert page.preload[f"/api/users/{name}"] == http.get(f"{server.url}/api/users/{name}").json()
    assert page.preload[f"/api/users/{name}/posts?limit=20"]["posts"][0]["thread"]["id"] == tid


def test_category_page(server, forum):
    """GET /c/SLUG names the category, lists its threads linked by their canonical path, embeds the lists."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"], title="Listed here")["thread"]["id"]
    slug = forum["category"]
    status, page, resp = read(f"{server.url}/c/{slug}")
    assert status == 200 and page.title == "Test category · Parley"
    assert page.links["canonical"] == f"{server.url}/c/{slug}" and page.meta["og:type"] == "website"
    assert "Listed here" in page.text and f'href="/t/{tid}/listed-here"' in resp.text
    assert page.preload["/api/categories"] == http.get(f"{server.url}/api/categories").json()
    assert page.preload[f"/api/categories/{slug}/threads?limit=20"] == http.get(
        f"{server.url}/api/categories/{slug}/threads?limit=20").json()
    _, tabbed, _ = read(f"{server.url}/c/{slug}?tab=new")
    assert set(tabbed.preload) == {"/api/categories"}  # the script lists another tab: it fetches that


def test_robots_txt(server):
    """/robots.txt keeps crawlers out of the API and forms and names the sitemap."""
    r = http.get(f"{server.url}/robots.txt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "Disallow: /api/" in r.text and f"Sitemap: {server.url}/sitemap.xml" in r.text


def test_sitemap_lists_live_threads(server, forum):
    """/sitemap.xml is a valid urlset of every live thread's canonical URL with its last activity."""
    alice = Api(server.url).sign_up()
    kept = new_thread(alice, forum["category"], title="Kept in the map")
    gone = new_thread(alice, forum["category"], title="Gone from the map")
    assert forum["mod"].delete(f"/api/posts/{gone['question']['id']}").status_code == 204
    r = http.get(f"{server.url}/sitemap.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{SITEMAP}urlset"
    locs = {u.findtext(f"{SITEMAP}loc"): u.findtext(f"{SITEMAP}lastmod") for u in root}
    assert f"{server.url}/t/{kept['thread']['id']}/kept-in-the-map" in locs
    assert not any(f"/t/{gone['thread']['id']}/" in loc for loc in locs)
    assert all(lastmod and lastmod.endswith("Z") for lastmod in locs.values())


def test_sitemap_becomes_an_index_past_its_size(server, forum, monkeypatch):
    """Past SITEMAP_URLS threads, /sitemap.xml is a sitemap index whose files together list every thread."""
    from server.api import pages
    alice = Api(server.url).sign_up()
    for i in range(3):
        new_thread(alice, forum["category"], title=f"Mapped {i}")
    whole = {u.findtext(f"{SITEMAP}loc") for u in ET.fromstring(http.get(f"{server.url}/sitemap.xml").content)}
    monkeypatch.setattr(pages, "SITEMAP_URLS", 2)
    root = ET.fromstring(http.get(f"{server.url}/sitemap.xml").content)
    assert root.tag == f"{SITEMAP}sitemapindex"
    files = [s.findtext(f"{SITEMAP}loc") for s in root]
    assert files[0] == f"{server.url}/sitemaps/1.xml" and len(files) >= 2
    seen: list[str] = []
    for f in files:
        part = ET.fromstring(http.get(f).content)
        assert part.tag == f"{SITEMAP}urlset" and 1 <= len(part) <= 2
        seen.extend(u.findtext(f"{SITEMAP}loc") for u in part)
    assert len(seen) == len(set(seen)) and set(seen) == whole and len(files) == -(-len(whole) // 2)
    assert http.get(f"{server.url}/sitemaps/{len(files) + 1}.xml").status_code == 404


def test_remote_images_are_links_in_the_server_html(server, forum):
    """An image from elsewhere is a link to it in the server's HTML (no remote load, as the script shows it)."""
    alice = Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], body="Look: ![a loaf](https://example.com/loaf.jpg)")
    main = http.get(f"{server.url}/t/{t['thread']['id']}").text.split("<main", 1)[1].split("</main>", 1)[0]
    assert "<img" not in main and 'href="https://example.com/loaf.jpg"' in main and ">a loaf</a>" in main
