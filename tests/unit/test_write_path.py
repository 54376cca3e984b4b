"""The write path's rules, each written once (ARCHITECTURE rule 7; issue 26): only store/events.py takes a
thread's seq or stores an event row; the Post is declared once and its SQL and Python sides agree; the
User brief is built in one place; only server/effects.py publishes what a write caused, with one failure
policy that never fails the writer and still tries the next effect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server import effects, metrics
from server.live.broker import MemoryBroker
from server.live.channels import Channels
from server.store import Written, posts, users
from server.store.events import Event
from server.wire import decode, event_frame

SERVER = Path(__file__).resolve().parents[2] / "server"


def sources(*exclude: str) -> dict[str, str]:
    return {str(p.relative_to(SERVER)): p.read_text() for p in SERVER.rglob("*.py")
            if str(p.relative_to(SERVER)) not in exclude}


def test_only_events_module_takes_seq_or_stores_events():
    """No module but store/events.py writes threads.seq or inserts into thread_events."""
    seq_write = re.compile(r"seq\s*=\s*(t\.)?seq\s*\+\s*1", re.I)
    event_insert = re.compile(r"INSERT\s+INTO\s+thread_events", re.I)
    offenders = [name for name, text in sources("store/events.py").items()
                 if seq_write.search(text) or event_insert.search(text)]
    assert offenders == []
    assert "INSERT INTO thread_events" in (SERVER / "store" / "events.py").read_text()


def test_only_effects_module_publishes_for_writes():
    """Handlers and the store never call the broker: server/effects.py is the one way out of a write."""
    publish = re.compile(r"broker\.publish|userchannel\.(publish_frame|publish_frames|publish_batch|end_sessions)\(")
    offenders = [name for name, text in sources().items()
                 if name.startswith(("api/", "store/")) and publish.search(text)]
    assert offenders == []


def test_user_brief_is_built_in_one_place():
    """No module spells out a User brief's keys by hand: store/users.py (BRIEF) builds every one."""
    by_hand = re.compile(r"""["']username["']\s*:\s*\w+\[["'](\w*_)?username["']\]""")
    offenders = [name for name, text in sources("store/users.py", "openapi.py").items() if by_hand.search(text)]
    assert offenders == []


@pytest.fixture()
async def db(pg_url: str) -> Any:
    conn = await asyncpg.connect(pg_url)
    tx = conn.transaction()
    await tx.start()
    yield conn
    await tx.rollback()
    await conn.close()


async def test_post_sql_and_python_serializers_agree(db: asyncpg.Connection):
    """POST_JSON (SQL) and post_dict (Python) give the same Post for new, edited and deleted posts."""
    uid = await db.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                            " ('wp_author', 'Ada « Lovelace »', 'x') RETURNING id")
    eid = await db.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                            " ('wp_editor', 'Ed', 'x') RETURNING id")
    cat = await db.fetchval("INSERT INTO categories (slug, name) VALUES ('wp-cat', 'WP') RETURNING id")
    tid = await db.fetchval("INSERT INTO threads (category_id, author_id, title, seq) VALUES ($1, $2, 't', 0)"
                            " RETURNING id", cat, uid)
    written = await posts.create_question(db, tid, uid, "Hello **there** \"q\"", "<p>Hello</p>", [])
    post, created = written.value
    assert created and post["kind"] == "question" and written.events[0].seq == 1
    pid = post["id"]

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        row = await posts.get_row(db, pid)
        sql = await db.fetchval(f"SELECT {posts.POST_JSON}::text FROM posts p JOIN users a ON a.id = p.author_id"
                                " LEFT JOIN users e ON e.id = p.edited_by WHERE p.id = $1", pid)
        return posts.post_dict(row), decode(sql)

    python, sql = await both()
    assert python == sql == post
    await db.execute("UPDATE posts SET body = 'b2', html = '<p>b2</p>', revision = 2, edited_at = now(),"
                     " edited_by = $2, score = 3 WHERE id = $1", pid, eid)
    python, sql = await both()
    assert python == sql and python["edited_by"]["username"] == "wp_editor" and python["edited_at"]
    await db.execute("UPDATE posts SET deleted = true WHERE id = $1", pid)
    python, sql = await both()
    assert python == sql and python["body"] == "" and python["html"] == "" and python["deleted"]


