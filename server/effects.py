"""After COMMIT: the one way out of a write (ARCHITECTURE rule 7).

A write handler runs its transaction through store/, which returns a `Written` (store/__init__.py):
the answer plus everything the write caused. `after_commit()` sends all of it, in one order and with one
failure policy, and nothing else in the request path calls the broker:

1. thread events, to `thread:{id}` (stored first: a lost publish is backfilled by every hub from
   thread_events, ARCHITECTURE rule 1);
2. notifications and unread counts, to the recipients' user channels, or as one batch for a large
   fan-out (stored first: a recipient reads them over HTTP); the batch goes in the events' own write to
   the broker (one round trip for a reply: bench/README.md "One round trip to Redis per reply");
3. other frames for one user's sockets (e.g. moderators' flag counts);
4. the end of sessions: their sockets close with 4001 on every process (the rows are gone first: every
   hub's session sweep closes them too when this is lost);
5. thread-list updates on the feeds (soft: a client that reconnects reloads its list);
6. mail queued: the rows are committed; this only wakes the process's outbox sender (outbox/sender.py), which
   would otherwise find them at its next poll;
7. webhook deliveries queued with the events (store/events.py writes them in the event's statement): this only
   wakes the process's deliverer (outbox/webhooks.py), as for mail;
8. site frames, to every socket of every process (a silence: soft, the pages reread what they show).

Failure policy: every effect is either stored before COMMIT or soft, so a failed publish is logged and
counted (`parley_effect_failures_total{effect}`), never an error for the writer, and the next effect is
still tried. Effects that leave the process for good (mail, webhooks) are outbox rows written in the
transaction itself (ARCHITECTURE rule 8); after_commit only wakes their workers.

This is the shape of Zulip's send_event_on_commit: the write describes its effects, one place delivers.
"""

from __future__ import annotations

import logging
from typing import Any

from . import metrics, wire
from .live import userchannel
from .state import AppState
from .store import Written
from .store import notifications as notification_store
from .store.events import Event

log = logging.getLogger(__name__)

PUBLISH_BATCH = 256  # user-channel publishes per pipeline round trip


async def after_commit(st: AppState, written: Written[Any]) -> None:
    """Publish everything `written` caused. Call it after COMMIT, never before; it never raises."""
    # A large fan-out's one batch message needs no query: it goes in the events' write to the broker (one
    # round trip instead of two, after the events, as before). A small one reads the unread counts first, so
    # the events go out alone before that query.
    batch = _batch(written)
    if written.events:
        await publish_events(st, written.events, [(st.channels.users, batch)] if batch is not None else [])
    elif batch is not None:
        await _guarded("notifications", userchannel.publish_batch(st.broker, st.channels, batch))
    if batch is None and (written.notified or written.recount):
        await _guarded("notifications", publish_notifications(st, written))
    if written.user_frames:
        await publish_user_frames(st, written.user_frames)
    for ended in written.sessions_ended:
        await _guarded("sessions", userchannel.end_sessions(st.broker, st.channels, ended.user_id,
                                                            only=ended.only, before=ended.before))
    if written.feeds:
        await _guarded("feeds", st.feed_publisher.publish(written.feeds, written.moved_from))
    if written.mail_queued:
        st.mailer.queued(written.mail_queued)
    if hooks := sum(event.webhooks for event in written.events):
        st.webhooks.queued(hooks)
    for frame in written.site_frames:
        await _guarded("site frames", userchannel.publish_site_frame(st.broker, st.channels, frame))


async def _guarded(effect: str, work: Any) -> None:
    try:
        await work
    except Exception as exc:
        failed(effect, exc)


def failed(effect: str, exc: BaseException, what: str = "") -> None:
    """The one failure policy: log it, count it, go on (what failed is stored first, or soft)."""
    metrics.EFFECT_FAILURES.labels(effect).inc()
    log.warning("after-commit %s%s failed (stored or soft, not retried here): %s", effect,
                f" ({what})" if what else "", exc)


async def publish_events(st: AppState, events: list[Event], batch: list[tuple[str, bytes]]) -> None:
    """Hand committed event frames to the broker, in order, followed by `batch` (a large fan-out's
    notifications, or nothing), all in one publish_many: one write and one wait on Redis. The broker tries
    every message; a failure is counted against the events and the batch alike (which of them failed is not
    told apart: both are stored first). A failed publish loses nothing: every process's hub notices the gap in
    seq (or its reconnect backfill) and reads thread_events; a recipient reads the notifications over HTTP."""
    for event in events:
        st.hub.note_commit(event.thread_id, event.seq)
    try:
        await st.broker.publish_many([*((st.channels.thread(e.thread_id), e.frame) for e in events), *batch])
        metrics.EVENTS_PUBLISHED.inc(len(events))
    except Exception as exc:
        metrics.PUBLISH_FAILURES.inc(len(events))
        failed("events", exc, ", ".join(f"thread {e.thread_id} seq {e.seq}" for e in events))
        if batch:
            failed("notifications", exc, "one batch")


def _batch(written: Written[Any]) -> bytes | None:
    """A large fan-out's notifications (a response in a thread with many followers) as ONE batch message for
    the process-wide channel (userchannel.batch): one PUBLISH and no count query here; each process reads the
    counts of its own online recipients. None for a small fan-out, or notifications not of one post."""
    if len(written.notified) + len(written.recount) >= userchannel.BROADCAST_MIN:
        return userchannel.batch(written.notified, written.recount)
    return None


async def publish_notifications(st: AppState, written: Written[Any]) -> None:
    """Each new notification to its recipient, and the new count to those it changed for: a small fan-out
    (a large one is a batch, _batch), published per user with the counts read here."""
    users = sorted({n["user_id"] for n in written.notified} | written.recount)
    counts = await notification_store.unread_counts(st.pool, users)
    frames = [(n["user_id"], wire.notification(n["notification"], counts.get(n["user_id"], 0)))
              for n in written.notified]
    notified = {n["user_id"] for n in written.notified}
    frames += [(uid, wire.notifications(counts.get(uid, 0))) for uid in sorted(written.recount - notified)]
    await publish_user_frames(st, frames)


async def publish_user_frames(st: AppState, frames: list[tuple[int, bytes]]) -> None:
    """Frames for users' sockets on every process, pipelined PUBLISH_BATCH at a time."""
    for i in range(0, len(frames), PUBLISH_BATCH):
        try:
            await userchannel.publish_frames(st.broker, st.channels, frames[i:i + PUBLISH_BATCH])
        except Exception as exc:
            failed("user frames", exc, f"{len(frames[i:i + PUBLISH_BATCH])} frames")
