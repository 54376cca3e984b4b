"""Typing names the response being commented on (issue 17): `parent` in the client's typing frame is
relayed to the thread's other watchers on every process, never echoed, and a bad one is an error frame on
a socket that stays open. The relay itself is server/live/typingrelay.py, its message format live/channels.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.live import channels, typingrelay
from server.live.conn import Frame
from support.api import Api, new_thread


def brief(api: Api) -> dict[str, Any]:
    return {k: api.user[k] for k in ("id", "username", "display_name", "avatar_url")}  # type: ignore[index]


async def test_comment_typing_reaches_other_processes_with_parent_never_the_sender(
        server: Any, forum: dict[str, Any], spawn: Any, watchers: Any) -> None:
    """A typing frame with `parent` reaches watchers on this and another process with that parent, not the typist."""
    typist, other = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(typist, forum["category"])["thread"]["id"]
    second = spawn()
    sender = await watchers(server.ws_url, typist.session_cookie)
    local = await watchers(server.ws_url, other.session_cookie)
    remote = await watchers(second.ws_url)
    for ws in (sender, local, remote):
        assert (await ws.subscribe(tid))["type"] == "subscribed"
    response = typist.post(f"/api/threads/{tid}/posts", json={"body": "A response"})
    assert response.status_code == 201, response.text
    rid = response.json()["post"]["id"]
    # The response's event has reached every socket: each process hears the thread's channel. (Typing
    # is never replayed, so one published before a fresh process's subscriber is connected is lost.)
    for ws in (sender, local, remote):
        await ws.wait_seq(tid, 2)
    await sender.send({"type": "typing", "thread": tid, "parent": rid})
    await sender.send({"type": "typing", "thread": tid})  # a reply to the question: no parent relayed
    for ws in (local, remote):
        first = await ws.wait_for(lambda f: f["type"] == "typing")
        assert first == {"type": "typing", "thread": tid, "user": brief(typist), "parent": rid}
        n = ws.frames.index(first)
        second_frame = await ws.wait_for(lambda f: f["type"] == "typing", start=n + 1)
        assert second_frame == {"type": "typing", "thread": tid, "user": brief(typist)}
    # `local` is on the sender's process and has both: the relay loop that would have echoed them to
    # the sender has run, so an echo would be queued on the sender's socket before this pong.
    await sender.send({"type": "ping", "id": "after"})
    await sender.wait_for(lambda f: f["type"] == "pong")
    assert [f for f in sender.frames if f["type"] == "typing"] == []


@pytest.mark.parametrize("parent", [0, -3, "12", None, True, 1.5, 2**63])
async def test_bad_parent_is_an_error_frame_and_the_socket_stays_open(
        server: Any, forum: dict[str, Any], watchers: Any, parent: Any) -> None:
    """`parent` that is not a positive int gets error `invalid` naming it, nothing is relayed, the socket stays."""
    typist, other = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(typist, forum["category"])["thread"]["id"]
    sender = await watchers(server.ws_url, typist.session_cookie)
    watcher = await watchers(server.ws_url, other.session_cookie)
    for ws in (sender, watcher):
        await ws.subscribe(tid)
    await sender.send({"type": "typing", "thread": tid, "parent": parent})
    err = await sender.wait_for(lambda f: f["type"] == "error")
    assert err["code"] == "invalid" and "parent" in err["message"], err
    # The socket still works, and a good typing frame after the bad one is the only one relayed.
    await sender.send({"type": "typing", "thread": tid, "parent": 7})
    got = await watcher.wait_for(lambda f: f["type"] == "typing")
    assert got["parent"] == 7
    await sender.send({"type": "ping", "id": 1})
    await sender.wait_for(lambda f: f["type"] == "pong")
    assert sender.closed is None
    assert [f.get("parent") for f in watcher.frames if f["type"] == "typing"] == [7]


class FakeConn:
    def __init__(self, conn_id: int) -> None:
        self.id = conn_id
        self.got: list[bytes] = []

    def send(self, frame: Frame) -> None:
        self.got.append(frame.json)


def test_relay_skips_only_the_sending_socket_of_this_process() -> None:
    """typingrelay.relay gives the frame to every socket but the sender; a message from another process skips
    nobody."""
    conns = [FakeConn(i) for i in (1, 2, 3)]
    frame = b'{"type":"typing","thread":5,"user":{"id":9},"parent":11}'
    typingrelay.relay("proc-a", channels.typing_message("proc-a", 2, frame), conns)  # type: ignore[arg-type]
    assert [c.got for c in conns] == [[frame], [], [frame]]
    typingrelay.relay("proc-a", channels.typing_message("proc-b", 2, frame), conns)  # type: ignore[arg-type]
    assert [len(c.got) for c in conns] == [2, 1, 2]
    assert channels.is_typing(channels.typing_message("p", 1, frame)) and not channels.is_typing(b'{"type"')
    assert channels.typing_message("proc-a", 2, frame) == b"Tproc-a:2 " + frame  # the format other versions read


async def test_typing_is_still_forbidden_for_guests_with_a_parent(
        server: Any, forum: dict[str, Any], watchers: Any) -> None:
    """A guest's typing frame with a valid `parent` still gets `forbidden` with the thread, and is not relayed."""
    author = Api(server.url).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    guest = await watchers(server.ws_url)
    watcher = await watchers(server.ws_url, author.session_cookie)
    for ws in (guest, watcher):
        await ws.subscribe(tid)
    await guest.send({"type": "typing", "thread": tid, "parent": 3})
    err = await guest.wait_for(lambda f: f["type"] == "error")
    assert err["code"] == "forbidden" and err["thread"] == tid
    await asyncio.sleep(0.3)
    assert [f for f in watcher.frames if f["type"] == "typing"] == []
