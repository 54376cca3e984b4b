"""Drafts over HTTP (CONTRACT rev. 3 "Drafts and transports"): save, list, compare-and-set with its 409, delete,
the keys, the limits, the post that sends a draft deleting it, the frames each change makes, and pruning."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from api_support import TIME, check_error, posted
from server import limits, shapes, wire
from server.store import drafts, pruning
from support.api import Api, new_thread

DRAFT = {"key", "body", "revision", "updated_at"}


def listed(api: Api) -> dict[str, dict[str, Any]]:
    r = api.get("/api/me/drafts")
    assert r.status_code == 200, r.text
    body = r.json()
    msgspec.convert(body, shapes.Drafts)
    for d in body["drafts"]:
        assert set(d) == DRAFT and TIME.match(d["updated_at"]), d
    return {d["key"]: d for d in body["drafts"]}


def put(api: Api, key: str, body: str, revision: int | None = None) -> Any:
    payload: dict[str, Any] = {"body": body}
    if revision is not None:
        payload["revision"] = revision
    return api.put(f"/api/me/drafts/{key}", json=payload)


def test_a_draft_is_saved_listed_and_only_its_writer_sees_it(forum: dict[str, Any]) -> None:
    """PUT makes revision 1, the next PUT revision 2; GET lists the user's own drafts only."""
    ada, bob = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    r = put(ada, "thread:7", "half a thought")
    assert r.status_code == 200, r.text
    first = r.json()["draft"]
    assert set(first) == DRAFT and first["key"] == "thread:7" and first["body"] == "half a thought"
    assert first["revision"] == 1
    second = put(ada, "thread:7", "half a thought, and more").json()["draft"]
    assert second["revision"] == 2 and second["updated_at"] >= first["updated_at"]
    assert put(ada, "ask", '{"title":"Eggs?"}').status_code == 200
    mine = listed(ada)
    assert set(mine) == {"thread:7", "ask"} and mine["thread:7"]["body"] == "half a thought, and more"
    assert listed(bob) == {}


def test_a_stale_revision_is_409_with_the_current_draft(forum: dict[str, Any]) -> None:
    """A PUT naming a revision that is not the current one changes nothing and answers 409 `draft_changed` with
    the current draft; 0 means "only if there is none"; the current revision passes."""
    ada = Api(forum["url"]).sign_up()
    assert put(ada, "comment:5", "phone", revision=0).json()["draft"]["revision"] == 1
    r = put(ada, "comment:5", "laptop", revision=0)
    assert r.status_code == 409, r.text
    body = r.json()
    assert set(body) == {"error", "draft"} and body["error"]["code"] == "draft_changed"
    msgspec.convert(body, shapes.DraftConflict)
    assert body["draft"]["body"] == "phone" and body["draft"]["revision"] == 1
    assert put(ada, "comment:5", "laptop", revision=1).json()["draft"]["revision"] == 2
    stale = put(ada, "comment:5", "phone again", revision=1)
    assert stale.status_code == 409 and stale.json()["draft"]["body"] == "laptop"
    missing = put(ada, "edit:99", "x", revision=3)
    assert missing.status_code == 409 and missing.json()["draft"] is None
    assert listed(ada)["comment:5"]["body"] == "laptop"


def test_delete_removes_a_draft_and_is_204_when_there_is_none(forum: dict[str, Any]) -> None:
    """DELETE answers 204 and the draft is gone; deleting again is 204 too; a new PUT starts at revision 1."""
    ada = Api(forum["url"]).sign_up()
    put(ada, "ask", "x")
    assert ada.delete("/api/me/drafts/ask").status_code == 204
    assert listed(ada) == {}
    assert ada.delete("/api/me/drafts/ask").status_code == 204
    assert put(ada, "ask", "y", revision=0).json()["draft"]["revision"] == 1


@pytest.mark.parametrize("key", ["draft", "thread:", "thread:0", "thread:x", "ask:1", "thread:07", "post:3",
                                 f"thread:{limits.BIGINT + 1}", "edit:1:2"])
def test_other_keys_are_422(forum: dict[str, Any], key: str) -> None:
    """Keys are ask, thread:ID, comment:ID and edit:ID with ID 1–BIGINT; any other is 422 naming `key`."""
    ada = Api(forum["url"]).sign_up()
    check_error(put(ada, key, "x"), 422, field="key")
    check_error(ada.delete(f"/api/me/drafts/{key}"), 422, field="key")


def test_drafts_need_a_session_and_keep_their_limits(forum: dict[str, Any]) -> None:
    """A guest gets 401; a body over DRAFT_MAX or a negative revision is 422; an empty body is a draft."""
    check_error(put(Api(forum["url"]), "ask", "x"), 401)
    check_error(Api(forum["url"]).get("/api/me/drafts"), 401)
    ada = Api(forum["url"]).sign_up()
    check_error(put(ada, "ask", "x" * (limits.DRAFT_MAX + 1)), 422, field="body")
    check_error(put(ada, "ask", "x", revision=-1), 422, field="revision")
    check_error(ada.put("/api/me/drafts/ask", json={"revision": 1}), 422, field="body")
    assert put(ada, "ask", "").json()["draft"]["body"] == ""
    assert put(ada, "ask", "x" * limits.DRAFT_MAX).status_code == 200