def test_user_brief_sql_and_python_agree_on_keys():
    """The brief's SQL builds the same keys, in order, as the Python brief."""
    sql = users.brief_sql("a")
    assert re.findall(r"'(\w+)', a\.\w+", sql) == list(users.BRIEF)
    row = {"x_id": 7, "x_username": "ada", "x_display_name": "Ada", "x_avatar_url": None}
    assert users.brief(row, "x_") == {"id": 7, "username": "ada", "display_name": "Ada", "avatar_url": None}


class FailingBroker(MemoryBroker):
    """A broker whose publishes fail for some channels (a twin: the failure policy is logic)."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing
        self.sent: list[tuple[str, bytes]] = []
        self.rounds: list[int] = []  # the size of each publish_many: one per round trip to Redis

    async def publish(self, channel: str, message: bytes) -> None:
        if self.failing in channel:
            raise ConnectionError("broker down")
        self.sent.append((channel, message))

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        self.rounds.append(len(items))
        await super().publish_many(items)  # the base's: every item tried, the first failure raised


class Hub:
    def __init__(self) -> None:
        self.commits: list[tuple[int, int]] = []

    def note_commit(self, thread_id: int, seq: int) -> None:
        self.commits.append((thread_id, seq))


class St:
    def __init__(self, broker: MemoryBroker) -> None:
        self.broker, self.hub, self.feed_publisher, self.pool = broker, Hub(), None, None
        self.channels = Channels()


async def test_after_commit_never_fails_the_writer_and_tries_every_effect():
    """A failing thread publish is counted and logged; the later events and the user frames still go out."""
    broker = FailingBroker(failing="thread:1")
    st = St(broker)
    before = metrics.EFFECT_FAILURES.labels("events")._value.get()
    written: Written[None] = Written(None, events=[Event(1, 5, event_frame(1, 5, "vote.changed", b"{}")),
                                                   Event(2, 9, event_frame(2, 9, "vote.changed", b"{}"))],
                                     user_frames=[(42, b'{"type":"flags","open":1}')])
    await effects.after_commit(st, written)  # type: ignore[arg-type]
    assert metrics.EFFECT_FAILURES.labels("events")._value.get() == before + 1
    channels = [c for c, _ in broker.sent]
    assert channels == [st.channels.thread(2), st.channels.user(42)]
    assert st.hub.commits == [(1, 5), (2, 9)]  # every commit noted, published or not (the hub backfills)


async def test_a_large_fan_out_goes_out_with_the_events_in_one_round_trip():
    """A reply notifying BROADCAST_MIN users: its events and the one batch message are one publish_many, events
    first; when it fails, both effects are counted as failed and the hub still notes the commit."""
    from server.live import userchannel
    from server.store.notifications import Notified

    assert userchannel.BROADCAST_MIN <= 20
    notification = {"id": 1, "kind": "reply", "created_at": "2026-12-06T00:00:00Z", "actor": {"id": 1},
                    "thread": {"id": 3, "title": "t"}, "post_id": 8}
    notified = [{"user_id": uid, "notification": {**notification, "id": uid}} for uid in range(100, 120)]
    for failing, sent in (("nothing", 2), ("thread:3", 1)):
        broker = FailingBroker(failing=failing)
        st = St(broker)
        before = [metrics.EFFECT_FAILURES.labels(e)._value.get() for e in ("events", "notifications")]
        written: Written[None] = Written(None, events=[Event(3, 4, event_frame(3, 4, "post.created", b"{}"))],
                                         notified=notified)
        assert not isinstance(written.notified, Notified)  # the generic batch path (userchannel.batch)
        await effects.after_commit(st, written)  # type: ignore[arg-type]
        assert broker.rounds == [2]
        assert [c for c, _ in broker.sent] == [st.channels.thread(3), st.channels.users][2 - sent:]
        after = [metrics.EFFECT_FAILURES.labels(e)._value.get() for e in ("events", "notifications")]
        assert [a - b for a, b in zip(after, before)] == ([0, 0] if sent == 2 else [1, 1])
        assert st.hub.commits == [(3, 4)]
