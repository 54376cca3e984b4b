"""Read replicas (server/replicas.py) against a real streaming replica: guests read from it, a writer reads their
own writes, and a replica that lags too far or is down is skipped, with metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from faults.fault_support import poll
from replica_support import Pair, parley, remove, samples, sql, temp_dir

from support.api import Api, new_thread, unique
from support.databases import make_moderator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    p = Pair()
    yield p
    p.destroy()


@pytest.fixture(scope="module")
def site(pair: Pair, redis_url: str) -> Iterator[dict[str, Any]]:
    """A Parley process with a patient replica limit (30 s), a moderator and a category."""
    tmp = temp_dir()
    srv = parley(pair, redis_url, tmp, PARLEY_REPLICA_MAX_LAG_SECONDS="30")
    mod = Api(srv.url).sign_up()
    make_moderator(pair.primary.url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Replicas"}).status_code == 201
    yield {"server": srv, "mod": mod, "slug": slug}
    srv.stop()
    remove(tmp)


def titles(client: httpx.Client | Api, slug: str) -> set[str]:
    r = client.get(f"/api/categories/{slug}/threads")
    assert r.status_code == 200, r.text
    return {t["title"] for t in r.json()["threads"]}


async def replaying(pair: Pair, on: bool) -> None:
    await sql(pair.replica.url, "SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()")


async def caught_up(pair: Pair) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    target = await sql(pair.primary.url, "SELECT pg_current_wal_lsn()")
    await poll(lambda: _replayed_past(pair, target), 30, what="replica caught up")


async def _replayed_past(pair: Pair, target: Any) -> bool:
    return bool(await sql(pair.replica.url, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target))


def _read_on_replica(srv: Any, api: Api, slug: str) -> bool:
    """Whether the signed-in `api`'s read of the category went to the replica (was not held back by its own
    write: the skipped-behind-writer count did not move). Only this module's tests use this server."""
    before = samples(srv.url, "parley_replica_skipped_total").get('reason="behind_writer"', 0)
    titles(api, slug)
    return samples(srv.url, "parley_replica_skipped_total").get('reason="behind_writer"', 0) == before


async def test_guests_read_the_replica_and_a_writer_reads_their_own_write(pair, site):
    """With replay paused, a new thread is missing from a guest's list (the replica's) but in its author's."""
    srv, mod, slug = site["server"], site["mod"], site["slug"]
    writer = Api(srv.url).sign_up()
    guest = httpx.Client(base_url=srv.url, timeout=30)
    await caught_up(pair)
    await poll(lambda: samples(srv.url, "parley_replica_healthy").get(f'replica="127.0.0.1:{pair.replica.port}"') == 1,
               30, what="replica in use")
    # The moderator made the category just before (the fixture): until the server's next poll of the replica
    # (every 0.5 s) sees it replayed, the moderator still reads the primary, rightly. Wait for that poll.
    await poll(lambda: _read_on_replica(srv, mod, slug), 30, what="the server sees the moderator's write replayed")
    await replaying(pair, False)
    try:
        title = unique("while paused ")
        new_thread(writer, slug, title=title)
        assert "parley_wlsn" in writer.http.cookies  # the commit's WAL position, for the writer's next reads
        before = samples(srv.url, "parley_replica_skipped_total").get('reason="behind_writer"', 0)
        assert title not in titles(guest, slug)     # the replica has not replayed it: guests read the replica
        assert title in titles(writer, slug)        # the writer reads the primary until it has
        assert samples(srv.url, "parley_replica_skipped_total")['reason="behind_writer"'] == before + 1
        assert title not in titles(mod, slug)       # someone else signed in: the replica too
    finally:
        await replaying(pair, True)
    await poll(lambda: title in titles(guest, slug), 30, what="guests see the thread once replayed")
    reads = samples(srv.url, "parley_replica_reads_total")
    assert reads['target="replica"'] >= 2 and reads['target="primary"'] >= 1


