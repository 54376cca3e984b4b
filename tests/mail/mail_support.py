"""Helpers of the mail tests (tests/mail): the environment of a server that mails, members with a verified
address, threads, and waiting for the notification worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support.api import Api, unique
from support.databases import db_fetchval
from support.smtp import SmtpServer, token

MAIL_FROM = "Parley Test <forum@parley.example>"
DELAY = 5  # PARLEY_MAIL_DELAY_SECONDS of the module's server: a test reads a notification well within it


def mail_env(pg_url: str, redis_url: str, data: Path, smtp_url: str, **more: str) -> dict[str, str]:
    return {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off", "PARLEY_DB_POOL_SIZE": "6",
            "PARLEY_RENDER_WORKERS": "1", "PARLEY_DATA_DIR": str(data), "PARLEY_SECRET": "test-secret-0123456789abcdef",
            "PARLEY_SMTP_URL": smtp_url, "PARLEY_MAIL_FROM": MAIL_FROM, "PARLEY_MAIL_DELAY_SECONDS": str(DELAY),
            "PARLEY_RENDER_BUDGET_SECONDS": "10",
            **more}


def member(url: str, smtp: SmtpServer, verified: bool = True, **prefs: str) -> Api:
    """A signed-up user with an address (verified by following the mail's link), and these preferences."""
    name = unique()
    address = f"{name}@mail.example.org"
    api = Api(url)
    r = api.post("/api/users", json={"username": name, "password": "correct horse battery", "email": address})
    assert r.status_code == 201, r.text
    api.user = r.json()["user"]
    api.email = address  # type: ignore[attr-defined]
    if verified:
        mail = smtp.wait_for(address)[0]
        r = Api(url).post("/api/email/verify", json={"token": token(mail, "/verify-email")})
        assert r.status_code == 200 and r.json()["user"]["email_verified"] is True, r.text
    if prefs:
        r = api.put("/api/me/preferences", json=prefs)
        assert r.status_code == 200, r.text
    return api


def thread_of(api: Api, category: str, title: str = "A question by mail") -> dict[str, Any]:
    r = api.post("/api/threads", json={"category": category, "title": title, "body": "What do you think?"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def looked_at(pg_url: str, user_id: int, timeout: float = 30.0) -> None:
    """Wait until the notification worker has looked at every notification of the user (none left due)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db_fetchval(pg_url, "SELECT count(*) FROM notifications WHERE user_id = $1 AND mail = 'due'", user_id) == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"notifications of user {user_id} still due after {timeout} s")
