"""Thread pages as guests see them, kept per process and answered while the thread's seq is unchanged.

Everything a thread page shows that can change moves the thread's seq (every write to a thread stores
an event: posts, edits, deletions, votes, locks, moves, accepted answers), so a page read at seq N is
the page at seq N: one indexed read of the seq tells whether a kept page is still exact, instead of the
eight round trips and the encoding of a fresh page. A page is also kept for at most MAX_AGE seconds, so
anything shown that does not move the seq (an author's or a category's name, should they ever become
editable) is at most that stale.

A signed-in reader's page is the kept page with their part laid over it: following, unread and their
votes, read in one statement together with the thread's seq. The page is used only if that seq is the
kept one's; a vote moves the seq, so the votes read are exactly those of the kept page. Reading a
position or following does not move it, and is read fresh every time.

The answer carries an ETag made of the seq, so a client that sends it back gets a 304 for the cost of
that one read.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import asyncpg
import msgspec

from .store import threads

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


class Kept:
    """One kept page: its seq, when it was read, the page as guests get it (bytes) and as data (never
    mutated: a reader's page is made of copies), the ids of its posts (what a reader's votes are read for),
    and other renderings of the same page (server/api/pages.py keeps its HTML here: gone with the page).
    """

    __slots__ = ("seq", "at", "body", "page", "ids", "views")

    def __init__(self, seq: int, page: dict[str, Any], body: bytes) -> None:
        self.seq, self.at, self.body, self.page = seq, time.monotonic(), body, page
        self.views: dict[str, bytes] = {}  # the page made into other forms (the crawler page's HTML), kept with it
        self.ids = [page["question"]["id"]]
        for r in page["responses"]:
            self.ids.append(r["id"])
            self.ids.extend(c["id"] for c in r["comments"])


class PageCache:
    def __init__(self, max_bytes: int = MAX_BYTES, max_pages: int = MAX_PAGES, max_age: float = MAX_AGE) -> None:
        self.pages: OrderedDict[Key, Kept] = OrderedDict()
        self.bytes = 0
        self.max_bytes, self.max_pages, self.max_age = max_bytes, max_pages, max_age

    @staticmethod
    async def current_seq(pool: asyncpg.Pool, thread_id: int) -> int | None:
        """The thread's seq now; None if it is deleted or was never there (the page then says which)."""
        return await threads.live_seq(pool, thread_id)

    def peek(self, key: Key) -> Kept | None:
        """The kept page if it is young enough, whatever its seq (the caller compares it with one it read)."""
        kept = self.pages.get(key)
        if kept is None or time.monotonic() - kept.at > self.max_age:
            return None
        self.pages.move_to_end(key)
        return kept

    def get(self, key: Key, seq: int) -> Kept | None:
        kept = self.peek(key)
        return kept if kept is not None and kept.seq == seq else None

    def put(self, key: Key, page: dict[str, Any]) -> Kept:
        kept = Kept(page["thread"]["seq"], page, msgspec.json.encode(page))
        old = self.pages.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)
        if len(kept.body) > self.max_bytes // 8:  # one huge page must not push out everything else
            return kept
        self.pages[key] = kept
        # The data costs about as much again as the bytes: both are counted by the bytes' size twice.
        self.bytes += 2 * len(kept.body)
        while self.bytes > self.max_bytes or len(self.pages) > self.max_pages:
            _, dropped = self.pages.popitem(last=False)
            self.bytes -= 2 * len(dropped.body)
        return kept


def personalize(page: dict[str, Any], reader: dict[str, Any], votes: dict[int, int]) -> dict[str, Any]:
    """A guest's page made a reader's: their following and unread on the thread, their vote on each post.
    Only what differs is copied; the kept page is shared by every reader and never changed."""
    def post(p: dict[str, Any]) -> dict[str, Any]:
        vote = votes.get(p["id"], 0)
        return p if vote == 0 else {**p, "my_vote": vote}
    responses = []
    for r in page["responses"]:
        mine = post(r)
        if any(c["id"] in votes for c in r["comments"]):
            mine = {**mine, "comments": [post(c) for c in r["comments"]]}
        responses.append(mine)
    return {**page, "thread": {**page["thread"], **reader}, "question": post(page["question"]),
            "responses": responses}