async def test_a_replica_lagging_past_the_limit_is_skipped(pair, site, redis_url):
    """PARLEY_REPLICA_MAX_LAG_SECONDS=1 and replay paused: once it lags over 1 s guests read the primary."""
    tmp = temp_dir()
    srv = parley(pair, redis_url, tmp, PARLEY_REPLICA_MAX_LAG_SECONDS="1")
    try:
        guest = httpx.Client(base_url=srv.url, timeout=30)
        name = f'replica="127.0.0.1:{pair.replica.port}"'
        await caught_up(pair)
        await poll(lambda: samples(srv.url, "parley_replica_healthy").get(name) == 1, 30, what="replica in use")
        await replaying(pair, False)
        try:
            title = unique("lagging ")
            new_thread(site["mod"], site["slug"], title=title)
            await poll(lambda: samples(srv.url, "parley_replica_healthy")[name] == 0, 30, what="replica skipped")
            assert samples(srv.url, "parley_replica_lag_seconds")[name] > 1
            assert title in titles(guest, site["slug"])  # from the primary
            assert samples(srv.url, "parley_replica_skipped_total")['reason="lag"'] >= 1
        finally:
            await replaying(pair, True)
        await poll(lambda: samples(srv.url, "parley_replica_healthy")[name] == 1, 30, what="replica back in use")
    finally:
        srv.stop()
        remove(tmp)


async def test_a_replica_that_is_down_is_skipped_and_used_again_when_back(pair, site):
    """The replica stopped: guests' reads are answered (by the primary), counted as skipped; started: used again."""
    srv, slug = site["server"], site["slug"]
    guest = httpx.Client(base_url=srv.url, timeout=30)
    name = f'replica="127.0.0.1:{pair.replica.port}"'
    pair.replica.stop()
    try:
        title = unique("replica down ")
        new_thread(site["mod"], slug, title=title)
        for _ in range(3):  # right away (a read may fail on the replica and be served again) and after the poll
            assert title in titles(guest, slug)
            r = guest.get("/sitemap.xml")
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.5)
        assert samples(srv.url, "parley_replica_healthy")[name] == 0
        assert samples(srv.url, "parley_replica_skipped_total")['reason="down"'] >= 1
    finally:
        pair.replica.start()
    await poll(lambda: samples(srv.url, "parley_replica_healthy")[name] == 1, 60, what="replica back in use")
    before = samples(srv.url, "parley_replica_reads_total")['target="replica"']
    assert title in titles(guest, slug)
    assert samples(srv.url, "parley_replica_reads_total")['target="replica"'] == before + 1


async def test_every_replica_route_answers_from_the_replica(pair, site):
    """Each route marked replica_read answers a guest from the hot standby (read-only: nothing in it writes)."""
    srv, mod, slug = site["server"], site["mod"], site["slug"]
    thread = new_thread(mod, slug, title="Standby reads work", body="a question about standby reads")["thread"]
    post_id = mod.get(f"/api/threads/{thread['id']}").json()["question"]["id"]
    name = mod.user["username"]  # type: ignore[index]
    await caught_up(pair)
    await poll(lambda: samples(srv.url, "parley_replica_healthy").get(f'replica="127.0.0.1:{pair.replica.port}"') == 1,
               30, what="replica in use")
    paths = [f"/api/threads/{thread['id']}", f"/t/{thread['id']}", "/api/threads", f"/api/categories/{slug}/threads",
             "/api/categories", "/api/tags", "/api/threads/similar?title=standby+reads", "/api/search?q=standby",
             f"/api/users/{name}", f"/api/users/{name}/posts", f"/api/posts/{post_id}",
             f"/api/posts/{post_id}/revisions", f"/u/{name}", f"/c/{slug}", "/feeds/latest.atom",
             f"/feeds/c/{slug}.atom", f"/feeds/t/{thread['id']}.atom", f"/feeds/u/{name}.atom", "/sitemap.xml"]
    guest = httpx.Client(base_url=srv.url, timeout=30)
    before = samples(srv.url, "parley_replica_reads_total")
    for path in paths:
        r = guest.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    after = samples(srv.url, "parley_replica_reads_total")
    assert after['target="replica"'] - before.get('target="replica"', 0) == len(paths)
    assert after.get('target="primary"', 0) == before.get('target="primary"', 0)
