"""The event applier, as docs/live.md states it (web/js/apply.js is the same rule in JavaScript).

state = the body of GET /api/threads/{id}: {thread, question, responses: [Post + {comments}]}.
"""

from __future__ import annotations

from typing import Any

KEEP = ("my_vote", "comments")


def _find(state: dict[str, Any], post_id: int) -> dict[str, Any] | None:
    if state["question"]["id"] == post_id:
        return state["question"]
    for r in state["responses"]:
        if r["id"] == post_id:
            return r
        for c in r["comments"]:
            if c["id"] == post_id:
                return c
    return None


def apply(state: dict[str, Any], event: dict[str, Any]) -> None:
    """Apply one event frame in place; an event at or below the state's seq is a duplicate and ignored."""
    thread = state["thread"]
    if event["seq"] <= thread["seq"]:
        return
    name, data = event["name"], event["data"]
    if name == "post.created" and _find(state, data["id"]) is None:
        if data["kind"] == "response":
            state["responses"].append({**data, "comments": []})
            thread["response_count"] += 1
        elif data["kind"] == "comment":
            parent = _find(state, data["parent_id"])
            if parent is not None:
                parent["comments"].append(data)
        thread["last_activity_at"] = data["created_at"]
    elif name == "post.edited":
        post = _find(state, data["id"])
        if post is not None:
            post.update({k: v for k, v in data.items() if k not in KEEP})
    elif name == "post.deleted":
        post = _find(state, data["id"])
        if post is not None and not post["deleted"]:
            post.update(deleted=True, body="", html="")
            if post["kind"] == "response":
                thread["response_count"] -= 1
    elif name == "vote.changed":
        post = _find(state, data["post_id"])
        if post is not None:
            post["score"] = data["score"]
            if post is state["question"]:  # the question's score is the thread's too
                thread["score"] = data["score"]
    elif name == "thread.updated":
        thread.update(data)
    thread["seq"] = event["seq"]
