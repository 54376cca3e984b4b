"""Resume with `since`: exactly the missed events, then `subscribed`; `reset` when history is gone."""

from __future__ import annotations

import asyncio

import asyncpg

from support.api import Api, new_thread


async def test_reconnect_with_since_gets_exactly_the_missed_events(server, forum, watchers):
    """Disconnect, 5 replies, reconnect with since → those 5 in order, then subscribed, then live."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    w = await watchers(server.ws_url)
    await w.subscribe(tid)
    await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": "seen live"})
    await w.wait_seq(tid, 2)
    last = w.seqs(tid)[-1]
    await w.close()
    bodies = [f"missed {i}" for i in range(5)]
    for b in bodies:
        await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": b})
    w2 = await watchers(server.ws_url)
    start = len(w2.frames)
    sub = await w2.subscribe(tid, since=last)
    assert sub == {"type": "subscribed", "thread": tid, "seq": 7}
    frames = w2.frames[start:]
    replay = [f for f in frames[:frames.index(sub)] if f["type"] == "event"]
    assert [e["seq"] for e in replay] == [3, 4, 5, 6, 7]
    assert [e["data"]["body"] for e in replay] == bodies
    await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": "live again"})
    await w2.wait_seq(tid, 8)
    assert w2.seqs(tid) == [3, 4, 5, 6, 7, 8]


async def test_since_current_seq_replays_nothing(server, forum, watchers):
    """since equal to the current seq sends no events before `subscribed`."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    w = await watchers(server.ws_url)
    sub = await w.subscribe(tid, since=1)
    assert sub["seq"] == 1 and "reset" not in sub
    assert w.seqs(tid) == []


async def test_since_older_than_retention_answers_reset(server, forum, watchers, pg_url):
    """When the events after `since` were pruned, `subscribed` carries reset: true."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    for i in range(3):
        await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": f"r{i}"})
    conn = await asyncpg.connect(pg_url)
    try:  # what retention does to old events
        await conn.execute("DELETE FROM thread_events WHERE thread_id = $1 AND seq <= 2", tid)
    finally:
        await conn.close()
    w = await watchers(server.ws_url)
    sub = await w.subscribe(tid, since=1)
    assert sub == {"type": "subscribed", "thread": tid, "seq": 4, "reset": True}
    assert w.seqs(tid) == []


async def test_since_ahead_of_the_thread_answers_reset(server, forum, watchers):
    """A since the server never issued (ahead of the thread) is answered with reset: true."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    w = await watchers(server.ws_url)
    sub = await w.subscribe(tid, since=999)
    assert sub.get("reset") is True and sub["seq"] == 1
