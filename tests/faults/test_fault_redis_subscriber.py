"""The single-Redis broker's subscriber under faults staged for real: a paused redis-server (a half-open
connection: no RST), ACL credentials right and wrong, TLS. (A Redis restart: tests/live/test_live_faults.py.)
Each test runs its own redis-server; PARLEY_REDIS_PING_SECONDS is short so a silent Redis is noticed fast."""

from __future__ import annotations

import asyncio

import httpx

from fault_support import OptionRedis, metric, poll, self_signed_cert, setup_forum, status_of, until_ready

PING = "0.5"


async def reply_crosses_processes(spawn, pg_url, watchers, redis_url: str, body: str) -> None:
    """Two processes on this Redis: a reply posted through one reaches a watcher of the other."""
    a = spawn(REDIS_URL=redis_url, wait="/readyz")
    b = spawn(REDIS_URL=redis_url, wait="/readyz")
    mod, _, tid = setup_forum(a.url, pg_url)
    w = await watchers(b.ws_url)
    await w.subscribe(tid)
    r = await asyncio.to_thread(mod.post, f"/api/threads/{tid}/posts", json={"body": body})
    assert r.status_code == 201
    assert (await w.wait_seq(tid, 2, timeout=3))[-1]["data"]["body"] == body


async def test_paused_redis_is_noticed_by_the_idle_ping_and_the_reply_posted_meanwhile_arrives(
        spawn, pg_url, watchers):
    """redis-server SIGSTOPped (the kernel keeps the connection open, no RST): the watcher's process sees no
    PONG, drops the connection (/readyz 503) and, after SIGCONT, reconnects and backfills the reply that was
    posted on the other process meanwhile; it arrives once."""
    redis = OptionRedis().start()
    try:
        a = spawn(REDIS_URL=redis.url(), PARLEY_REDIS_PING_SECONDS=PING, wait="/readyz")
        b = spawn(REDIS_URL=redis.url(), PARLEY_REDIS_PING_SECONDS=PING, wait="/readyz")
        mod, _, tid = setup_forum(b.url, pg_url)
        w = await watchers(a.ws_url)
        await w.subscribe(tid)
        before = metric(a.url, "parley_broker_reconnects_total")

        redis.pause()
        try:
            await poll(lambda: _readyz_is(a.url, 503), 10, what="A's /readyz 503 while Redis is paused")
            async with httpx.AsyncClient(base_url=b.url, cookies=mod.http.cookies, timeout=30) as poster:
                r = await poster.post(f"/api/threads/{tid}/posts", json={"body": "while Redis was paused"})
            assert r.status_code == 201, r.text  # the publish failed (timed out); the reply is stored
        finally:
            redis.resume()
        await until_ready(a.url, 20)
        frames = await w.wait_seq(tid, 2, timeout=20)
        assert frames[-1]["data"]["body"] == "while Redis was paused"
        assert w.seqs(tid) == [2]
        assert metric(a.url, "parley_broker_reconnects_total") > before
    finally:
        redis.stop()


async def _readyz_is(url: str, want: int) -> bool:
    return await status_of(url + "/readyz") == want


async def test_acl_user_from_the_url_delivers_live_and_wrong_password_is_one_clear_logged_line(
        spawn, pg_url, watchers):
    """Redis with only an ACL user: credentials in REDIS_URL let a reply reach a watcher on another process;
    a wrong password keeps /readyz 503 naming the broker and logs the AUTH failure once, not per retry."""
    redis = OptionRedis("--user", "default", "off", "--user", "parley", "on", ">s3cret", "~*", "&*", "+@all",
                        userinfo="parley:s3cret", username="parley", password="s3cret").start()
    try:
        await reply_crosses_processes(spawn, pg_url, watchers, redis.url(), "with credentials")

        bad = spawn(REDIS_URL=redis.url("parley:wrong"), wait="/healthz")
        await asyncio.sleep(2)  # several retries (backoff from 0.1 s)
        r = httpx.get(bad.url + "/readyz", timeout=5)
        assert r.status_code == 503 and any("broker" in p for p in r.json()["problems"]), r.text
        lines = [x for x in bad.output().splitlines() if "Redis AUTH failed" in x]
        assert len(lines) == 1, lines
        assert "WRONGPASS" in lines[0] and "retrying" in lines[0]
    finally:
        redis.stop()


async def test_tls_redis_with_a_self_signed_ca_delivers_a_reply_live(spawn, pg_url, watchers, tmp_path):
    """redis-server on a TLS port only, its certificate self-signed: rediss://…?ssl_ca_certs=<the cert>
    connects both processes (publisher and subscriber) and a reply reaches the other process's watcher;
    without the CA the certificate is refused and /readyz stays 503."""
    cert, key = self_signed_cert(tmp_path)
    redis = OptionRedis("--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                        "--tls-auth-clients", "no", scheme="rediss", query=f"?ssl_ca_certs={cert}",
                        ssl_ca_certs=str(cert)).start()
    try:
        await reply_crosses_processes(spawn, pg_url, watchers, redis.url(), "over TLS")

        untrusted = spawn(REDIS_URL=f"rediss://127.0.0.1:{redis.port}/0", wait="/healthz")
        await asyncio.sleep(1)
        assert httpx.get(untrusted.url + "/readyz", timeout=5).status_code == 503
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.output()
    finally:
        redis.stop()
