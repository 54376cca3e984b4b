"""Where mail goes: an SMTP server (PARLEY_SMTP_URL) or, with none set, one file per message under the data
directory's mail/ (read by `parley mail list` / `parley mail show ID`).

A transport sends one message at a time on a connection it keeps between messages, and says how a
failure should be treated: `Temporary` (try again later: the server is down, slow, answered 4xx, or the
connection broke) or `Permanent` (the server answered 5xx to this message's recipient or data: sending it
again would get the same answer).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from ..config import Settings

TIMEOUT = 30.0  # seconds per SMTP command (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA)


class Temporary(Exception):
    """Try this message again later."""


class Permanent(Exception):
    """Never try this message again."""


class Transport(Protocol):
    async def send(self, mail_id: int, sender: str, recipient: str, message: bytes) -> None: ...

    async def close(self) -> None: ...


def mail_dir(settings: Settings) -> Path:
    return settings.data_dir / "mail"


def file_name(mail_id: int) -> str:
    return f"{mail_id:010d}.eml"


class DirectoryTransport:
    """Each message as data_dir/mail/NNNNNNNNNN.eml (the outbox id), written whole and then renamed into
    place, so a reader never sees half a file and a retry after a crash overwrites the same name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, mail_id: int, message: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / file_name(mail_id)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(message)
        os.replace(tmp, path)

    async def send(self, mail_id: int, sender: str, recipient: str, message: bytes) -> None:
        try:
            await asyncio.to_thread(self._write, mail_id, message)
        except OSError as exc:
            raise Temporary(f"cannot write {self.directory}: {exc.strerror or exc}") from None

    async def close(self) -> None:
        pass


class SmtpTransport:
    """aiosmtplib on one connection, opened when needed and kept while it works. smtp:// uses STARTTLS
    when the server offers it; smtps:// is TLS from the first byte. Credentials come from the URL."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(url)
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.smtp: aiosmtplib.SMTP | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self.smtp is not None and self.smtp.is_connected:
            return self.smtp
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, use_tls=self.implicit_tls,
                               start_tls=False if self.implicit_tls else None, username=self.username,
                               password=self.password, timeout=self.timeout)
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Refused, unreachable, slow, a failed STARTTLS or AUTH: nothing about this message; later.
            raise Temporary(f"cannot connect to {self.host}:{self.port}: {_describe(exc)}") from None
        self.smtp = smtp
        return smtp

    async def send(self, mail_id: int, sender: str, recipient: str, message: bytes) -> None:
        smtp = await self._connection()
        try:
            errors, _ = await smtp.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [e.code for e in exc.recipients]
            raise (Temporary if all(400 <= c < 500 for c in codes) else Permanent)(_describe(exc)) from None
        except (aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused) as exc:
            await self._reset()
            raise (Temporary if 400 <= exc.code < 500 else Permanent)(_describe(exc)) from None
        except aiosmtplib.SMTPResponseException as exc:  # MAIL FROM refused and the like: not this message's fault
            await self._reset()
            raise Temporary(_describe(exc)) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise Temporary(_describe(exc)) from None
        if errors:
            raise Temporary(f"refused: {errors}")

    async def _reset(self) -> None:
        """After a refused message the connection may carry on with the next one (RSET); if that fails,
        the next message opens a new connection."""
        if self.smtp is None:
            return
        try:
            await self.smtp.rset()
        except Exception:
            await self.close()

    async def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), 5)
        except Exception:
            smtp.close()


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())[:300]


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return DirectoryTransport(mail_dir(settings))
