"""Mail tests: a real SMTP server (aiosmtpd on loopback) and `parley serve` processes that send to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mail_support import mail_env
from support.api import Api, unique
from support.databases import create_database, drop_database
from support.ports import free_port
from support.processes import ServerProcess
from support.smtp import SmtpServer


@pytest.fixture(scope="module")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A database of this module's own, not the worker's shared one: another module's unsent mail and due
    notifications would otherwise reach this module's SMTP server first (its own mail then queued behind them)."""
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(pg_url: str, redis_url: str, smtp: SmtpServer,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: mail to `smtp`, replies on its own listener port, a 5 s mail delay."""
    listen = free_port()
    proc = ServerProcess(mail_env(pg_url, redis_url, tmp_path_factory.mktemp("data"), smtp.url,
                                  PARLEY_SMTP_LISTEN=f"127.0.0.1:{listen}"))
    proc.smtp_port = listen  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def category(mail_server: ServerProcess, pg_url: str) -> str:
    from support.databases import make_moderator
    mod = Api(mail_server.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("mail-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Mail"}).status_code == 201
    return slug
