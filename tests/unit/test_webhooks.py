"""Webhooks (CONTRACT "Webhooks"): made by moderators, delivered from the PostgreSQL outbox to a real receiver on
loopback, signed as Standard Webhooks says (checked with the `standardwebhooks` verifier), every event of a
thread in seq order, retried after a 500 with the same webhook-id, redirects not followed; URLs on private
addresses refused when made and at connect time (DNS rebinding)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from standardwebhooks import Webhook

from api_support import check_error
from server.outbox import targets, webhooks, webhttp
from server.outbox.webhooks import Deliverer, sign
from support.api import Api, new_thread
from support.inprocess import InProcessApp, settings_for
from support.webhooks import Behaviour, Receiver, payloads

ALL = ["thread.created", "post.created", "post.edited", "post.deleted", "vote.changed", "thread.updated"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture()
def hooks(forum: dict[str, Any]) -> Iterator[Any]:
    """make(url, events) → (webhook, secret) by the forum's moderator; every webhook made is deleted at the end."""
    made: list[int] = []

    def make(url: str, events: list[str] = ALL) -> tuple[dict[str, Any], str]:
        r = forum["mod"].post("/api/webhooks", json={"url": url, "events": events})
        assert r.status_code == 201, r.text
        made.append(r.json()["webhook"]["id"])
        return r.json()["webhook"], r.json()["secret"]
    yield make
    for hook_id in made:
        forum["mod"].delete(f"/api/webhooks/{hook_id}")


