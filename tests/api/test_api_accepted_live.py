"""Accepted answers, live: a watcher's socket gets thread.updated (the rules: tests/unit/test_api_accepted.py)."""

from __future__ import annotations

import asyncio

from api_support import posted
from support.api import Api, new_thread


async def test_accepting_reaches_a_watcher_live(server, forum, watchers):
    """A watcher subscribed to the thread receives the thread.updated event carrying accepted_id."""
    asker, helper = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = (await asyncio.to_thread(new_thread, asker, forum["category"]))["thread"]["id"]
    answer = await asyncio.to_thread(posted, helper, tid)
    w = await watchers(server.ws_url)
    await w.subscribe(tid)
    r = await asyncio.to_thread(asker.put, f"/api/threads/{tid}/accepted", json={"post_id": answer["id"]})
    assert r.status_code == 200
    events = await w.wait_seq(tid, 3)
    assert events[-1]["name"] == "thread.updated" and events[-1]["data"]["accepted_id"] == answer["id"]
