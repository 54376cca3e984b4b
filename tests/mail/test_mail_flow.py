"""E-mail end to end against a real SMTP server (aiosmtpd): password reset, notification mail for people who
are away (one mail for a thread's notifications, none once read, none with `never`, none while a socket is
open), the headers mail clients thread by, one-click unsubscribe without a session."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from mail_support import looked_at, member, thread_of
from support.api import Api
from support.databases import db_fetchval
from support.smtp import link, text_of, token

NEW_PASSWORD = "a much better password"


def test_password_reset_end_to_end(mail_server: Any, smtp: Any) -> None:
    """A reset link comes to the verified address; it signs in with the new password and ends every older
    session; used again it is 422; an unknown address gets the same 202 and no mail."""
    m = member(mail_server.url, smtp)
    other_tab = Api(mail_server.url)
    assert other_tab.post("/api/session", json={"username": m.user["username"],
                                                 "password": "correct horse battery"}).status_code == 200
    stranger = Api(mail_server.url)
    asked = stranger.post("/api/password-reset", json={"email": m.email.upper()})
    assert asked.status_code == 202, asked.text
    mail = smtp.wait_for(m.email, 2)[-1]
    assert "Reset your Parley password" in str(mail["Subject"])
    reset = link(mail, "/reset-password")
    assert reset.startswith(mail_server.url + "/reset-password?token=")
    r = stranger.post("/api/password-reset/confirm", json={"token": token(mail, "/reset-password"),
                                                            "new_password": NEW_PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["id"] == m.user["id"], r.text
    assert stranger.get("/api/me").status_code == 200  # signed in by the answer's cookie
    assert m.get("/api/me").status_code == 401 and other_tab.get("/api/me").status_code == 401
    again = stranger.post("/api/password-reset/confirm", json={"token": token(mail, "/reset-password"),
                                                                "new_password": "yet another password"})
    assert again.status_code == 422 and again.json()["error"]["field"] == "token", again.text
    assert Api(mail_server.url).post("/api/session", json={"username": m.user["username"],
                                                            "password": NEW_PASSWORD}).status_code == 200
    before = len(smtp.messages)
    nobody = stranger.post("/api/password-reset", json={"email": "nobody-at-all@mail.example.org"})
    assert nobody.status_code == 202 and nobody.json() == asked.json() == {"accepted": True}
    time.sleep(1.0)
    assert len(smtp.messages) == before


def test_an_away_user_gets_one_mail_for_two_notifications(mail_server: Any, smtp: Any, category: str,
                                                          pg_url: str) -> None:
    """Two responses within the delay make one mail (both posts linked), and nothing more once looked at."""
    asker = member(mail_server.url, smtp)
    answerer = Api(mail_server.url).sign_up()
    t = thread_of(asker, category)
    tid = t["thread"]["id"]
    ids = []
    for body in ("First answer", "Second answer"):
        r = answerer.post(f"/api/threads/{tid}/posts", json={"body": body})
        assert r.status_code == 201, r.text
        ids.append(r.json()["post"]["id"])
    mails = smtp.wait_for(asker.email, 2)  # the verification mail, then the notification
    looked_at(pg_url, asker.user["id"])
    time.sleep(0.5)
    notes = [m for m in smtp.to(asker.email) if "thread." in str(m["Message-ID"])]
    assert len(notes) == 1, [str(m["Subject"]) for m in smtp.to(asker.email)]
    text = text_of(notes[0])
    assert "First answer" in text and "Second answer" in text
    for pid in ids:
        assert f"{mail_server.url}/t/{tid}#post-{pid}" in text
    assert mails


def test_notification_mail_headers(mail_server: Any, smtp: Any, category: str, pg_url: str) -> None:
    """Message-ID, In-Reply-To/References on the thread's root (one conversation per thread), List-Id,
    Auto-Submitted, List-Unsubscribe with List-Unsubscribe-Post, a Reply-To key, a text and an HTML part."""
    asker = member(mail_server.url, smtp, email_notifications="always")
    answerer = Api(mail_server.url).sign_up()
    tid = thread_of(asker, category, "Headers <&> title")["thread"]["id"]
    mails = []
    for n in (1, 2):
        assert answerer.post(f"/api/threads/{tid}/posts", json={"body": f"Answer {n}"}).status_code == 201
        mails.append(smtp.wait_for(asker.email, 1 + n)[-1])
        looked_at(pg_url, asker.user["id"])
    root = f"<thread.{tid}@parley.example>"
    ids = set()
    for mail in mails:
        assert str(mail["Subject"]) == "[Parley] Headers <&> title"
        assert str(mail["In-Reply-To"]) == root and str(mail["References"]) == root
        assert str(mail["Message-ID"]).startswith(f"<thread.{tid}.") and str(mail["Message-ID"]).endswith(
            "@parley.example>")
        ids.add(str(mail["Message-ID"]))
        assert "<notifications." in str(mail["List-Id"])
        assert str(mail["Auto-Submitted"]) == "auto-generated"
        unsub = str(mail["List-Unsubscribe"])
        assert unsub.startswith(f"<{mail_server.url}/unsubscribe?token=") and unsub.endswith(">")
        assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert str(mail["Reply-To"]).startswith(f"forum+r{asker.user['id']}-{tid}-")
        assert mail.get_content_type() == "multipart/alternative"
        html = mail.get_body(preferencelist=("html",)).get_content()
        assert "Headers &lt;&amp;&gt; title" in html and "<&>" not in html.split("<body", 1)[1]
        assert str(mail["From"]) == "Parley Test <forum@parley.example>"
    assert len(ids) == 2


def test_no_mail_when_read_first_or_never_or_online(mail_server: Any, smtp: Any, category: str, pg_url: str,
                                                     watchers: Any) -> None:
    """A notification read before it is due, any of a `never` user's, and an `away` user's while a socket of
    theirs is open are never mailed; with `always` the open socket does not matter."""
    reader = member(mail_server.url, smtp)
    never = member(mail_server.url, smtp, email_notifications="never")
    online = member(mail_server.url, smtp)
    always = member(mail_server.url, smtp, email_notifications="always")
    answerer = Api(mail_server.url).sign_up()
    ws_url = mail_server.url.replace("http", "ws") + "/ws"

    async def run() -> None:
        await watchers(ws_url, online.session_cookie)
        await watchers(ws_url, always.session_cookie)
        threads = {}
        for who in (reader, never, online, always):
            threads[who.user["id"]] = thread_of(who, category)["thread"]["id"]
        for tid in threads.values():
            assert answerer.post(f"/api/threads/{tid}/posts", json={"body": "An answer"}).status_code == 201
        r = reader.post("/api/notifications/read", json={"all": True})
        assert r.status_code == 200 and r.json()["unread"] == 0, r.text
        # The precondition: read before the worker looked (it looks PARLEY_MAIL_DELAY_SECONDS after).
        assert db_fetchval(pg_url, "SELECT count(*) FROM notifications WHERE user_id = $1 AND mail = 'due'",
                           reader.user["id"]) == 1, "this machine took longer than the mail delay to read it"
        for who in (reader, never, online, always):
            await asyncio.to_thread(looked_at, pg_url, who.user["id"])
    asyncio.run(run())
    time.sleep(0.5)
    for who in (reader, never, online):
        assert len(smtp.to(who.email)) == 1, (who.user["username"], [str(m["Subject"]) for m in smtp.to(who.email)])
    assert len(smtp.to(always.email)) == 2


def test_one_click_unsubscribe_needs_no_session(mail_server: Any, smtp: Any, category: str, pg_url: str) -> None:
    """The List-Unsubscribe URL: a GET is a page and changes nothing; a POST of the RFC 8058 form with no cookie
    sets `never`; the same URL again is 422."""
    asker = member(mail_server.url, smtp, email_notifications="always")
    answerer = Api(mail_server.url).sign_up()
    tid = thread_of(asker, category)["thread"]["id"]
    assert answerer.post(f"/api/threads/{tid}/posts", json={"body": "An answer"}).status_code == 201
    mail = smtp.wait_for(asker.email, 2)[-1]
    url = str(mail["List-Unsubscribe"]).strip("<>")
    assert urlsplit(url).path == "/unsubscribe"
    with httpx.Client(timeout=30) as anon:
        page = anon.get(url)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert asker.get("/api/me/preferences").json()["preferences"]["email_notifications"] == "always"
        r = anon.post(url, content=b"List-Unsubscribe=One-Click",
                      headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://mail.example"})
        assert r.status_code == 200, r.text
        assert r.json() == {"unsubscribed": True, "preferences": {"email_notifications": "never", "digest": "weekly"}}
        assert asker.get("/api/me/preferences").json()["preferences"]["email_notifications"] == "never"
        again = anon.post(url, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert again.status_code == 422 and again.json()["error"]["field"] == "token", again.text
