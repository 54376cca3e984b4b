"""The write path's floor: the least a server on Parley's stack must do to take a reply (issue 33).

    python -m bench.write_floor --port 8766 --database postgresql://… --redis redis://… --author 1

A bench-only server (server/ never imports it), run by `python -m bench.writes --target floor|both` beside
`parley serve` under the same load generator. For `POST /api/threads/{id}/posts` with `{"body": "…"}` it
does what Parley must at minimum and nothing else:

* parse the JSON body (msgspec, as Parley);
* render the Markdown with markdown-it-py and sanitize it with nh3, with server/render.py's own renderer and
  allow-list (not its size and blank checks);
* one asyncpg transaction (BEGIN, two INSERTs, COMMIT) writing the post row and its `post.created` event row
  into Parley's own tables (a database Parley migrated and the bench filled): the event's seq comes from a
  counter in this process, read once per thread from `threads.seq` (one process owns the thread here, so it
  needs no row lock to order writers);
* one Redis PUBLISH of the event frame (redis-py's asyncio client, hiredis);
* answer 201 with the post as JSON.

With `--ordered` the floor keeps Parley's ordering rule instead (ARCHITECTURE rule 1: per-thread seqs without
gaps, in commit order): the seq is taken inside the transaction by `UPDATE threads SET seq = seq + 1 … RETURNING
seq`, whose row lock orders the thread's writers until COMMIT, as Parley's reply does (store/events.take_seq).
That is the floor of a server that must give every watcher the thread's events in one gap-free order.

With `--statement` the floor runs Parley's own reply statement (server/store/posts.py `_CREATE_RESPONSE`, one
autocommitted statement, as Parley's pool runs it) in place of its two INSERTs, by the `--author` users in turn
(Parley's posters are several users, and who has replied decides who follows and is notified): the same rows as a
Parley reply (post, revision, event, follow, read mark, notifications, webhook queue, draft) and the same
PostgreSQL work, with none of Parley's Python around it. It publishes the event frame only. Parley ÷ this floor is
what Parley's server does around its statement; this floor ÷ the plain one is what the rows Parley writes cost.

No session (every reply is by `--author`), no rate limit, no revisions, follows, read marks, notifications,
webhooks, idempotency keys, drafts, mentions, trust checks, metrics or middleware: those are what Parley does
beyond the floor. uvicorn runs with `parley serve`'s settings (httptools, its default loop, no access log,
no server header, keep-alive 30 s, backlog 4096), and start-up ends with Parley's garbage-collection policy
(server/gcpolicy.py: collect, freeze, gen-0 threshold 10,000), so the floor has no full-collection stall
that Parley has not either.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.render import parser, sanitize
from server.store import posts

_md = parser()  # server/render.py builds it on first use; the floor builds it at import

_INSERT_POST = """INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, seq)
                  VALUES ($1, NULL, 'response', $2, $3, $4, $5) RETURNING id, created_at"""
_TAKE_SEQ = "UPDATE threads SET seq = seq + 1 WHERE id = $1 RETURNING seq"
_INSERT_EVENT = "INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, $2, 'post.created', $3::jsonb)"


class Floor:
    def __init__(self, database: str, redis_url: str, authors: list[int], pool_size: int, reset: bool = True,
                 ordered: bool = False, statement: bool = False) -> None:
        self.database, self.redis_url, self.authors, self.pool_size = database, redis_url, authors, pool_size
        self.author = authors[0]
        self.reset, self.ordered, self.statement = reset, ordered, statement
        self.turn = 0
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.seq: dict[int, int] = {}

    async def next_seq(self, thread_id: int) -> int:
        if thread_id not in self.seq:
            assert self.pool is not None
            current = await self.pool.fetchval("SELECT seq FROM threads WHERE id = $1", thread_id)
            if current is None:
                raise LookupError(thread_id)
            self.seq.setdefault(thread_id, current)
        self.seq[thread_id] += 1
        return self.seq[thread_id]

    async def create_post(self, request: Request) -> Response:
        thread_id = int(request.path_params["id"])
        try:
            body = msgspec.json.decode(await request.body())
            text = body["body"]
            if not isinstance(text, str):
                raise TypeError
        except (msgspec.DecodeError, KeyError, TypeError):
            return Response(b'{"error":{"code":"invalid"}}', 422, media_type="application/json")
        html = sanitize(_md.render(text))
        if self.statement:
            return await self.parley_statement(thread_id, text, html)
        try:
            seq = 0 if self.ordered else await self.next_seq(thread_id)
        except LookupError:
            return Response(b'{"error":{"code":"not_found"}}', 404, media_type="application/json")
        assert self.pool is not None and self.redis is not None
        async with self.pool.acquire() as conn, conn.transaction():
            if self.ordered:  # the thread's row lock, held to COMMIT: writers of one thread commit in seq order
                seq = await conn.fetchval(_TAKE_SEQ, thread_id)
                if seq is None:
                    return Response(b'{"error":{"code":"not_found"}}', 404, media_type="application/json")
            row = await conn.fetchrow(_INSERT_POST, thread_id, self.author, text, html, seq)
            post = {"id": row["id"], "thread_id": thread_id, "parent_id": None, "kind": "response",
                    "author_id": self.author, "body": text, "html": html,
                    "created_at": row["created_at"].isoformat(), "seq": seq}
            data = msgspec.json.encode(post)
            await conn.execute(_INSERT_EVENT, thread_id, seq, data.decode())
        frame = b'{"type":"event","thread":%d,"seq":%d,"name":"post.created","data":%s}' % (thread_id, seq, data)
        await self.redis.publish(f"parley:floor:thread:{thread_id}", frame)
        return Response(b'{"post":%s}' % data, 201, media_type="application/json")

    async def parley_statement(self, thread_id: int, text: str, html: str) -> Response:
        """Parley's one reply statement, autocommitted, by the next author in turn; the event frame published."""
        assert self.pool is not None and self.redis is not None
        author = self.authors[self.turn % len(self.authors)]
        self.turn += 1
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(posts._CREATE_RESPONSE, thread_id, None, "response", author, text, html, [],
                                      f"thread:{thread_id}")
        if row is None:
            return Response(b'{"error":{"code":"not_found"}}', 404, media_type="application/json")
        data = row["data"].encode()
        seq = row["seq"]
        frame = b'{"type":"event","thread":%d,"seq":%d,"name":"post.created","data":%s}' % (thread_id, seq, data)
        await self.redis.publish(f"parley:floor:thread:{thread_id}", frame)
        return Response(b'{"post":%s}' % data, 201, media_type="application/json")

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # asyncpg's pool resets a connection on release (one more round trip: SELECT pg_advisory_unlock_all()…);
        # Parley skips it (server/db.py), and so does the floor with --no-reset.
        extra: dict[str, object] = {} if self.reset else {"reset": _no_reset}
        self.pool = await asyncpg.create_pool(self.database, min_size=1, max_size=self.pool_size, **extra)
        self.redis = aioredis.Redis.from_url(self.redis_url)
        await self.redis.ping()
        _md.render("warm *the* renderer")  # markdown-it builds its rules on first use, as Parley's start-up does
        gc.collect()  # Parley's policy (server/gcpolicy.py), so neither server has the full-collection stall
        gc.freeze()
        gc.set_threshold(10_000, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            await self.redis.aclose()
            await self.pool.close()


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Keep nothing to reset: no round trip on release."""


async def healthz(request: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


def app(floor: Floor) -> Starlette:
    return Starlette(routes=[Route("/api/threads/{id:int}/posts", floor.create_post, methods=["POST"]),
                             Route("/healthz", healthz)], lifespan=floor.lifespan)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.write_floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8766)
    p.add_argument("--database", required=True, help="a database Parley migrated (the bench's)")
    p.add_argument("--redis", required=True)
    p.add_argument("--author", type=int, required=True, action="append",
                   help="the users.id every reply is by (repeat: with --statement, each in turn)")
    p.add_argument("--pool", type=int, default=20, help="asyncpg pool size (Parley's default: 20)")
    p.add_argument("--no-reset", action="store_true",
                   help="no reset round trip when a connection goes back to the pool (as Parley)")
    p.add_argument("--ordered", action="store_true",
                   help="take each seq from the thread's row inside the transaction (Parley's ordering rule)")
    p.add_argument("--statement", action="store_true",
                   help="run Parley's own reply statement instead of the two INSERTs (the same rows as a reply)")
    a = p.parse_args(argv)
    floor = Floor(a.database, a.redis, a.author, a.pool, reset=not a.no_reset, ordered=a.ordered,
                  statement=a.statement)
    # parley serve's uvicorn settings (server/cli.py cmd_serve), less what only websockets use.
    uvicorn.run(app(floor), host=a.host, port=a.port, access_log=False, proxy_headers=False, server_header=False,
                timeout_keep_alive=30, backlog=4096, http="httptools", log_level="warning")


if __name__ == "__main__":
    main()
