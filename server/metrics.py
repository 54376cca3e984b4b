"""Prometheus metrics. Multi-process aware: with `--workers N` the CLI sets
PROMETHEUS_MULTIPROC_DIR before the workers start, and /metrics then sums
every worker's files (gauges as livesum: dead workers drop out)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

SOCKETS = Gauge("parley_ws_open_sockets", "Open websocket connections", multiprocess_mode="livesum")
WS_BY_PATH = Gauge("parley_ws_sockets_by_path",
                   "Open websockets by write path: raw (one transport.write per frame) or asgi (portable)",
                   ["path"], multiprocess_mode="livesum")
SSE_STREAMS = Gauge("parley_sse_open_streams", "Open server-sent-event streams (GET /api/stream)",
                    multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("parley_ws_subscriptions", "Live thread subscriptions", multiprocess_mode="livesum")
SESSION_CACHE = Counter("parley_session_cache",
                        "The reply path's session cache (server/sessioncache.py): hit, miss, and stale (a cached "
                        "session or users row that no longer held, or refused: the request ran again from a fresh "
                        "lookup)", ["result"])
EVENTS_PUBLISHED = Counter("parley_events_published", "Events handed to the broker after commit")
EVENTS_DELIVERED = Counter("parley_events_delivered", "Event frames written to sockets")
FANOUT_LATENCY = Histogram(
    "parley_fanout_latency_seconds", "Commit to first socket write, per event and process",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
SLOW_CONSUMERS = Counter("parley_ws_slow_consumer_closes", "Sockets closed with 1013 for falling behind")
BROKER_RECONNECTS = Counter("parley_broker_reconnects", "Broker subscriber reconnects (each followed by backfill)")
GAP_BACKFILLS = Counter("parley_gap_backfills", "Backfills from thread_events after a seq gap")
BACKFILL_QUERIES = Counter("parley_backfill_queries",
                           "Batched thread_events reads for rooms behind (gaps, reconnects, reconcile)")
REPLAY_QUERIES = Counter("parley_replay_queries", "thread_events reads for subscribe with since")
# The recent history (docs/live.md "The recent history a resume reads"): where each resume that missed events
# was served from, and the one read of thread_events per room and process that fills it.
HISTORY_RESUMES = Counter("parley_history_resumes",
                          "Subscribes with since that missed events, by source: memory (the room's recent "
                          "history), database (thread_events, beyond it) or reset (pruned, too far back, never issued)",
                          ["source"])
HISTORY_WARM_READS = Counter("parley_history_warm_reads",
                             "Rooms opened: the one thread_events read of their recent history (per room and process)")
PUBLISH_FAILURES = Counter("parley_publish_failures",
                           "Publishes that failed (the event is stored; reconcile delivers it)")
EFFECT_FAILURES = Counter("parley_effect_failures",
                          "After-commit effects that failed (stored first or soft; server/effects.py)", ["effect"])
SPAM_CHECKS = Counter("parley_spam_checks", "Posts sent to the spam checker, by its verdict (server/spamcheck.py)",
                      ["verdict"])
SPAM_CHECK_FAILURES = Counter("parley_spam_check_failures",
                              "Spam checks that failed open (the post was published), by why", ["reason"])
RENDER_WAITING = Gauge("parley_render_waiting", "Bodies waiting for a render worker (server/render.py)",
                       multiprocess_mode="livesum")
PRESENCE_USERS = Gauge("parley_presence_users", "Signed-in users in Active Now (site)", multiprocess_mode="max")
PRESENCE_GUESTS = Gauge("parley_presence_guests", "Guest sockets (site)", multiprocess_mode="max")
# Presence's costs (docs/presence.md "Cost"; bench.presence reads them): commands sent to Redis (a script
# counts once, a doorbell too), bounded reads of a scope, frames and bytes written to sockets, and the
# thread CPU spent composing, sending and preparing writes.
PRESENCE_REDIS_COMMANDS = Counter("parley_presence_redis_commands", "Redis commands presence sent (pipelined)")
PRESENCE_READS = Counter("parley_presence_reads", "Reads of a presence scope from Redis (top 50, count, guests)")
PRESENCE_FRAMES = Counter("parley_presence_frames", "Presence frames written to sockets")
PRESENCE_FRAME_BYTES = Counter("parley_presence_frame_bytes", "Bytes of presence frames written to sockets")
PRESENCE_CPU = Counter("parley_presence_cpu_seconds", "Thread CPU seconds spent in presence work")
UPLOADS_DELETED = Counter("parley_uploads_deleted", "Uploads nothing referred to for 24 h, deleted by housekeeping")
UPLOAD_FILES_DELETED = Counter("parley_upload_files_deleted", "Stored files deleted with them (no upload named them)")
UPLOADS = Counter("parley_uploads", "Uploads by outcome: created, again (the same bytes), refused (422)",
                  ["outcome"])
PRUNED_ROWS = Counter("parley_pruned_rows", "Rows deleted by housekeeping", ["table"])
GC_PAUSE = Histogram("parley_gc_pause_seconds", "Garbage collections by generation: the event loop waits (gcpolicy.py)",
                     ["generation"], buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25))
REPLICA_READS = Counter("parley_replica_reads", "Requests whose reads could use a replica, by where they went",
                        ["target"])
REPLICA_SKIPPED = Counter("parley_replica_skipped",
                          "Such requests the primary served: every replica lagging, down or promoted, or none had "
                          "replayed the reader's own last write (behind_writer)", ["reason"])
REPLICA_LAG = Gauge("parley_replica_lag_seconds", "Seconds a replica is behind the primary (-1: not answering)",
                    ["replica"], multiprocess_mode="max")
REPLICA_HEALTHY = Gauge("parley_replica_healthy", "1 while a replica is in use, 0 while it is skipped", ["replica"],
                        multiprocess_mode="min")
HTTP_REQUESTS = Counter("parley_http_requests", "HTTP requests", ["route", "method", "status"])
HTTP_LATENCY = Histogram("parley_http_request_duration_seconds", "HTTP request latency", ["route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
WEBHOOKS_QUEUED = Counter("parley_webhook_queued", "Webhook deliveries written to the outbox with their events")
WEBHOOKS_DELIVERED = Counter("parley_webhook_delivered", "Webhook deliveries answered 2xx")
WEBHOOKS_RETRIES = Counter("parley_webhook_retries", "Webhook sends that failed for now (not 2xx, down, slow)")
WEBHOOKS_FAILED = Counter("parley_webhook_failed", "Webhook deliveries given up after 24 hours")
WEBHOOKS_OLDEST_PENDING = Gauge("parley_webhook_oldest_pending_seconds",
                                "Age of the oldest webhook delivery not yet delivered (0: none)")
MAIL_QUEUED = Counter("parley_mail_queued", "Mails written to the outbox (server/outbox/)", ["kind"])
MAIL_SENT = Counter("parley_mail_sent", "Mails the SMTP server accepted (or written to the mail directory)")
MAIL_RETRIES = Counter("parley_mail_retries", "Sends that failed for now (down, slow, 4xx): due again later")
MAIL_FAILED = Counter("parley_mail_failed", "Mails given up: refused (5xx) or not accepted within 24 hours")
MAIL_OLDEST_UNSENT = Gauge("parley_mail_oldest_unsent_seconds", "Age of the oldest mail not yet sent (0: none)",
                           multiprocess_mode="livemax")
INBOUND_MAIL = Counter("parley_inbound_mail", "Mails to the reply-by-mail listener, by outcome", ["outcome"])
