"""A real SMTP server for tests: aiosmtpd's Controller on loopback, keeping what it accepts.

It can refuse the next N messages (a 4xx or 5xx), hold every DATA until released (a slow server that keeps
the connection), or be stopped and started again on the same port (a server that is down)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from .ports import free_port


class Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = 0
        self.refuse_reply = "451 4.3.0 Try again later"
        self.hold: threading.Event | None = None
        self.holding = threading.Event()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.hold is not None:
            self.holding.set()
            while not self.hold.is_set():
                await asyncio.sleep(0.02)
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                return self.refuse_reply
            msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
            self.messages.append(msg)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"


class SmtpServer:
    """start()/stop() an aiosmtpd Controller on 127.0.0.1:port; `sink` keeps its state across restarts."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.sink = Sink()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return list(self.sink.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]).lower() == address.lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30.0) -> list[EmailMessage]:
        """The messages to `address` once there are at least `count` (AssertionError after `timeout`)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.to(address)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{len(self.to(address))} mails to {address} after {timeout} s, wanted {count}")


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, "no text part"
    return str(part.get_content())


def link(msg: EmailMessage, path: str) -> str:
    """The first link in a mail's text whose path is `path` (e.g. /reset-password), whole."""
    for word in text_of(msg).split():
        if f"{path}?" in word:
            return word
    raise AssertionError(f"no {path} link in:\n{text_of(msg)}")


def token(msg: EmailMessage, path: str) -> str:
    from urllib.parse import parse_qs, urlsplit
    return parse_qs(urlsplit(link(msg, path)).query)["token"][0]


def written_mail(server: Any, pg_url: str, address: str, after: int = 0,
                 timeout: float = 30.0) -> tuple[int, EmailMessage]:
    """The newest mail to `address` (outbox id > after) once written to the server's mail directory (no
    PARLEY_SMTP_URL): (outbox id, message). `server` is a ServerProcess or an in-process app."""
    from pathlib import Path

    from .databases import db_fetchval
    folder = Path(server.settings.data_dir if hasattr(server, "settings") else server.env["PARLEY_DATA_DIR"]) / "mail"
    deadline = time.time() + timeout
    while time.time() < deadline:
        mail_id = db_fetchval(pg_url, "SELECT max(id) FROM mail_outbox WHERE lower(recipient) = lower($1)"
                                      " AND id > $2 AND sent_at IS NOT NULL", address, after)
        if mail_id is not None:
            raw = (folder / f"{mail_id:010d}.eml").read_bytes()
            return mail_id, email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address} written within {timeout} s")
