"""The webhook deliverer: every `parley serve` process runs one (docs/operations.md "Webhooks").

It claims due deliveries (store/webhooks.claim: the first pending delivery of each (webhook, thread), FOR UPDATE
SKIP LOCKED plus a lease), and sends each group's deliveries one after another: after a 2xx the delivery is
marked delivered and the next of its group claimed in the same round trip (store/webhooks.delivered_and_next),
so a thread's events go out in seq order and a busy thread does not wait for a poll between two of them. Groups
are sent concurrently. Any other answer, a refused or failed connection, or no answer within TIMEOUT → due again
after a back-off (BACKOFF seconds doubling to MAX_BACKOFF, with jitter: the first retry within 10 s) until
RETRY_FOR (24 h) after the event, then failed; meanwhile the thread's later events wait behind it.

Each send is signed as the Standard Webhooks specification says (sign()): the same webhook-id on every try of
a delivery, a fresh timestamp and signature. Connections go through webhttp.GuardedResolver (every address
checked at connect time: DNS rebinding), redirects are not followed, no environment proxy is used.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg

from .. import metrics
from ..config import Settings
from ..store import webhooks as store
from ..wire import encode
from . import targets
from .loops import claim_loop, gauge_loop, stop_all

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

LEASE = 60.0           # seconds a claim holds its deliveries
SEND_WINDOW = 30.0     # no send starts later than this after the claim (each ends within TIMEOUT: 30 + 10 < 60)
TIMEOUT = 10.0         # a receiver's whole answer, connect included
BATCH = 32             # heads per claim: as many groups are sent concurrently
CHAIN = 200            # deliveries of one group sent in a row before it goes back to the queue (fairness)
POLL = 2.0             # seconds between looks at the outbox when nobody wakes us
BACKOFF = 5.0          # first retry after about this long (≤ 6 s), then doubling…
MAX_BACKOFF = 3600.0   # …up to this
RETRY_FOR = 86400.0    # a delivery still not answered 2xx this long after its event has failed
SECRET_PREFIX = "whsec_"
USER_AGENT = "Parley-Webhooks/1"


def backoff(tries: int) -> float:
    """Seconds before try number tries + 1: 5, 10, 20 … 3600, each ×0.8–1.2."""
    return min(MAX_BACKOFF, BACKOFF * 2 ** max(0, tries - 1)) * random.uniform(0.8, 1.2)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the secret's
    decoded bytes (the secret as shown, `whsec_` + base64, or its base64 alone)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Permanent(Exception):
    """This delivery can never be sent (its event is no longer stored)."""


class Deliverer:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.woken = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = None
        self.timeout = TIMEOUT

    def queued(self, count: int) -> None:
        """Deliveries were written to the outbox with committed events: look now rather than at the next poll."""
        if count:
            metrics.WEBHOOKS_QUEUED.inc(count)
            self.woken.set()

    def open(self) -> None:
        """The HTTP client (outbox/webhttp.py), opened by the first send: aiohttp is imported then, not at
        start-up, which most processes (no webhook, or none due) would pay for nothing."""
        from . import webhttp

        self.session = webhttp.session(self.settings.webhook_allow_private, USER_AGENT)

    def start(self) -> None:
        if self.settings.webhook_workers == 0:
            return
        self.tasks = [asyncio.create_task(self._loop(i), name=f"webhook-deliverer-{i}")
                      for i in range(self.settings.webhook_workers)]
        self.tasks.append(asyncio.create_task(
            gauge_loop(metrics.WEBHOOKS_OLDEST_PENDING, lambda: store.oldest_pending_age(self.pool), POLL * 5),
            name="webhook-gauge"))

    async def stop(self) -> None:
        await stop_all(self.tasks)
        self.tasks = []
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _loop(self, index: int) -> None:
        await claim_loop("webhook deliverer", self.round, self.woken, POLL, stagger=0.2 * index)

    async def round(self) -> int:
        """Claim one batch of heads and send each group; the number of deliveries sent or tried."""
        rows = await store.claim(self.pool, BATCH, LEASE)
        if not rows:
            return 0
        claimed_at = time.monotonic()
        sent = await asyncio.gather(*(self._group(row, claimed_at) for row in rows))
        return sum(sent)

    async def _group(self, row: asyncpg.Record | None, claimed_at: float) -> int:
        """Send a group's deliveries in seq order, from its claimed head, while they succeed."""
        done = 0
        while row is not None and done < CHAIN:
            if time.monotonic() - claimed_at > SEND_WINDOW:
                await store.release(self.pool, [row["id"]])
                break
            status, error = await self._send(row)
            done += 1
            if error is not None:
                await self._failed(row, status, error)
                break
            metrics.WEBHOOKS_DELIVERED.inc()
            row = await store.delivered_and_next(self.pool, row["id"], status or 200, LEASE)
            claimed_at = time.monotonic()
        if row is not None and done >= CHAIN:
            await store.release(self.pool, [row["id"]])
        return done

    async def _failed(self, row: asyncpg.Record, status: int | None, error: str) -> None:
        if error.startswith("permanent:") or row["age"] + backoff(row["tries"]) > RETRY_FOR:
            await store.mark_failed(self.pool, row["id"], status, error)
            metrics.WEBHOOKS_FAILED.inc()
            log.warning("webhook delivery %d to %s failed for good after %d tries: %s", row["id"], row["url"],
                        row["tries"], error)
        else:
            await store.retry_later(self.pool, row["id"], backoff(row["tries"]), status, error)
            metrics.WEBHOOKS_RETRIES.inc()

    async def payload(self, row: asyncpg.Record) -> bytes:
        """The body of a delivery: {"type", "thread", "seq", "data"}; thread.created's data is {thread, question}."""
        if row["data"] is None:
            raise Permanent("the event is no longer stored (past PARLEY_EVENT_RETENTION_DAYS)")
        data = row["data"].encode()
        if row["name"] == "thread.created":
            thread = await store.thread_json(self.pool, row["thread_id"])
            data = b'{"thread":%s,"question":%s}' % (encode(thread), data)
        return b'{"type":%s,"thread":%d,"seq":%d,"data":%s}' % (encode(row["name"]), row["thread_id"], row["seq"],
                                                                 data)

    async def _send(self, row: asyncpg.Record) -> tuple[int | None, str | None]:
        """(HTTP status or None, None when delivered else why not)."""
        try:
            body = await self.payload(row)
        except Permanent as exc:
            return None, f"permanent: {exc}"
        msg_id = f"msg_{row['id']}"
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(row["secret"], msg_id, timestamp, body)}
        url = row["url"]
        host = urlsplit(url).hostname or ""
        ip = targets.literal(host)
        if ip is not None and not self.settings.webhook_allow_private and not targets.allowed_address(str(ip)):
            return None, f"{host} is a loopback, private or link-local address: refused"
        if self.session is None:
            self.open()
        assert self.session is not None
        from . import webhttp  # imported by open() already: a name lookup

        return await webhttp.post(self.session, url, body, headers, self.timeout)


def new_secret() -> str:
    """A webhook's secret as it is shown once: `whsec_` + base64 of 32 random bytes."""
    import secrets
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


