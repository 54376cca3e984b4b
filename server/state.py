"""What the lifespan opens and every handler reads: one typed object on app.state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from .auth import Cookies
from .config import Settings
from .live.broker import Broker
from .live.channels import Channels
from .live.hub import Hub
from .live.presence import Presence
from .render import Renderer


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    broker: Broker
    channels: Channels
    hub: Hub
    presence: Presence
    limiter: Any
    cookies: Cookies
    redis: Any | None = None
    renderer: Renderer | None = None
    feed_publisher: Any | None = None  # feedpublisher.Publisher: coalesces feed sends per thread
    page_cache: Any | None = None  # pagecache.PageCache: guests' thread pages
    connections_per_ip: Counter[str] = field(default_factory=Counter)
    shutting_down: bool = False
