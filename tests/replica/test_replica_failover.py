"""Failover: the primary dies, the operator promotes the replica, and Parley (DATABASE_URL naming both servers with
target_session_attrs=read-write) writes to the promoted server without a restart."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from faults.fault_support import poll
from replica_support import Pair, parley, remove, samples, temp_dir

from support.api import Api, new_thread, unique
from support.databases import make_moderator

pytestmark = pytest.mark.slow


@pytest.fixture()
def pair() -> Iterator[Pair]:
    p = Pair()
    yield p
    p.destroy()


async def test_after_promotion_parley_writes_to_the_promoted_replica(pair, redis_url):
    """Kill the primary, promote the replica: new writes succeed on it, reads see them, no 500 meanwhile."""
    tmp = temp_dir()
    srv = parley(pair, redis_url, tmp)
    try:
        mod = Api(srv.url).sign_up()
        make_moderator(pair.primary.url, mod.user["username"])  # type: ignore[index]
        slug = unique("cat-")
        assert mod.post("/api/categories", json={"slug": slug, "name": "Failover"}).status_code == 201
        thread_id = new_thread(mod, slug)["thread"]["id"]

        pair.primary.stop("immediate")  # the primary dies
        statuses: set[int] = set()

        def reply(text: str) -> int:
            r = mod.post(f"/api/threads/{thread_id}/posts", json={"body": text})
            statuses.add(r.status_code)
            return r.status_code

        assert reply("while the primary is down") == 503  # no server accepts writes: unavailable, not a 500
        pair.replica.promote()                              # the operator's step (docs/operations.md)
        await poll(lambda: reply("after the promotion") == 201, 60, what="a write on the promoted server")
        assert statuses <= {201, 503}, statuses
        guest = httpx.Client(base_url=srv.url, timeout=30)
        bodies = [p["body"] for p in guest.get(f"/api/threads/{thread_id}").json()["responses"]]
        assert "after the promotion" in bodies
        # The old replica is a primary now: it is no longer used as a replica (its reads go to the pool instead).
        name = f'replica="127.0.0.1:{pair.replica.port}"'
        await poll(lambda: samples(srv.url, "parley_replica_healthy").get(name) == 0, 30, what="replica retired")
        assert guest.get(f"/api/threads/{thread_id}").status_code == 200
    finally:
        srv.stop()
        remove(tmp)
