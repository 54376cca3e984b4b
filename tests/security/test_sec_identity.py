"""Names and accounts (issue 13, findings 5, 6, 8 and 13; issue 25, finding 9): patterns match the whole value,
usernames have one canonical form everywhere, categories nest at most 6 deep, password changes are rate-limited,
names hold no invisible or direction-changing character and copy no moderator's name."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import pytest

from server.config import RateLimits
from support.api import Api, unique
from support.databases import make_moderator
from support.processes import ServerProcess

PASSWORD = "correct horse battery"
LIMITS = RateLimits()


def test_username_with_trailing_newline_is_refused(server: Any) -> None:
    """"ada\\n" (and kin) is not a username: sign-up answers 422, field username, and creates no account."""
    for suffix in ("\n", "\r\n", "\n\n", " ", "\t"):
        name = unique("ada")
        r = httpx.post(server.url + "/api/users", json={"username": name + suffix, "password": PASSWORD})
        assert r.status_code == 422 and r.json()["error"]["field"] == "username", (suffix, r.text)
        r = httpx.post(server.url + "/api/session", json={"username": name, "password": PASSWORD})
        assert r.status_code == 401


def test_slug_with_trailing_newline_is_refused(server: Any, pg_url: str) -> None:
    """"cooking\\n" is not a slug: 422, field slug."""
    mod = Api(server.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    r = mod.post("/api/categories", json={"slug": unique("cooking") + "\n", "name": "Cooking"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "slug", r.text


async def test_feed_name_with_trailing_newline_is_refused(server: Any, pg_url: str, watchers: Any) -> None:
    """"all\\n" and kin are not feed names: subscribe and unsubscribe answer an `invalid` error frame, never
    `subscribed` or a not-found lookup; "all" itself still subscribes."""
    mod = Api(server.url).sign_up()
    slug = unique("feed-")
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    assert mod.post("/api/categories", json={"slug": slug, "name": "Feeds"}).status_code == 201
    w = await watchers(server.url.replace("http", "ws", 1) + "/ws")
    names = [base + tail for base in ("all", f"category:{slug}")
             for tail in ("\n", "\r\n", "\n\n", " ", "\t", "\u2028", "\x00")]
    for kind in ("subscribe", "unsubscribe"):
        for name in names:
            start = len(w.frames)
            await w.send({"type": kind, "feed": name})
            frame = await w.wait_for(lambda f: f["type"] in ("error", "subscribed", "unsubscribed"), start=start)
            assert frame["type"] == "error" and frame["code"] == "invalid", (kind, name, frame)
    start = len(w.frames)
    await w.send({"type": "subscribe", "feed": "all"})
    assert (await w.wait_for(lambda f: f["type"] == "subscribed", start=start))["feed"] == "all"


def test_lookalike_username_never_signs_in(server: Any) -> None:
    """"dmİtri" (U+0130: PostgreSQL lower() folds it to i) is not the account "dmitri": 401, whatever the password."""
    user = Api(server.url).sign_up(username=unique("dmitri"))
    name = user.user["username"]  # type: ignore[index]
    for variant in (name.replace("i", "\u0130", 1), name.replace("i", "\u0131", 1), name + "\u200b"):
        r = httpx.post(server.url + "/api/session", json={"username": variant, "password": PASSWORD})
        assert r.status_code == 401, (variant, r.text)
    assert httpx.post(server.url + "/api/session", json={"username": name.upper(),
                                                         "password": PASSWORD}).status_code == 200


def test_signin_backoff_cannot_be_bypassed_with_a_lookalike(limited: Any) -> None:
    """After 10 wrong passwords for dmitri, no spelling of the name gets in: DMITRI is 429, dmİtri is refused."""
    user = Api(limited.url).sign_up(username=unique("dmitri"))
    name = user.user["username"]  # type: ignore[index]
    for i in range(LIMITS.signin_failures_per_address_account[0]):
        r = httpx.post(limited.url + "/api/session", json={"username": name, "password": f"wrong-{i}-pass"})
        assert r.status_code == 401, r.text
    for variant in (name, name.upper(), name.replace("i", "\u0130", 1), name.replace("i", "I", 1)):
        r = httpx.post(limited.url + "/api/session", json={"username": variant, "password": PASSWORD})
        assert r.status_code in (401, 429), (variant, r.status_code)
        assert r.json()["error"]["code"] in ("rate_limited", "bad_credentials")


def test_password_changes_are_rate_limited(limited: Any) -> None:
    """Password changes (two argon2 hashes each) have a per-user bucket: past it, 429 with Retry-After."""
    api = Api(limited.url).sign_up()
    password = PASSWORD
    for i in range(LIMITS.password_change_per_user[0]):
        new = f"new password number {i}"
        r = api.put("/api/me/password", json={"old_password": password, "new_password": new})
        assert r.status_code == 200, r.text
        password = new
    r = api.put("/api/me/password", json={"old_password": password, "new_password": "yet another password"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text


def test_categories_nest_at_most_six_levels(server: Any, pg_url: str) -> None:
    """A chain of 6 categories is fine; a 7th level is a 422 (field parent); the tree still lists."""
    mod = Api(server.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    parent = None
    for level in range(6):
        slug = unique(f"l{level}-")
        r = mod.post("/api/categories", json={"slug": slug, "name": f"Level {level}", "parent": parent})
        assert r.status_code == 201, r.text
        parent = slug
    r = mod.post("/api/categories", json={"slug": unique("l6-"), "name": "Too deep", "parent": parent})
    assert r.status_code == 422 and r.json()["error"]["field"] == "parent", r.text
    assert httpx.get(server.url + "/api/categories").status_code == 200


def test_a_deep_chain_left_by_an_old_release_still_lists(fresh_db: str, redis_url: str, tmp_path: Any) -> None:
    """A database holding a 600-deep category chain (made before the cap) still answers GET /api/categories."""
    import asyncio

    import asyncpg

    async def build() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            parent = None
            for i in range(600):
                parent = await conn.fetchval("INSERT INTO categories (slug, name, parent_id) VALUES ($1, $2, $3)"
                                             " RETURNING id", f"deep-{i}", f"Deep {i}", parent)
        finally:
            await conn.close()
    asyncio.run(build())
    proc = ServerProcess({"DATABASE_URL": fresh_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        r = httpx.get(proc.url + "/api/categories", timeout=60)
        assert r.status_code == 200, r.text[:300]
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(10_000)  # 600 levels are 1,200 nested JSON containers for the client's parser
        try:
            data = json.loads(r.text)
        finally:
            sys.setrecursionlimit(limit)
        node, depth = data["categories"][0], 1
        while node["children"]:
            node, depth = node["children"][0], depth + 1
        assert depth == 600 and len(node["path"]) == 600
    finally:
        proc.stop()


# Format and control characters that reorder or hide text (issue 25, finding 9): the bidi embeddings,
# overrides and isolates, LRM/RLM/ALM, zero-width space/joiner/non-joiner, word joiner, soft hyphen, BOM,
# a tag character, a newline and an escape, a line separator, a blank letter.
SPOILERS = ["\u202e", "\u202a", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c",
            "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\U000e0041", "\n", "\x1b", "\u2028",
            "\u3164"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.fixture(scope="module")
def mod(server: Any, pg_url: str) -> Api:
    """A moderator with a display name of their own, and a category (`mod.slug`)."""
    api = Api(server.url).sign_up(display_name=unique("Warden "))
    make_moderator(pg_url, api.user["username"])  # type: ignore[index]
    api.slug = unique("c-")
    assert api.post("/api/categories", json={"slug": api.slug, "name": "Names"}).status_code == 201
    return api


def _refused(r: httpx.Response, field: str, ch: str) -> None:
    assert r.status_code == 422, (repr(ch), r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "invalid" and err["field"] == field and f"U+{ord(ch):04X}" in err["message"], err


@pytest.mark.parametrize("ch", SPOILERS, ids=lambda c: f"U+{ord(c):04X}")
def test_names_refuse_format_and_control_characters(ch: str, server: Any, mod: Api) -> None:
    """A display name (at sign-up) or a category name holding a format or control character anywhere (bidi
    controls, LRM/RLM, zero-width joiners, soft hyphen, BOM, tags, newline, a blank letter) is a 422 naming the
    field and the character; nothing is created."""
    name = unique("u")
    r = httpx.post(server.url + "/api/users", json={"username": name, "password": PASSWORD,
                                                    "display_name": f"Ada{ch}Lovelace"})
    _refused(r, "display_name", ch)
    assert httpx.get(f"{server.url}/api/users/{name}").status_code == 404
    slug = unique("c-")
    _refused(mod.post("/api/categories", json={"slug": slug, "name": f"Cooking{ch}Tips"}), "name", ch)
    assert slug not in mod.get("/api/categories").text


@pytest.mark.parametrize("ch", BIDI, ids=lambda c: f"U+{ord(c):04X}")
def test_titles_refuse_bidi_controls_on_create_and_rename(ch: str, mod: Api, server: Any) -> None:
    """A thread title with an explicit direction control (embedding, override, isolate or their end) is a 422
    field title, when asked and when renamed; the title is unchanged."""
    slug = mod.slug
    _refused(mod.post("/api/threads", json={"category": slug, "title": f"exe{ch}.txt", "body": "b"}), "title", ch)
    tid = mod.post("/api/threads", json={"category": slug, "title": "Plain", "body": "b"}).json()["thread"]["id"]
    _refused(mod.patch(f"/api/threads/{tid}", json={"title": f"Plain{ch}nialP"}), "title", ch)
    assert httpx.get(f"{server.url}/api/threads/{tid}").json()["thread"]["title"] == "Plain"


def test_right_to_left_text_keeps_its_marks_and_joiners(mod: Api, server: Any) -> None:
    """What right-to-left and Indic writing needs is kept: Arabic and Hebrew names, a title with RLM and a
    zero-width non-joiner (Persian), and a body with any bidi control (bodies render as their own paragraphs)."""
    user = Api(server.url).sign_up(display_name="سارة כהן")
    assert user.user["display_name"] == "سارة כהן"  # type: ignore[index]
    slug = mod.slug
    title = "می\u200cخواهم \u200fHTML\u200f یاد بگیرم"
    r = mod.post("/api/threads", json={"category": slug, "title": title, "body": "\u202eمرحبا\u202c and \u2067x\u2069"})
    assert r.status_code == 201, r.text
    assert r.json()["thread"]["title"] == title and "\u202e" in r.json()["question"]["body"]


def test_a_copy_of_a_moderators_name_is_refused(mod: Api, server: Any) -> None:
    """Signing up with a moderator's display name or username, in any case, width or spacing, is a 409
    display_name_taken (field display_name, or username when that is the display name); other names pass."""
    warden = mod.user["display_name"]  # type: ignore[index]
    for copy in (warden, warden.upper(), warden.replace(" ", ""), "\uff37" + warden[1:], mod.user["username"]):  # type: ignore[index]
        r = httpx.post(server.url + "/api/users", json={"username": unique(), "password": PASSWORD,
                                                        "display_name": copy})
        assert r.status_code == 409 and r.json()["error"]["field"] == "display_name", (copy, r.text)
        assert r.json()["error"]["code"] == "display_name_taken"
    r = httpx.post(server.url + "/api/users", json={"username": warden.replace(" ", "_"), "password": PASSWORD})
    assert r.status_code == 409 and r.json()["error"]["field"] == "username", r.text
    r = httpx.post(server.url + "/api/users", json={"username": mod.user["username"].upper() + "x",  # type: ignore[index]
                                                    "password": PASSWORD, "display_name": warden + " fan"})
    assert r.status_code == 201, r.text
