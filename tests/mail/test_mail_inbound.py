"""Reply by e-mail: a reply sent with smtplib to the listener becomes a response by that user, live on
another socket, its quoted text and signature left out; mail that does not qualify is refused in the SMTP
conversation (or, an automatic reply, dropped) and posts nothing."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import pytest

from mail_support import looked_at, member, thread_of
from support.api import Api
from support.databases import db_fetchval


def notified(mail_server: Any, smtp: Any, category: str, pg_url: str) -> tuple[Api, int, str]:
    """A member with a notification mail for a thread of theirs: (member, thread id, its Reply-To)."""
    asker = member(mail_server.url, smtp, email_notifications="always")
    tid = thread_of(asker, category)["thread"]["id"]
    answerer = Api(mail_server.url).sign_up()
    assert answerer.post(f"/api/threads/{tid}/posts", json={"body": "An answer"}).status_code == 201
    mail = smtp.wait_for(asker.email, 2)[-1]
    looked_at(pg_url, asker.user["id"])
    return asker, tid, str(mail["Reply-To"])


def reply(frm: str, to: str, text: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = frm, to, "Re: [Parley] A question by mail"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def send(mail_server: Any, msg: EmailMessage | bytes, to: str, frm: str = "someone@mail.example.org") -> None:
    with smtplib.SMTP("127.0.0.1", mail_server.smtp_port, timeout=30) as s:
        if isinstance(msg, bytes):
            s.sendmail(frm, [to], msg)
        else:
            s.send_message(msg)


def responses(pg_url: str, tid: int) -> int:
    return db_fetchval(pg_url, "SELECT count(*) FROM posts WHERE thread_id = $1 AND kind = 'response'", tid)


QUOTED = """Thanks, that settles it.

On Sun, 6 Dec 2026 at 10:00, Parley <forum@parley.example> wrote:
> Someone answered your question:
> An answer

-- 
Ada, sent from the road
"""


def test_a_reply_by_mail_appears_live_on_another_socket(mail_server: Any, smtp: Any, category: str, pg_url: str,
                                                        watchers: Any) -> None:
    """The reply is a response by the member in that thread, live on a guest's socket, without the quoted mail
    or the signature; the same message sent again (a retry) makes no second post."""
    asker, tid, reply_to = notified(mail_server, smtp, category, pg_url)

    async def run() -> dict[str, Any]:
        w = await watchers(mail_server.url.replace("http", "ws") + "/ws")
        await w.send({"type": "subscribe", "thread": tid})
        await w.wait_for(lambda f: f["type"] == "subscribed")
        msg = reply(asker.email, reply_to, QUOTED, Message_ID="<reply-1@mail.example.org>")
        await asyncio.to_thread(send, mail_server, msg, reply_to)
        frame = await w.wait_for(lambda f: f["type"] == "event" and f["name"] == "post.created"
                                 and f["data"]["author"]["id"] == asker.user["id"])
        await asyncio.to_thread(send, mail_server, msg, reply_to)
        return frame
    frame = asyncio.run(run())
    assert frame["data"]["body"] == "Thanks, that settles it."
    assert frame["data"]["kind"] == "response" and frame["thread"] == tid
    assert responses(pg_url, tid) == 2  # the answer and the one reply: the resent message made nothing


@pytest.mark.parametrize("case", ["wrong_sender", "locked", "empty", "suspended"])
def test_mail_that_does_not_qualify_is_refused(mail_server: Any, smtp: Any, category: str, pg_url: str,
                                                case: str) -> None:
    """From another address, into a locked thread, with nothing left once the quote goes, or by a suspended
    member: a 5xx in the conversation, and no post."""
    from support.databases import db_fetch
    asker, tid, reply_to = notified(mail_server, smtp, category, pg_url)
    frm, text = asker.email, "A fine reply"
    if case == "wrong_sender":
        frm = "intruder@mail.example.org"
    elif case == "locked":
        db_fetch(pg_url, "UPDATE threads SET locked = true WHERE id = $1", tid)
    elif case == "empty":
        text = "On Sun, 6 Dec 2026 at 10:00, Parley wrote:\n> An answer\n"
    elif case == "suspended":
        db_fetch(pg_url, "UPDATE users SET suspended_until = now() + interval '1 day' WHERE id = $1", asker.user["id"])
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(mail_server, reply(frm, reply_to, text), reply_to)
    assert 500 <= refused.value.smtp_code < 600, refused.value
    assert responses(pg_url, tid) == 1


def test_unknown_keys_huge_and_malformed_mail_and_auto_replies_post_nothing(mail_server: Any, smtp: Any,
                                                                            category: str, pg_url: str) -> None:
    """A forged or unknown key is refused at RCPT; a message over 1 MiB is refused (552); damaged MIME is
    refused (5xx); an Auto-Submitted reply is accepted and dropped; none posts, and the server is fine."""
    asker, tid, reply_to = notified(mail_server, smtp, category, pg_url)
    local, domain = reply_to.split("@")
    forged = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    for rcpt in (forged, "forum@parley.example", "forum+r1-1-00000000000000000000@parley.example"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(mail_server, reply(asker.email, rcpt, "Hello"), rcpt)
        assert refused.value.recipients[rcpt][0] == 550
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPServerDisconnected)):
        send(mail_server, reply(asker.email, reply_to, "x" * (1 << 20) + "\n"), reply_to)
    broken = (f"From: {asker.email}\r\nTo: {reply_to}\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n--zz\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
              "\r\n\xff\xfe====\r\n--zz").encode("latin-1")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(mail_server, broken, reply_to, asker.email)
    assert 500 <= refused.value.smtp_code < 600, refused.value
    send(mail_server, reply(asker.email, reply_to, "I am away until Monday.", Auto_Submitted="auto-replied"),
         reply_to)
    assert responses(pg_url, tid) == 1
    assert Api(mail_server.url).get("/healthz").status_code == 200
