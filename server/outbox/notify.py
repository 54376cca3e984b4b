"""Notification mail for people who are away, and digests for people who have not visited
(CONTRACT "E-mail"; docs/operations.md "E-mail").

Notification mail follows Zulip's delay-and-recheck rule. Every notification starts `due`; a worker in
every process looks at each one once, PARLEY_MAIL_DELAY_SECONDS after it was made:

- read by then, withdrawn (deleted with its post), of a user without a verified address or with `never`:
  skipped, nothing sent (most are these: skipped in bulk, store/outbox.skip_unmailable);
- with `away` and a socket open anywhere (presence): skipped;
- else one mail for the user's thread: every unread, unmailed notification of theirs in that thread made
  by now goes in it (those not yet due too), and all of them are marked mailed in the transaction that
  queues the mail. Two processes never take the same notification (FOR UPDATE SKIP LOCKED).

Digests: one round at a time per deployment (an advisory try-lock), every DIGEST_EVERY seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable

import asyncpg

from ..config import Settings
from ..store import outbox as store
from ..store import users
from .compose import Composer, Mail

log = logging.getLogger(__name__)

Online = Callable[[list[int]], Awaitable[set[int]]]  # which of these users have a socket open anywhere

BATCH = 200          # due notifications per round (and transaction)
POLL = 5.0           # seconds at most between looks…
MIN_POLL = 0.2       # …and at least
DIGEST_EVERY = 900.0  # seconds between digest rounds
DIGEST_BATCH = 500   # users per period per round


class Notifier:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, composer: Composer, online: Online,
                 queued: Callable[[list[str]], None]) -> None:
        self.pool = pool
        self.delay = settings.mail_delay_seconds
        self.composer = composer
        self.online = online
        self.queued = queued
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._loop(), name="mail-notify"),
                      asyncio.create_task(self._digests(), name="mail-digest")]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def _loop(self) -> None:
        while True:
            try:
                if await self.round() >= BATCH:
                    continue
                wait = await store.next_notification_due(self.pool, self.delay)
                wait = POLL if wait is None else min(POLL, max(MIN_POLL, wait))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or presence away: the notifications wait, nothing lost
                log.warning("notification mail round failed: %s", exc)
                wait = POLL
            await asyncio.sleep(wait * random.uniform(0.9, 1.1))

    async def round(self) -> int:
        """One transaction: the due notifications of up to BATCH, mailed or skipped. Answers how many
        due notifications were taken."""
        mails: list[tuple[Mail, int]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await store.skip_unmailable(conn, self.delay)
            groups = await store.due_groups(conn, self.delay, BATCH)
            if not groups:
                return 0
            rows = await store.group_notifications(conn, groups, self.delay)
            away = sorted({r["user_id"] for r in rows if r["email_notifications"] == "away"})
            online = await self.online(away) if away else set()
            mailed: list[int] = []
            skipped: list[int] = []
            batches: list[list[asyncpg.Record]] = []
            for (user_id, _), group in itertools.groupby(rows, key=lambda r: (r["user_id"], r["thread_id"])):
                items = list(group)
                first = items[0]
                unread = [r for r in items if not r["read"]]
                skipped += [r["id"] for r in items if r["read"] and r["due"]]
                if (not first["email_verified"] or first["email"] is None or first["email_notifications"] == "never"
                        or (first["email_notifications"] == "away" and user_id in online)
                        or not any(r["due"] for r in unread)):
                    skipped += [r["id"] for r in unread if r["due"]]
                    continue
                batches.append(unread)
                mailed += [r["id"] for r in unread]
            # Composing is CPU (about a millisecond and a half a mail): in a thread, so the event loop (and
            # every request of this process) gets the interpreter back every switch interval meanwhile.
            mails = await asyncio.to_thread(lambda: [(self._mail(b), b[0]["user_id"]) for b in batches])
            await store.enqueue_many(conn, mails)
            await store.mark_notifications(conn, mailed, skipped)
        if mails:
            self.queued(["notification"] * len(mails))
        return sum(1 for r in rows if r["due"])

    def _mail(self, rows: list[asyncpg.Record]) -> Mail:
        first = rows[0]
        user = users.brief(first, "user_") or {}
        items = [{"kind": r["kind"], "post_id": r["post_id"], "body": r["body"], "actor": users.brief(r, "actor_")}
                 for r in rows]
        return self.composer.notification(first["email"], user, {"id": first["thread_id"], "title": first["title"]},
                                          items, first["unsubscribe_epoch"])

    async def _digests(self) -> None:
        await asyncio.sleep(30 * random.random())
        while True:
            try:
                await self.digest_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("digest round failed: %s", exc)
            await asyncio.sleep(DIGEST_EVERY * random.uniform(0.8, 1.2))

    async def digest_round(self) -> int | None:
        """Digests for whoever is due: the number queued, or None when another process holds the round."""
        mails: list[tuple[Mail, int]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.digest_round_lock(conn):
                return None
            for period, seconds in store.PERIODS.items():
                candidates = await store.digest_candidates(conn, period, DIGEST_BATCH)
                if not candidates:
                    continue
                online = await self.online([c["id"] for c in candidates])
                threads = None
                done: list[int] = []
                at_visit = []
                for c in candidates:
                    if c["id"] not in online and c["away_for"] < seconds:
                        at_visit.append((c["id"], c["visited_at"]))  # visited lately: a period after that visit
                        continue
                    done.append(c["id"])
                    if c["id"] in online:
                        continue
                    if threads is None:
                        threads = await store.active_threads(conn, period)
                    if threads:
                        mail = self.composer.digest(c["email"], users.brief(c) or {}, [dict(t) for t in threads],
                                                    period, c["unsubscribe_epoch"])
                        mails.append((mail, c["id"]))
                await store.digest_done(conn, done, at_visit)
            await store.enqueue_many(conn, mails)
        if mails:
            self.queued(["digest"] * len(mails))
        return len(mails)
