"""Thread pages as guests see them, kept per process and answered while the thread's seq is unchanged.

Everything a thread page shows that can change moves the thread's seq (every write to a thread stores
an event: posts, edits, deletions, votes, locks, moves, accepted answers), so a page read at seq N is
the page at seq N: one indexed read of the seq tells whether a kept page is still exact, instead of the
eight round trips and the encoding of a fresh page. A page is also kept for at most MAX_AGE seconds, so
anything shown that does not move the seq (an author's or a category's name, should they ever become
editable) is at most that stale. Signed-in readers are never served from here: their page carries their
votes, following and unread.

The answer carries an ETag made of the seq, so a client that sends it back gets a 304 for the cost of
that one read.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import asyncpg

MAX_AGE = 1.0           # seconds a kept page may be answered (see above)
MAX_BYTES = 64 << 20    # all kept pages together; the least recently used go first
MAX_PAGES = 1024

Key = tuple[int, int, str | None, str]  # thread, limit, after, sort


def etag(thread_id: int, seq: int) -> str:
    return f'W/"t{thread_id}s{seq}"'


def headers(thread_id: int, seq: int) -> dict[str, str]:
    """A guest's page may be kept by the browser but must be revalidated (cheap: 304 on the same seq), and
    differs from a signed-in reader's page at the same URL."""
    return {"etag": etag(thread_id, seq), "cache-control": "no-cache", "vary": "Cookie"}


class PageCache:
    def __init__(self, max_bytes: int = MAX_BYTES, max_pages: int = MAX_PAGES, max_age: float = MAX_AGE) -> None:
        self.pages: OrderedDict[Key, tuple[int, float, bytes]] = OrderedDict()  # → (seq, kept at, body)
        self.bytes = 0
        self.max_bytes, self.max_pages, self.max_age = max_bytes, max_pages, max_age

    @staticmethod
    async def current_seq(pool: asyncpg.Pool, thread_id: int) -> int | None:
        """The thread's seq now; None if it is deleted or was never there (the page then says which)."""
        return await pool.fetchval("SELECT seq FROM threads WHERE id = $1 AND NOT deleted", thread_id)  # type: ignore[no-any-return]

    def get(self, key: Key, seq: int) -> bytes | None:
        entry = self.pages.get(key)
        if entry is None or entry[0] != seq or time.monotonic() - entry[1] > self.max_age:
            return None
        self.pages.move_to_end(key)
        return entry[2]

    def put(self, key: Key, seq: int, body: bytes) -> None:
        old = self.pages.pop(key, None)
        if old is not None:
            self.bytes -= len(old[2])
        if len(body) > self.max_bytes // 8:  # one huge page must not push out everything else
            return
        self.pages[key] = (seq, time.monotonic(), body)
        self.bytes += len(body)
        while self.bytes > self.max_bytes or len(self.pages) > self.max_pages:
            _, (_, _, dropped) = self.pages.popitem(last=False)
            self.bytes -= len(dropped)
