"""Webhooks delivered by any process: two `parley serve` processes on one database share the outbox (SKIP LOCKED
leases), and a receiver on loopback still gets each thread's events once each, in seq order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from support.api import Api, new_thread, unique
from support.databases import make_moderator
from support.webhooks import Receiver


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def test_two_processes_deliver_every_event_once_in_order(spawn: Any, pg_url: str, receiver: Receiver) -> None:
    """Writers on two processes, both delivering: each of two threads' post.created deliveries arrive exactly once,
    seq 2, 3, 4… in order, every one verified with the webhook's secret."""
    a = spawn(PARLEY_WEBHOOK_ALLOW_PRIVATE="on", PARLEY_WEBHOOK_WORKERS="2")
    b = spawn(PARLEY_WEBHOOK_ALLOW_PRIVATE="on", PARLEY_WEBHOOK_WORKERS="2")
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("hooks-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Hooks"}).status_code == 201
    r = mod.post("/api/webhooks", json={"url": f"{receiver.url}/two", "events": ["post.created"]})
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    tids = [new_thread(mod, slug, title=f"Two processes {i}")["thread"]["id"] for i in range(2)]
    writers = [Api(srv.url).sign_up() for srv in (a, b, a, b)]

    def write(api: Api) -> None:
        for i in range(8):
            for tid in tids:
                assert api.post(f"/api/threads/{tid}/posts", json={"body": f"reply {i}"}).status_code == 201
    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = receiver.wait_for("/two", 64, timeout=90)
    verifier = Webhook(secret)
    bodies = [verifier.verify(r.body, r.headers) for r in got]
    for tid in tids:
        assert [p["seq"] for p in bodies if p["thread"] == tid] == list(range(2, 34))
    assert len({r.headers["webhook-id"] for r in got}) == len(got) == 64
