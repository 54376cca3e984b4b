"""The mail service of one process: the composer, the outbox sender, the notification and digest worker,
and (with PARLEY_SMTP_LISTEN) the reply-by-mail listener. The lifespan starts and stops it; handlers reach
the composer through it, and effects.after_commit() tells it what a write queued."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import asyncpg

from .. import metrics
from ..config import Settings
from .compose import Composer
from .notify import Notifier, Online
from .sender import Sender

if TYPE_CHECKING:
    from ..state import AppState

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, online: Online) -> None:
        self.settings = settings
        self.composer = Composer(settings)
        self.sender = Sender(pool, settings)
        self.notifier = Notifier(pool, settings, self.composer, online, self.queued)
        self.listener: asyncio.AbstractServer | None = None

    def queued(self, kinds: list[str]) -> None:
        """Mails were written to the outbox (and committed): count them, wake this process's sender."""
        for kind in kinds:
            metrics.MAIL_QUEUED.labels(kind).inc()
        if kinds:
            self.sender.wake()

    async def start(self, st: AppState) -> None:
        self.sender.start()
        self.notifier.start()
        if self.settings.smtp_listen is not None:
            # Imported only here: aiosmtpd and the reply parser cost every start ~45 ms of CPU, and only a process
            # with PARLEY_SMTP_LISTEN runs the listener.
            from . import inbound

            host, port = self.settings.smtp_listen
            self.listener = await inbound.start(st, host, port)
            log.info("reply by mail: listening on %s:%d", host, port)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        await self.notifier.stop()
        await self.sender.stop()
