"""Server-sent events (GET /api/stream, issue 32): the same frames as /ws for a thread subscription, a thread
event's `id` its seq, resume with Last-Event-ID or ?since= with no gap and no duplicate, the user's own frames,
the end of the session, and the contract's errors. Against a real `parley serve` and Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from support.api import Api, new_thread
from support.sse import SseWatcher, StreamRefused


def reply(api: Api, tid: int, body: str) -> dict[str, Any]:
    r = api.post(f"/api/threads/{tid}/posts", json={"body": body})
    assert r.status_code == 201, r.text
    return r.json()["post"]  # type: ignore[no-any-return]


async def test_a_stream_carries_what_a_socket_does_with_each_events_seq_as_its_id(server, forum, watchers):
    """hello, site presence, `subscribed`, the thread's presence, then each event: the same frame a socket
    subscribed to the thread gets, as `data`, with `id: SEQ`; other messages carry no id."""
    tid = (await asyncio.to_thread(new_thread, forum["mod"], forum["category"]))["thread"]["id"]
    sse = await SseWatcher.open(server.url, tid)
    ws = await watchers(server.ws_url)
    await ws.subscribe(tid)
    try:
        subscribed = await sse.wait_for(lambda f: f["type"] == "subscribed")
        assert subscribed == {"type": "subscribed", "thread": tid, "seq": 1}
        await sse.wait_for(lambda f: f["type"] == "presence" and f["scope"] == "thread")
        assert sse.frames[0]["type"] == "hello" and sse.frames[1] == {**sse.frames[1], "scope": "site"}
        post = await asyncio.to_thread(reply, forum["mod"], tid, "Over the stream")
        over_sse = await sse.wait_for(lambda f: f["type"] == "event" and f["seq"] == 2)
        over_ws = await ws.wait_for(lambda f: f["type"] == "event" and f["seq"] == 2)
        assert over_sse == over_ws and over_sse["data"]["id"] == post["id"]
        assert sse.ids[sse.frames.index(over_sse)] == "2"
        assert all(i is None for f, i in zip(sse.frames, sse.ids, strict=True) if f["type"] != "event")
    finally:
        await sse.close()


async def test_resuming_with_last_event_id_or_since_has_no_gap_and_no_duplicate(server, forum):
    """A stream read to seq N, closed, then 4 more replies: reopened with Last-Event-ID N it replays exactly
    N+1..N+4 then goes live; ?since= does the same; Last-Event-ID wins over ?since=."""
    tid = (await asyncio.to_thread(new_thread, forum["mod"], forum["category"]))["thread"]["id"]
    first = await SseWatcher.open(server.url, tid)
    for n in range(3):
        await asyncio.to_thread(reply, forum["mod"], tid, f"before {n}")
    await first.wait_seq(tid, 4)
    last = first.ids[max(i for i, f in enumerate(first.frames) if f["type"] == "event")]
    assert first.seqs(tid) == [2, 3, 4] and last == "4"
    await first.close()
    for n in range(4):
        await asyncio.to_thread(reply, forum["mod"], tid, f"while away {n}")
    resumed = await SseWatcher.open(server.url, tid, last_event_id=last, since=1)
    by_since = await SseWatcher.open(server.url, tid, since=4)
    try:
        await resumed.wait_seq(tid, 8)
        await by_since.wait_seq(tid, 8)
        await asyncio.to_thread(reply, forum["mod"], tid, "live again")
        for w in (resumed, by_since):
            await w.wait_seq(tid, 9)
            assert w.seqs(tid) == [5, 6, 7, 8, 9]
            assert [i for f, i in zip(w.frames, w.ids, strict=True) if f["type"] == "event"] == \
                ["5", "6", "7", "8", "9"]
            subscribed = next(f for f in w.frames if f["type"] == "subscribed")
            assert subscribed["seq"] == 8 and "reset" not in subscribed
    finally:
        await resumed.close()
        await by_since.close()


async def test_a_signed_in_stream_gets_the_users_frames_and_ends_with_the_session(server, forum):
    """With no thread, a member's stream carries their draft frames; signing out ends it with `event: close`
    data {"code": 4001}, and the response finishes."""
    ada = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    sse = await SseWatcher.open(server.url, cookie=ada.session_cookie)
    try:
        assert sse.frames[0]["user"]["id"] == ada.user["id"]
        r = await asyncio.to_thread(ada.put, "/api/me/drafts/ask", json={"body": "Why is"})
        assert r.status_code == 200, r.text
        frame = await sse.wait_for(lambda f: f["type"] == "draft")
        assert frame["draft"]["body"] == "Why is"
        assert (await asyncio.to_thread(ada.delete, "/api/session")).status_code == 204
        await sse.wait_end()
        assert sse.named == [("close", json.dumps({"code": 4001}, separators=(",", ":")))]
    finally:
        await sse.close()


async def test_a_stream_can_follow_a_thread_list_too(server, forum):
    """?feed=category:SLUG: `subscribed` for the feed, then a `feed` frame when a thread is asked there."""
    sse = await SseWatcher.open(server.url, feed=f"category:{forum['category']}")
    try:
        await sse.wait_for(lambda f: f == {"type": "subscribed", "feed": f"category:{forum['category']}"})
        tid = (await asyncio.to_thread(new_thread, forum["mod"], forum["category"], "Listed live"))["thread"]["id"]
        frame = await sse.wait_for(lambda f: f["type"] == "feed" and f["thread"]["id"] == tid)
        assert frame["thread"]["title"] == "Listed live" and sse.ids[sse.frames.index(frame)] is None
    finally:
        await sse.close()


async def test_a_stream_refused_answers_the_contracts_error(server, forum):
    """An unknown thread or category is 404, a bad `since`, feed or a `since` without a thread 400, another
    site's Origin 403: each the contract's JSON error, never a stream."""
    cases = [({"thread": 9_000_000_000}, {}, 404, "not_found"),
             ({"thread": 1, "since": "-1"}, {}, 400, "bad_parameter"),
             ({"thread": "x"}, {}, 400, "bad_parameter"),
             ({"since": 3}, {}, 400, "bad_parameter"),
             ({"thread": 1}, {"Last-Event-ID": "abc"}, 400, "bad_parameter"),
             ({}, {"Origin": "https://evil.example"}, 403, "bad_origin"),
             ({"feed": "category:no-such-category-here"}, {}, 404, "not_found"),
             ({"feed": "everything"}, {}, 400, "bad_parameter")]
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        for params, headers, status, code in cases:
            r = await client.get("/api/stream", params=params, headers=headers)
            assert r.status_code == status, (params, r.text)
            assert r.headers["content-type"].startswith("application/json")
            assert r.json()["error"]["code"] == code, (params, r.text)
    with pytest.raises(StreamRefused) as refused:
        await SseWatcher.open(server.url, 9_000_000_001)
    assert refused.value.status == 404


async def test_a_stopping_server_ends_its_streams_at_once(spawn, forum):
    """SIGTERM: the stream's response finishes cleanly, as HTTP says a response ends (the graceful shutdown does
    not wait on it, nor cut it off at its timeout), and the process exits with 0."""
    srv = spawn()
    tid = (await asyncio.to_thread(new_thread, forum["mod"], forum["category"]))["thread"]["id"]
    sse = await SseWatcher.open(srv.url, tid)
    await sse.wait_for(lambda f: f["type"] == "subscribed")
    code = await asyncio.to_thread(srv.stop)
    await sse.wait_end()
    assert sse.clean and code == 0, (sse.clean, code, srv.output()[-2000:])
    await sse.close()


async def test_an_idle_stream_gets_a_keep_alive_comment_each_heartbeat_and_events_still_flow(spawn, forum):
    """With a 1 s heartbeat, an idle stream receives `: keep-alive` comments again and again, and a reply
    posted between them still arrives as its event, once."""
    srv = spawn(PARLEY_WS_HEARTBEAT_SECONDS="1")
    tid = (await asyncio.to_thread(new_thread, forum["mod"], forum["category"]))["thread"]["id"]
    sse = await SseWatcher.open(srv.url, tid)
    try:
        await sse.wait_for(lambda f: f["type"] == "subscribed")
        deadline = asyncio.get_running_loop().time() + 30
        while sse.comments < 2:
            assert asyncio.get_running_loop().time() < deadline, "no keep-alive comments"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(reply, forum["mod"], tid, "between beats")
        await sse.wait_seq(tid, 2)
        seen = sse.comments
        while sse.comments == seen:
            assert asyncio.get_running_loop().time() < deadline + 30, "keep-alives stopped after an event"
            await asyncio.sleep(0.1)
        assert sse.seqs(tid) == [2]
    finally:
        await sse.close()


async def test_streams_and_sockets_share_the_per_address_cap(spawn, forum):
    """With PARLEY_MAX_CONNECTIONS_PER_IP=2, two open streams fill it: a third is 429 `too_many_connections`
    and a websocket is refused too; once one stream ends, a stream opens again."""
    srv = spawn(PARLEY_MAX_CONNECTIONS_PER_IP="2")
    first, second = await SseWatcher.open(srv.url), await SseWatcher.open(srv.url)
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            r = await client.get("/api/stream")
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_connections", r.text
        import websockets
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(srv.ws_url, open_timeout=20)
        await first.close()
        for _ in range(100):  # the server notices the hang-up when it next writes or reads: poll, not a timing
            try:
                third = await SseWatcher.open(srv.url)
                break
            except StreamRefused:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the cap was not freed after a stream ended")
        await third.close()
    finally:
        await second.close()


async def test_a_stream_cut_again_and_again_while_replies_flow_misses_nothing_and_repeats_nothing(server, forum):
    """Replies keep coming while a stream is cut and reopened with its Last-Event-ID five times: the events it
    received, all connections together, are every seq of the thread exactly once, in order."""
    tid = (await asyncio.to_thread(new_thread, forum["mod"], forum["category"]))["thread"]["id"]
    stop = asyncio.Event()

    async def poster() -> int:
        n = 0
        while not stop.is_set():
            await asyncio.to_thread(reply, forum["mod"], tid, f"flowing {n}")
            n += 1
        return n

    posting = asyncio.create_task(poster())
    got: list[int] = []
    last: str | None = None
    try:
        for _ in range(5):
            sse = await SseWatcher.open(server.url, tid, last_event_id=last, since=None if last else 1)
            await sse.wait_for(lambda f: f["type"] == "event" and f["seq"] >= (int(last or 1) + 2), timeout=20)
            await sse.close()
            got += sse.seqs(tid)
            ids = [i for f, i in zip(sse.frames, sse.ids, strict=True) if f["type"] == "event"]
            last = ids[-1]
    finally:
        stop.set()
        await posting
    final = await SseWatcher.open(server.url, tid, last_event_id=last)
    try:
        seq = (await asyncio.to_thread(forum["mod"].get, f"/api/threads/{tid}")).json()["thread"]["seq"]
        if seq > int(last or 0):
            await final.wait_seq(tid, seq)
        got += final.seqs(tid)
    finally:
        await final.close()
    assert got == list(range(2, seq + 1)), got
