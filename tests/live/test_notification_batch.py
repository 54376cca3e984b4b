"""The large fan-out's batch (server/live/userchannel.py): built by the writer, applied by each process's
Batches (server/live/users.py) to its own sockets only; in-process, with a fake pool connection that counts
its queries."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from server import wire
from server.live.userchannel import batch
from server.live.users import Batches
from server.store.notifications import published

ACTOR = {"id": 1, "username": "bob", "display_name": "Bob"}
THREAD = {"id": 7, "title": "A question"}


class Sock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, frame: Any) -> None:
        self.sent.append(frame.json)


class Db:
    """Answers store.notifications.unread_counts() from a dict, counting the queries."""

    def __init__(self, unread: dict[int, int]) -> None:
        self.unread = unread
        self.queries: list[list[int]] = []

    async def fetch(self, sql: str, users: list[int]) -> list[dict[str, int]]:
        self.queries.append(users)
        return [{"id": u, "unread": self.unread.get(u, 0)} for u in users]

    @contextlib.asynccontextmanager
    async def acquire(self) -> Any:
        yield self


def _notified(n: int) -> list[dict[str, Any]]:
    at = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    rows = [{"id": 1000 + u, "user_id": u, "kind": "followed" if u > 2 else "response", "created_at": at}
            for u in range(2, 2 + n)]
    return published(rows, ACTOR, THREAD, 99)


async def _apply(batches: Batches, message: bytes) -> None:
    batches.on_message(message)
    await asyncio.gather(*[t for t in asyncio.all_tasks() if t.get_name() == "notify-batch"])


async def test_each_local_socket_gets_the_same_frame_the_targeted_path_sends():
    """Entries of users with sockets here become frames byte-identical to wire.notification() of the writer's
    notification with that user's count, on every socket of that user; other users get nothing."""
    notified = _notified(40)
    two, one = [Sock(), Sock()], [Sock()]
    db = Db({2: 3, 9: 1})
    spawn = lambda coro, name: asyncio.get_running_loop().create_task(coro, name=name)  # noqa: E731
    batches = Batches({2: set(two), 9: set(one)}, db.acquire, spawn)
    message = batch(notified, set())
    assert message is not None
    await _apply(batches, message)
    by_user = {n["user_id"]: n["notification"] for n in notified}
    for sock in two:
        assert sock.sent == [wire.notification(by_user[2], 3)]
    assert one[0].sent == [wire.notification(by_user[9], 1)]
    assert db.queries == [[2, 9]]  # one count query, for the local recipients only


async def test_a_process_with_no_recipients_reads_no_counts():
    """A batch whose recipients hold no socket here costs no query and sends nothing."""
    db = Db({})
    spawn = lambda coro, name: asyncio.get_running_loop().create_task(coro, name=name)  # noqa: E731
    elsewhere = Sock()
    batches = Batches({500: {elsewhere}}, db.acquire, spawn)
    message = batch(_notified(40), {3})
    assert message is not None
    await _apply(batches, message)
    assert db.queries == [] and elsewhere.sent == []


async def test_recount_users_get_the_count_frame():
    """A user in `recount` (count changed otherwise) with a socket here gets {"type":"notifications"}."""
    db = Db({600: 4})
    spawn = lambda coro, name: asyncio.get_running_loop().create_task(coro, name=name)  # noqa: E731
    sock = Sock()
    batches = Batches({600: {sock}}, db.acquire, spawn)
    message = batch(_notified(40), {600})
    assert message is not None
    await _apply(batches, message)
    assert sock.sent == [wire.notifications(4)]


def test_notifications_of_different_posts_are_not_one_batch():
    """batch() refuses notifications that do not share actor, thread and post (they go out one by one)."""
    other = published([{"id": 5, "user_id": 3, "kind": "mention", "created_at": datetime.now(UTC)}], ACTOR,
                      {"id": 8, "title": "Another"}, 100)
    assert batch(_notified(40) + other, set()) is None


async def test_a_malformed_batch_is_dropped():
    """A message on the batch channel that is not a batch is logged and ignored, nothing is sent."""
    db = Db({})
    sock = Sock()
    batches = Batches({2: {sock}}, db.acquire, lambda coro, name: asyncio.get_running_loop().create_task(coro))
    for bad in (b"", b"not json", b'{"n": {}, "groups": [["followed", "t", [2]]], "recount": []}', b"[]"):
        batches.on_message(bad)
    await asyncio.sleep(0)
    assert sock.sent == [] and db.queries == []


def test_a_batch_made_from_the_statements_columns_is_the_batch_made_from_its_rows():
    """posts.py hands the columns (store.notifications.Notified): the batch is byte-identical to the one made
    from the published rows, with two kinds, a recount user and one who is both; its rows are those rows."""
    from server.store.notifications import Notified
    rows = _notified(40)
    at = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    users = [r["user_id"] for r in rows]
    columns = Notified([1000 + u for u in users], users, [r["notification"]["kind"] for r in rows], [at] * len(rows),
                       ACTOR, THREAD, 99)
    assert len(columns) == 40 and list(columns) == rows and columns[3] == rows[3]
    for recount in (set(), {5, 77}):
        assert batch(columns, recount) == batch(rows, recount)