def test_sign_matches_the_reference_implementation() -> None:
    """sign() gives the signature standardwebhooks computes for the same secret, id, timestamp and body."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    ours = sign(secret, "msg_1", 1700000000, b'{"a":1}')
    from datetime import UTC, datetime
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(1700000000, UTC), '{"a":1}')
    assert ours == theirs and ours.startswith("v1,")


def test_make_list_and_delete_a_webhook(forum: dict[str, Any], receiver: Receiver) -> None:
    """201 with the webhook and a whsec_ secret shown once; the list never shows a secret; members get 403;
    DELETE → 204 and then 404."""
    mod: Api = forum["mod"]
    r = mod.post("/api/webhooks", json={"url": f"{receiver.url}/made", "events": ["post.created"]})
    assert r.status_code == 201, r.text
    hook, secret = r.json()["webhook"], r.json()["secret"]
    assert set(hook) == {"id", "url", "events", "created_at"} and hook["events"] == ["post.created"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    listed = mod.get("/api/webhooks").json()["webhooks"]
    assert hook in listed and secret not in str(listed)
    member = Api(forum["url"]).sign_up()
    check_error(member.get("/api/webhooks"), 403)
    check_error(member.post("/api/webhooks", json={"url": f"{receiver.url}/x", "events": ["post.created"]}), 403)
    check_error(member.delete(f"/api/webhooks/{hook['id']}"), 403)
    assert mod.delete(f"/api/webhooks/{hook['id']}").status_code == 204
    check_error(mod.delete(f"/api/webhooks/{hook['id']}"), 404)
    check_error(mod.get(f"/api/webhooks/{hook['id']}/deliveries"), 404)


@pytest.mark.parametrize("body,field", [
    ({"url": "ftp://example.org/h", "events": ["post.created"]}, "url"),
    ({"url": "http://user:pw@example.org/h", "events": ["post.created"]}, "url"),
    ({"url": "https://example.org/h", "events": ["post.exploded"]}, "events"),
    ({"url": "https://example.org/h", "events": []}, "events"),
    ({"url": "https://example.org/h", "events": ["post.created", "post.created"]}, "events"),
    ({"url": "https://no-such-host.invalid/h", "events": ["post.created"]}, "url"),
])
def test_bad_webhooks_are_422(forum: dict[str, Any], body: dict[str, Any], field: str) -> None:
    """A URL that is not http(s), carries credentials or does not resolve, and unknown, repeated or no events → 422
    naming the field."""
    check_error(forum["mod"].post("/api/webhooks", json=body), 422, field=field)


@pytest.fixture(scope="module")
def strict(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """An app with PARLEY_WEBHOOK_ALLOW_PRIVATE off (the default) that delivers nothing itself."""
    settings = settings_for(pg_url, tmp_path_factory.mktemp("strict"), webhook_workers=0)
    running = InProcessApp(settings).start()
    yield running
    running.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/h", "http://localhost/h", "http://10.1.2.3/h",
                                 "http://192.168.0.1/h", "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]/h", "http://[fe80::1]/h", "http://[::ffff:127.0.0.1]/h",
                                 "http://0.0.0.0/h", "http://100.64.0.1/h"])
def test_private_targets_are_refused(strict: InProcessApp, forum: dict[str, Any], url: str) -> None:
    """With PARLEY_WEBHOOK_ALLOW_PRIVATE off a URL resolving to loopback, private or link-local is 422 field url."""
    r = strict.client().post("/api/webhooks", json={"url": url, "events": ["post.created"]},
                             headers={"Cookie": f"parley_session={forum['mod'].session_cookie}"})
    check_error(r, 422, "invalid", "url")


async def test_rebinding_is_refused_at_connect_time(receiver: Receiver) -> None:
    """A name that resolved to a public address when checked and to 127.0.0.1 when connecting is refused: the
    connection never reaches the receiver."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)
    await targets.check("http://rebind.test/h", allow_private=False, lookup=rebinding)  # first lookup: public
    before = len(receiver.at("/rebind"))
    connector = aiohttp.TCPConnector(resolver=webhttp.GuardedResolver(False, rebinding), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.post(f"http://rebind.test:{receiver.port}/rebind", data=b"{}")
    assert len(receiver.at("/rebind")) == before


async def test_guarded_resolver_connects_to_what_it_checked(receiver: Receiver) -> None:
    """With private addresses allowed the guarded resolver connects to the address it looked up (the receiver)."""
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]
    connector = aiohttp.TCPConnector(resolver=webhttp.GuardedResolver(True, loopback), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(f"http://hooks.test:{receiver.port}/resolved", data=b"{}") as r:
            assert r.status == 204
    assert len(receiver.at("/resolved")) == 1


def test_every_event_is_delivered_signed_and_in_order(forum: dict[str, Any], receiver: Receiver, hooks: Any) -> None:
    """thread.created, post.created, post.edited, vote.changed, thread.updated (accepted), post.deleted and
    thread.updated (the accepted answer withdrawn) of a thread arrive in seq order, each verified by
    standardwebhooks with the secret, as {type, thread, seq, data}."""
    hook, secret = hooks(f"{receiver.url}/all")
    alice, bob = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    t = new_thread(alice, forum["category"], title="Hooked thread", body="the question")
    tid = t["thread"]["id"]
    reply = bob.post(f"/api/threads/{tid}/posts", json={"body": "an answer"}).json()["post"]
    assert bob.patch(f"/api/posts/{reply['id']}", json={"body": "a better answer"}).status_code == 200
    assert alice.put(f"/api/posts/{reply['id']}/vote", json={"value": 1}).status_code == 200
    assert alice.put(f"/api/threads/{tid}/accepted", json={"post_id": reply["id"]}).status_code == 200
    assert bob.delete(f"/api/posts/{reply['id']}").status_code == 204
    got = receiver.wait_for("/all", 7)
    verifier = Webhook(secret)
    bodies = [verifier.verify(r.body, r.headers) for r in got]
    mine = [b for b in bodies if b["thread"] == tid]
    assert [b["seq"] for b in mine] == [1, 2, 3, 4, 5, 6, 7]
    assert [b["type"] for b in mine] == ["thread.created", "post.created", "post.edited", "vote.changed",
                                         "thread.updated", "post.deleted", "thread.updated"]
    assert set(mine[0]) == {"type", "thread", "seq", "data"}
    assert mine[0]["data"]["thread"]["title"] == "Hooked thread"
    assert mine[0]["data"]["question"]["body"] == "the question"
    assert mine[1]["data"]["id"] == reply["id"] and mine[5]["data"] == {"id": reply["id"]}
    assert all(r.headers["content-type"] == "application/json" for r in got)
    assert len({r.headers["webhook-id"] for r in got}) == len(got)  # one id per delivery
    log = forum["mod"].get(f"/api/webhooks/{hook['id']}/deliveries").json()
    assert [d["status"] for d in log["deliveries"]] == ["delivered"] * 7
    assert {d["id"] for d in log["deliveries"]} == {r.headers["webhook-id"] for r in got}


def test_only_the_events_asked_for_are_delivered(forum: dict[str, Any], receiver: Receiver, hooks: Any) -> None:
    """A webhook of post.created alone gets the responses, not the thread's creation or a vote."""
    hooks(f"{receiver.url}/some", ["post.created"])
    alice, bob = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    reply = bob.post(f"/api/threads/{tid}/posts", json={"body": "one"}).json()["post"]
    alice.put(f"/api/posts/{reply['id']}/vote", json={"value": 1})
    bob.post(f"/api/threads/{tid}/posts", json={"body": "two"})
    got = payloads(receiver.wait_for("/some", 2))
    assert [(p["type"], p["seq"]) for p in got if p["thread"] == tid] == [("post.created", 2), ("post.created", 4)]


def test_a_500_is_retried_with_the_same_id_and_holds_back_the_rest(forum: dict[str, Any], receiver: Receiver,
                                                                   hooks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver answers 500 once: the same delivery comes again (same webhook-id, fresh signature), and the
    thread's later events arrive only after it, still in seq order; the log shows the try and the 500."""
    # The retry, not its delay, is what this checks: the first back-off (~5 s) and the poll (2 s) shortened for
    # the in-process app's deliverer, which reads both when it uses them (server/outbox/webhooks.py).
    monkeypatch.setattr(webhooks, "BACKOFF", 0.2)
    monkeypatch.setattr(webhooks, "POLL", 0.2)
    receiver.behaviours["/flaky"] = Behaviour(fail_first=1, status=500)
    hook, secret = hooks(f"{receiver.url}/flaky", ["thread.created", "post.created"])
    alice = Api(forum["url"]).sign_up()
    tid = new_thread(alice, forum["category"], title="Flaky")["thread"]["id"]
    for i in range(3):
        assert alice.post(f"/api/threads/{tid}/posts", json={"body": f"answer {i}"}).status_code == 201
    got = receiver.wait_for("/flaky", 5, timeout=60)
    verifier = Webhook(secret)
    seqs = [verifier.verify(r.body, r.headers)["seq"] for r in got]
    assert seqs == [1, 1, 2, 3, 4]
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    log = forum["mod"].get(f"/api/webhooks/{hook['id']}/deliveries").json()["deliveries"]
    first = next(d for d in log if d["seq"] == 1)
    assert first["status"] == "delivered" and first["tries"] == 2


def test_a_redirect_is_not_followed(forum: dict[str, Any], receiver: Receiver, hooks: Any) -> None:
    """A 302 to another URL is a failed try (last_status 302), and the redirect's target hears nothing."""
    receiver.behaviours["/moved"] = Behaviour(redirect_to=f"{receiver.url}/elsewhere")
    hook, _ = hooks(f"{receiver.url}/moved", ["thread.created"])
    alice = Api(forum["url"]).sign_up()
    new_thread(alice, forum["category"])
    receiver.wait_for("/moved", 1)
    log: list[dict[str, Any]] = []
    for _ in range(100):
        log = forum["mod"].get(f"/api/webhooks/{hook['id']}/deliveries").json()["deliveries"]
        if log and log[0]["last_status"] is not None:
            break
        threading.Event().wait(0.05)
    assert log[0]["status"] == "pending" and log[0]["last_status"] == 302 and log[0]["next_try_at"] is not None
    assert receiver.at("/elsewhere") == []


def test_order_per_thread_under_concurrent_writers(forum: dict[str, Any], receiver: Receiver, hooks: Any) -> None:
    """Four writers posting to two threads at once: each thread's deliveries arrive with seq 2, 3, 4… in order."""
    hooks(f"{receiver.url}/busy", ["post.created"])
    people = [Api(forum["url"]).sign_up() for _ in range(4)]
    tids = [new_thread(people[0], forum["category"], title=f"Busy {i}")["thread"]["id"] for i in range(2)]

    def write(api: Api) -> None:
        for i in range(10):
            for tid in tids:
                assert api.post(f"/api/threads/{tid}/posts", json={"body": f"reply {i}"}).status_code == 201
    workers = [threading.Thread(target=write, args=(p,)) for p in people]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    got = payloads(receiver.wait_for("/busy", 80, timeout=60))
    for tid in tids:
        assert [p["seq"] for p in got if p["thread"] == tid] == list(range(2, 42))


async def _send_once(allow_private: bool, url: str, timeout: float = 10.0) -> tuple[int | None, str | None]:
    """One send by a deliverer of its own (no tasks, no database: the row is given)."""
    settings = settings_for("postgresql://unused", Path("."), webhook_allow_private=allow_private, webhook_workers=0)
    deliverer = Deliverer(None, settings)  # type: ignore[arg-type]
    deliverer.timeout = timeout
    deliverer.open()
    row = {"id": 1, "name": "post.deleted", "thread_id": 1, "seq": 2, "data": '{"id": 3}', "url": url,
           "secret": "whsec_" + base64.b64encode(b"s" * 32).decode()}
    try:
        return await deliverer._send(row)  # type: ignore[arg-type]
    finally:
        await deliverer.stop()


async def test_a_receiver_that_hangs_is_a_failed_try(receiver: Receiver) -> None:
    """A receiver that never answers is given up after the deliverer's timeout: no status, 'no answer within'."""
    receiver.behaviours["/hang"] = Behaviour(hang=True)
    status, error = await _send_once(True, f"{receiver.url}/hang", timeout=0.5)
    assert status is None and error == "no answer within 0.5 s"
    assert len(receiver.at("/hang")) == 1


async def test_a_literal_private_address_is_refused_at_send_time(receiver: Receiver) -> None:
    """With private addresses not allowed, a URL spelling 127.0.0.1 is refused before any connection (a webhook
    made while the setting was on, say)."""
    status, error = await _send_once(False, f"{receiver.url}/literal")
    assert status is None and error is not None and "refused" in error
    assert receiver.at("/literal") == []
