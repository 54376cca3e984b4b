"""The outbox against a real SMTP server that is down, refuses, or holds the connection: nothing lost,
nothing sent twice, requests unaffected; a SIGKILL between queueing and sending; two processes sharing it."""

from __future__ import annotations

import threading
import time
from typing import Any

from mail_support import MAIL_FROM
from support.api import Api, unique
from support.databases import db_fetch, db_fetchval
from support.smtp import SmtpServer


def verified_member(url: str, pg_url: str) -> tuple[Api, str]:
    """A member whose address is verified in the database (no verification mail goes out)."""
    api = Api(url).sign_up()
    address = f"{api.user['username']}@mail.example.org"  # type: ignore[index]
    db_fetch(pg_url, "UPDATE users SET email = $2, email_verified = true WHERE id = $1", api.user["id"], address)  # type: ignore[index]
    return api, address


def outbox(pg_url: str, address: str) -> list[Any]:
    return db_fetch(pg_url, "SELECT id, tries, sent_at, failed_at, last_error FROM mail_outbox WHERE recipient = $1",
                    address)


def wait(check: Any, timeout: float = 90.0, what: str = "") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def mail_env(smtp: SmtpServer) -> dict[str, str]:
    return {"PARLEY_SMTP_URL": smtp.url, "PARLEY_MAIL_FROM": MAIL_FROM, "PARLEY_RENDER_WORKERS": "1"}


def test_outbox_survives_a_sigkill_between_queue_and_send(spawn: Any, pg_url: str) -> None:
    """With the SMTP server down the reset mail stays queued; the process is killed (SIGKILL); once the server
    is up, a new process sends it, exactly once."""
    smtp = SmtpServer()  # not started: nothing listens on its port
    first = spawn(**mail_env(smtp))
    member, address = verified_member(first.url, pg_url)
    assert member.post("/api/password-reset", json={"email": address}).status_code == 202
    wait(lambda: any(r["tries"] >= 1 and r["last_error"] for r in outbox(pg_url, address)), what="a failed try")
    first.proc.kill()
    first.proc.wait()
    smtp.start()
    try:
        spawn(**mail_env(smtp))
        wait(lambda: smtp.to(address), what="the mail after the restart")
        wait(lambda: all(r["sent_at"] for r in outbox(pg_url, address)), what="marked sent")
        time.sleep(1.0)
        assert len(smtp.to(address)) == 1
        assert len(outbox(pg_url, address)) == 1
    finally:
        smtp.stop()


def test_a_server_that_refuses_then_accepts_gets_the_mail_once(spawn: Any, pg_url: str) -> None:
    """A 451 is retried after a back-off; the accepted mail is marked sent and never sent again. A 550 is
    given up at once (failed), not retried."""
    smtp = SmtpServer().start()
    try:
        server = spawn(**mail_env(smtp))
        member, address = verified_member(server.url, pg_url)
        smtp.sink.refuse = 1
        assert member.post("/api/password-reset", json={"email": address}).status_code == 202
        wait(lambda: smtp.to(address), what="the retried mail")
        row = wait(lambda: [r for r in outbox(pg_url, address) if r["sent_at"]], what="marked sent")[0]
        assert row["tries"] == 2 and row["failed_at"] is None
        other, refused_to = verified_member(server.url, pg_url)
        smtp.sink.refuse, smtp.sink.refuse_reply = 1, "550 5.1.1 No such mailbox"
        assert other.post("/api/password-reset", json={"email": refused_to}).status_code == 202
        row = wait(lambda: [r for r in outbox(pg_url, refused_to) if r["failed_at"]], what="failed")[0]
        assert row["tries"] == 1 and row["sent_at"] is None and "550" in row["last_error"]
        time.sleep(1.0)
        assert len(smtp.to(address)) == 1 and smtp.to(refused_to) == []
    finally:
        smtp.stop()


def test_a_slow_server_holding_the_connection_leaves_requests_unaffected(spawn: Any, pg_url: str) -> None:
    """While the SMTP server holds a DATA without answering, sign-ups, posts and more reset requests answer
    as usual; once it answers, every mail arrives once."""
    smtp = SmtpServer().start()
    smtp.sink.hold = threading.Event()
    try:
        server = spawn(**mail_env(smtp))
        member, address = verified_member(server.url, pg_url)
        assert member.post("/api/password-reset", json={"email": address}).status_code == 202
        assert smtp.sink.holding.wait(30), "the sender never reached DATA"
        for _ in range(3):
            assert Api(server.url).sign_up().get("/api/me").status_code == 200
            assert member.post("/api/password-reset", json={"email": address}).status_code == 202
        assert not smtp.sink.hold.is_set() and smtp.to(address) == []  # all of that while the server held
        smtp.sink.hold.set()
        wait(lambda: len(smtp.to(address)) >= 4, what="the four mails")
        wait(lambda: all(r["sent_at"] for r in outbox(pg_url, address)), what="all marked sent")
        time.sleep(1.0)
        ids = [str(m["Message-ID"]) for m in smtp.to(address)]
        assert len(ids) == 4 and len(set(ids)) == 4
    finally:
        smtp.sink.hold.set()
        smtp.stop()


def test_two_processes_send_each_mail_once(spawn: Any, pg_url: str) -> None:
    """Two processes share one outbox: 60 queued mails arrive once each (FOR UPDATE SKIP LOCKED, leases)."""
    smtp = SmtpServer().start()
    try:
        spawn(**mail_env(smtp))
        spawn(**mail_env(smtp))
        to = f"{unique('bulk')}@mail.example.org"
        for n in range(60):
            message = (f"From: {MAIL_FROM}\r\nTo: {to}\r\nSubject: bulk {n}\r\nMessage-ID: <bulk{n}.{to}>\r\n\r\n"
                       f"Mail number {n}\r\n")
            db_fetch(pg_url, "INSERT INTO mail_outbox (kind, recipient, message) VALUES ('digest', $1, $2)",
                     to, message)
        wait(lambda: len(smtp.to(to)) >= 60, what="60 mails")
        wait(lambda: db_fetchval(pg_url, "SELECT count(*) FROM mail_outbox WHERE recipient = $1 AND sent_at IS NULL",
                                 to) == 0, what="all marked sent")
        time.sleep(1.0)
        subjects = sorted(str(m["Subject"]) for m in smtp.to(to))
        assert subjects == sorted(f"bulk {n}" for n in range(60))
    finally:
        smtp.stop()
