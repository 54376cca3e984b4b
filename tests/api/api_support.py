"""Helpers shared by the API tests: the shapes of the contract's objects and a few shortcuts.

What every folder shares comes from tests/support/ (never `import conftest`: other test
folders have their own conftest.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from support.api import Api, unique
from support.databases import make_moderator

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
USER_BRIEF = {"id", "username", "display_name", "avatar_url"}  # avatar_url: contract revision 3, "Pictures"
USER_FULL = USER_BRIEF | {"is_moderator", "created_at"}
USER_OWN = USER_FULL | {"email", "email_verified"}  # a full user seen by itself (contract revision 3)
CATEGORY = {"id", "slug", "name", "parent", "path", "children"}
THREAD = {"id", "title", "category", "author", "created_at", "response_count", "last_activity_at", "locked", "seq",
          "score", "accepted_id", "tags", "duplicate_of", "following", "unread"}
POST = {"id", "thread_id", "parent_id", "kind", "author", "body", "html", "created_at", "edited_at", "edited_by",
        "revision", "score", "my_vote", "deleted"}
PASSWORD = "correct horse battery"


def check_error(r: httpx.Response, status: int, code: str | None = None, field: str | None = None) -> dict[str, Any]:
    """The response is the contract's error body with this status (and code/field when given)."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) <= {"code", "message", "field"}, err
    assert isinstance(err["code"], str) and re.fullmatch(r"[a-z][a-z0-9_]*", err["code"]), err
    assert isinstance(err["message"], str) and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    if field is not None:
        assert err.get("field") == field, err
    return err  # type: ignore[no-any-return]


def check_user_brief(user: dict[str, Any]) -> None:
    assert set(user) == USER_BRIEF, user
    assert isinstance(user["id"], int) and isinstance(user["username"], str) and isinstance(user["display_name"], str)


def check_user_own(user: dict[str, Any]) -> None:
    """The signed-in user's own view: the full user with its e-mail address and whether it is verified."""
    assert set(user) == USER_OWN, user
    assert user["email"] is None or isinstance(user["email"], str), user
    assert isinstance(user["email_verified"], bool), user
    assert isinstance(user["is_moderator"], bool)
    assert TIME.match(user["created_at"]), user


def check_thread(thread: dict[str, Any]) -> None:
    assert set(thread) == THREAD, thread
    assert set(thread["category"]) == {"slug", "name", "path"}, thread["category"]
    assert thread["category"]["path"][-1] == {"slug": thread["category"]["slug"], "name": thread["category"]["name"]}
    check_user_brief(thread["author"])
    assert TIME.match(thread["created_at"]) and TIME.match(thread["last_activity_at"]), thread
    assert isinstance(thread["locked"], bool) and isinstance(thread["seq"], int) and thread["seq"] >= 1


def check_post(post: dict[str, Any], *, comments: bool = False) -> None:
    keys = POST | {"comments"} if comments else POST
    assert set(post) == keys, post
    assert post["kind"] in ("question", "response", "comment")
    assert (post["parent_id"] is None) == (post["kind"] == "question")
    check_user_brief(post["author"])
    assert TIME.match(post["created_at"]), post
    assert (post["edited_at"] is None) == (post["edited_by"] is None) == (post["revision"] == 1), post
    if post["edited_at"] is not None:
        assert TIME.match(post["edited_at"])
        check_user_brief(post["edited_by"])
    assert post["my_vote"] in (-1, 0, 1) and isinstance(post["score"], int)
    if post["deleted"]:
        assert post["body"] == "" and post["html"] == "", post


def reply(api: Any, thread_id: int, body: str = "A reply", parent_id: int | None = None,
          **headers: str) -> httpx.Response:
    payload: dict[str, Any] = {"body": body}
    if parent_id is not None:
        payload["parent_id"] = parent_id
    return api.post(f"/api/threads/{thread_id}/posts", json=payload, headers=headers or None)  # type: ignore


def posted(api: Any, thread_id: int, body: str = "A reply", parent_id: int | None = None) -> dict[str, Any]:
    r = reply(api, thread_id, body, parent_id)
    assert r.status_code == 201, r.text
    return r.json()["post"]  # type: ignore[no-any-return]


def moderator(base_url: str, pg_url: str) -> Any:
    api = Api(base_url).sign_up()
    make_moderator(pg_url, api.user["username"])
    api.user["is_moderator"] = True
    return api


async def sign_up_many(base_url: str, n: int) -> list[httpx.AsyncClient]:
    """n signed-in async clients, signed up concurrently."""
    async def one() -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=base_url, timeout=60)
        r = await client.post("/api/users", json={"username": unique(), "password": PASSWORD})
        assert r.status_code == 201, r.text
        return client
    return list(await asyncio.gather(*(one() for _ in range(n))))


async def close_all(clients: list[httpx.AsyncClient]) -> None:
    await asyncio.gather(*(c.aclose() for c in clients))
