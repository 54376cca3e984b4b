"""The outbox worker: every `parley serve` process runs one (docs/operations.md "E-mail: the outbox").

It claims due mails (store/outbox.claim: FOR UPDATE SKIP LOCKED plus a lease, so two processes never hold
the same mail), sends them over one connection per task, and then:

- accepted by the server → marked sent at once, before anything else (a retry never sends it again);
- a temporary failure (down, slow, 4xx, a broken connection) → due again after a back-off (BACKOFF
  seconds doubling to MAX_BACKOFF, with jitter) until RETRY_FOR (24 h) after it was queued, then failed;
- a permanent one (5xx to its recipient or data) → failed.

A claim's mails are sent only while the lease is surely still ours: a task starts no send later than
SEND_WINDOW seconds after its claim, and each send ends within PER_MAIL, both well inside LEASE; what is
left is given back. Requests never wait for any of this: a write only stores the row and wake()s this
worker (effects.after_commit); other processes find it at their next poll.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from email.headerregistry import HeaderRegistry

import asyncpg

from .. import metrics
from ..config import Settings
from ..store import outbox as store
from .loops import claim_loop, gauge_loop, stop_all
from .transport import Permanent, Temporary, Transport, transport_for

log = logging.getLogger(__name__)

LEASE = 120.0          # seconds a claim holds its mails
SEND_WINDOW = 30.0     # no send starts later than this after the claim…
PER_MAIL = 60.0        # …and none takes longer than this (connect included): 30 + 60 < 120
BATCH = 50             # mails per claim
TASKS = 4              # claims (and SMTP connections) at once per process
POLL = 5.0             # seconds between looks at the outbox when nobody wakes us
BACKOFF = 10.0         # first retry after about this long, then doubling…
MAX_BACKOFF = 1800.0   # …up to this
RETRY_FOR = 86400.0    # a mail still not accepted this long after it was queued has failed


def backoff(tries: int) -> float:
    """Seconds before try number tries + 1: 10, 20, 40 … 1800, each ×0.8–1.2."""
    return min(MAX_BACKOFF, BACKOFF * 2 ** max(0, tries - 1)) * random.uniform(0.8, 1.2)


class Sender:
    def __init__(self, pool: asyncpg.Pool, settings: Settings,
                 transport: Callable[[], Transport] | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.new_transport = transport or (lambda: transport_for(settings))
        self.envelope_from = HeaderRegistry()("from", settings.mail_from).addresses[0].addr_spec  # type: ignore[attr-defined]
        self.woken = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """A mail was queued by this process: look now rather than at the next poll."""
        self.woken.set()

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._loop(i), name=f"mail-sender-{i}") for i in range(TASKS)]
        self.tasks.append(asyncio.create_task(
            gauge_loop(metrics.MAIL_OLDEST_UNSENT, lambda: store.oldest_unsent_age(self.pool), POLL * 2),
            name="mail-gauge"))

    async def stop(self) -> None:
        await stop_all(self.tasks)
        self.tasks = []

    async def _loop(self, index: int) -> None:
        transport = self.new_transport()
        try:  # idle: no connection held open between bursts
            await claim_loop("mail sender", lambda: self.round(transport), self.woken, POLL, stagger=0.5 * index,
                             idle=transport.close)
        finally:
            await transport.close()

    async def round(self, transport: Transport) -> int:
        """Claim one batch and send it; the number of mails claimed."""
        rows = await store.claim(self.pool, BATCH, LEASE)
        if not rows:
            return 0
        claimed_at = time.monotonic()
        for i, row in enumerate(rows):
            if time.monotonic() - claimed_at > SEND_WINDOW:
                await store.release(self.pool, [r["id"] for r in rows[i:]])
                break
            await self._send(transport, row)
        return len(rows)

    async def _send(self, transport: Transport, row: asyncpg.Record) -> None:
        mail_id = row["id"]
        try:
            async with asyncio.timeout(PER_MAIL):
                await transport.send(mail_id, self.envelope_from, row["recipient"], row["message"].encode())
        except (Temporary, TimeoutError) as exc:
            error = str(exc) or "timed out"
            if isinstance(exc, TimeoutError):
                await transport.close()
            if row["age"] + backoff(row["tries"]) > RETRY_FOR:
                await store.mark_failed(self.pool, mail_id, error)
                metrics.MAIL_FAILED.inc()
                log.warning("mail %d to %s failed for good after %d tries: %s", mail_id, row["recipient"],
                            row["tries"], error)
            else:
                await store.retry_later(self.pool, mail_id, backoff(row["tries"]), error)
                metrics.MAIL_RETRIES.inc()
                log.info("mail %d: will retry (%s)", mail_id, error)
            return
        except Permanent as exc:
            await store.mark_failed(self.pool, mail_id, str(exc))
            metrics.MAIL_FAILED.inc()
            log.warning("mail %d to %s refused: %s", mail_id, row["recipient"], exc)
            return
        await self._mark_sent(mail_id)
        metrics.MAIL_SENT.inc()

    async def _mark_sent(self, mail_id: int) -> None:
        """Accepted: record it before anything else. A database that fails right now is tried again for a
        while: until this lands the mail could be sent again once its lease runs out."""
        for attempt in range(10):
            try:
                await store.mark_sent(self.pool, mail_id)
                return
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("mail %d was accepted but not yet marked sent: %s", mail_id, exc)
                await asyncio.sleep(min(0.5 * 2 ** attempt, LEASE / 8))
        raise RuntimeError(f"mail {mail_id} accepted but could not be marked sent")