async def test_a_user_keeps_at_most_drafts_max(tx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DRAFTS_MAX+1-th key is 409 `too_many_drafts`; an existing key can still be saved."""
    monkeypatch.setattr(limits, "DRAFTS_MAX", 3)
    uid = await tx.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                            " ('dr_many', 'Many', 'x') RETURNING id")
    for n in (1, 2, 3):
        await drafts.put(tx, uid, f"thread:{n}", "x", None)
    with pytest.raises(drafts.Conflict) as refused:
        await drafts.put(tx, uid, "thread:4", "x", None)
    assert refused.value.code == "too_many_drafts" and refused.value.status == 409
    assert (await drafts.put(tx, uid, "thread:3", "y", None)).value["revision"] == 2


async def test_every_change_makes_a_draft_frame_for_its_writer(tx: Any) -> None:
    """A save's Written carries {"type":"draft","draft":Draft} for the writer; a discard the same key with
    `body: null` and the next revision; discarding nothing makes no frame."""
    uid = await tx.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                            " ('dr_frames', 'Frames', 'x') RETURNING id")
    saved = await drafts.put(tx, uid, "edit:12", "typo fixed", None)
    [(to, frame)] = saved.user_frames
    assert to == uid
    decoded = msgspec.json.decode(frame, type=wire.DraftFrame, strict=True)
    assert msgspec.json.encode(decoded) == frame
    assert decoded.draft.body == "typo fixed" and decoded.draft.revision == 1
    gone = await drafts.discard(tx, uid, "edit:12")
    [(to, frame)] = gone.user_frames
    decoded = msgspec.json.decode(frame, type=wire.DraftFrame, strict=True)
    assert to == uid and gone.value is True
    assert decoded.draft.key == "edit:12" and decoded.draft.body is None and decoded.draft.revision == 2
    nothing = await drafts.discard(tx, uid, "edit:12")
    assert nothing.value is False and nothing.user_frames == []


def test_the_post_that_succeeds_deletes_its_draft(forum: dict[str, Any]) -> None:
    """A response deletes thread:ID, a comment comment:ID, an edit edit:ID, a new question ask; other drafts
    stay, and a post that fails (an empty body) deletes nothing."""
    ada = Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    for key in ("ask", f"thread:{tid}", f"thread:{tid + 100000}"):
        put(ada, key, "draft text")
    assert ada.post(f"/api/threads/{tid}/posts", json={"body": " "}).status_code == 422
    assert f"thread:{tid}" in listed(ada)
    response = posted(ada, tid, "An answer")
    assert set(listed(ada)) == {"ask", f"thread:{tid + 100000}"}
    put(ada, f"comment:{response['id']}", "a remark")
    put(ada, f"edit:{response['id']}", "An answer, edited")
    posted(ada, tid, "A remark", parent_id=response["id"])
    assert f"comment:{response['id']}" not in listed(ada)
    r = ada.patch(f"/api/posts/{response['id']}", json={"body": "An answer, edited"})
    assert r.status_code == 200, r.text
    assert f"edit:{response['id']}" not in listed(ada)
    new_thread(ada, forum["category"], "A new question")
    assert set(listed(ada)) == {f"thread:{tid + 100000}"}


def test_a_reply_its_thread_refuses_keeps_its_draft(forum: dict[str, Any]) -> None:
    """A response to a locked thread (409) deletes no draft: the draft goes in the post's own statement only when
    the post is made, and a response is one autocommitted statement."""
    ada = Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    put(ada, f"thread:{tid}", "draft text")
    assert forum["mod"].patch(f"/api/threads/{tid}", json={"locked": True}).status_code == 200
    r = ada.post(f"/api/threads/{tid}/posts", json={"body": "An answer"})
    check_error(r, 409, "thread_locked")
    assert listed(ada)[f"thread:{tid}"]["revision"] == 1
    assert forum["mod"].patch(f"/api/threads/{tid}", json={"locked": False}).status_code == 200
    posted(ada, tid, "An answer")
    assert f"thread:{tid}" not in listed(ada)


async def test_housekeeping_prunes_drafts_untouched_for_keep_days(tx: Any) -> None:
    """The drafts pruner deletes a draft last changed DRAFT_KEEP_DAYS ago and keeps a recent one."""
    uid = await tx.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                            " ('dr_prune', 'Prune', 'x') RETURNING id")
    await drafts.put(tx, uid, "thread:1", "old", None)
    await drafts.put(tx, uid, "thread:2", "new", None)
    await tx.execute("UPDATE drafts SET updated_at = now() - make_interval(days => $2 + 1)"
                     " WHERE user_id = $1 AND key = 'thread:1'", uid, limits.DRAFT_KEEP_DAYS)
    [pruner] = [p for p in pruning.PRUNERS if p.table == "drafts"]
    await tx.execute(pruner.sql, 5000)
    assert [d["key"] for d in await drafts.listing(tx, uid)] == ["thread:2"]
