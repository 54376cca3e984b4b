"""What the lifespan opens and every handler reads: one typed object on app.state, built once, complete."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from .auth import Cookies
from .config import Settings
from .feedpublisher import FeedPublisher
from .live.broker import Broker
from .live.channels import Channels
from .live.hub import Hub
from .live.presence import Presence
from .live.socketlog import SocketLog
from .oidc import Provider
from .outbox.mailer import Mailer
from .outbox.webhooks import Deliverer
from .pagecache import PageCache
from .ratelimit import Limiter
from .render import Renderer
from .replicas import Replicas
from .sessioncache import SessionCache
from .spamcheck import SpamCheck
from .store.similar import Vocabulary
from .uploads.storage import Storage
from .uploads.workers import ImageWorkers


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    broker: Broker
    channels: Channels
    hub: Hub
    presence: Presence
    limiter: Limiter
    cookies: Cookies
    renderer: Renderer
    feed_publisher: FeedPublisher  # thread-list updates, coalesced per thread by this process
    page_cache: PageCache  # guests' thread pages while their seq is unchanged
    session_cache: SessionCache  # the reply's users by session cookie, checked by its statement (sessioncache.py)
    search_slots: asyncio.Semaphore  # api/search.py: searches of this process at once
    vocabulary: Vocabulary  # how common the forum's common words are (similar questions leave them out)
    storage: Storage  # uploaded images' bytes, by SHA-256 (a directory or an S3-compatible store)
    images: ImageWorkers  # image decoding and encoding, in worker processes, fair per user
    mailer: Mailer  # the composer, the outbox sender, notification mail and digests, the reply listener
    webhooks: Deliverer  # the webhook outbox's deliverer (outbox/webhooks.py)
    oidc: Provider  # the single sign-on provider (server/oidc.py); .enabled when PARLEY_OIDC_ISSUER is set
    spam_check: SpamCheck  # PARLEY_SPAM_CHECK_URL's client (server/spamcheck.py); off when unset
    replicas: Replicas  # where reads that may be a little stale go (server/replicas.py); the primary if none
    connections_per_ip: Counter[str] = field(default_factory=Counter)
    socket_log: SocketLog = field(default_factory=SocketLog)  # sockets opened and closed, summarized (live/ws.py)
    shutting_down: bool = False
