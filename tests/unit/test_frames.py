"""Every websocket frame the server sends is declared once (the Structs of server/wire.py) and its builder makes
exactly that: what the builder encodes decodes into its Struct strictly (no key missing, none unknown, every
value of the declared type) and encodes back to the same bytes."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
import pytest

from server import wire
from server.store import categories, drafts, posts, threads, users


@pytest.fixture()
async def pool(pg_url: str) -> Any:
    p = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    yield p
    await p.close()


def declared(frame: bytes, struct: type[msgspec.Struct]) -> None:
    """`frame` is a `struct`, key for key, and the Struct writes it back byte for byte."""
    value = msgspec.json.decode(frame, type=struct, strict=True)
    assert msgspec.json.encode(value) == frame, (frame, msgspec.json.encode(value))


async def test_every_builder_makes_its_declared_frame(pool: asyncpg.Pool) -> None:
    """Each frame builder, fed what the store makes (briefs, Posts, Threads, Notifications), makes its Struct."""
    name = "fr_" + uuid.uuid4().hex[:8]
    async with pool.acquire() as conn, conn.transaction():
        asker = await users.create(conn, name, "Frame Asker", "x")
        answerer = await users.create(conn, name + "b", "Frame Answerer", "x")
        cat = await categories.create(conn, "c-" + name.replace("_", "-"), "Frames", None)
        made = await threads.create(conn, asker["id"], cat["slug"], "A title", "A body", "<p>A body</p>")
    tid = made.value["thread"]["id"]
    async with pool.acquire() as conn, conn.transaction():
        written = await posts.create(conn, tid, answerer["id"], "A reply", None, "<p>A reply</p>")
        thread = await threads.get(conn, tid)
    post = written.value[0]
    async with pool.acquire() as conn, conn.transaction():
        saved = await drafts.put(conn, asker["id"], f"thread:{tid}", "A draft", None)
        gone = await drafts.discard(conn, asker["id"], f"thread:{tid}")
        voted = await posts.vote(conn, post["id"], asker["id"], 1)
    gained = [frame for uid, frame in voted.user_frames if uid == answerer["id"]]
    assert gained, "an up vote on a response earns its author reputation, told on their user channel"
    brief = users.brief(answerer)
    assert written.notified, "a reply to someone's question notifies them"
    built = {
        wire.hello: [wire.hello(brief, 25.0), wire.hello(None, 25.0)],
        wire.subscribed: [wire.subscribed(tid, 3), wire.subscribed(tid, 3, reset=True)],
        wire.unsubscribed: [wire.unsubscribed(tid)],
        wire.feed_subscribed: [wire.feed_subscribed("all")],
        wire.feed_unsubscribed: [wire.feed_unsubscribed(f"category:{cat['slug']}")],
        wire.event_frame: [wire.event_frame(tid, 2, "post.created", wire.encode(post)),
                           wire.event_frame(tid, 3, "post.deleted", b'{"id":%d}' % post["id"]),
                           wire.event_frame(tid, 4, "thread.updated", wire.encode(thread))],
        wire.pong: [wire.pong("abc"), wire.pong(7), wire.pong(None)],
        wire.error: [wire.error("invalid", "bad"), wire.error("forbidden", "Sign in", thread=tid),
                     wire.error("not_found", "No category", feed="category:x")],
        wire.typing: [wire.typing(tid, brief), wire.typing(tid, brief, post["id"])],
        wire.flag_count: [wire.flag_count(3)],
        wire.notification: [wire.notification(n["notification"], 1) for n in written.notified],
        wire.notifications: [wire.notifications(0)],
        wire.feed: [wire.feed("all", thread), wire.feed("all", {**thread, "deleted": True})],
        wire.my_vote: [wire.my_vote(tid, post["id"], 1, 1), wire.my_vote(tid, post["id"], -2, 0)],
        wire.reputation_frame: gained,
        wire.silenced_frame: [wire.silenced_frame(brief, True), wire.silenced_frame(brief, False)],
        wire.draft: [saved.user_frames[0][1], gone.user_frames[0][1]],
    }
    for builder, frames in built.items():
        for frame in frames:
            struct = wire.FRAMES[builder]
            assert isinstance(struct, type)
            declared(frame, struct)
    site, in_thread = wire.FRAMES[wire.presence]  # type: ignore[misc]
    declared(wire.presence([brief], 0), site)
    declared(wire.presence([brief, users.brief(asker)], 2, tid, 7), in_thread)
    assert set(built) | {wire.presence} == set(wire.FRAMES)


def test_a_frame_off_its_declaration_is_caught() -> None:
    """The check can fail: an unknown key, a missing one or a wrong type is refused by the Struct."""
    for bad in (b'{"type":"pong","id":1,"extra":2}', b'{"type":"flags"}', b'{"type":"flags","open":-1}',
                b'{"type":"subscribed","thread":"7","seq":1}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=wire.FRAMES[wire.pong] if b"pong" in bad else
                                wire.FRAMES[wire.flag_count] if b"flags" in bad else wire.Subscribed, strict=True)
