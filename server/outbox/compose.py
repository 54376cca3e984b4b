"""Every mail Parley sends, built from Jinja2 templates (templates/*.txt and *.html, the HTML escaped).

A mail is composed once, when it is queued, and stored whole in the outbox (store/outbox.py): its
Message-ID is fixed then, so a retry sends the same message. Links are built from PARLEY_PUBLIC_URL
(never from a request's Host header, which anyone can forge: a reset link must not point elsewhere).

Headers of a notification mail (CONTRACT "E-mail"): a Message-ID of its own; In-Reply-To and References
naming the thread's root id `<thread.ID@DOMAIN>`, so mail clients keep one conversation per thread (as
Discourse does); List-Id; Auto-Submitted: auto-generated (and X-Auto-Response-Suppress, so vacation
replies stay away); List-Unsubscribe with List-Unsubscribe-Post (RFC 8058); Reply-To the thread's
reply-by-mail address (outbox/keys.py).
"""

from __future__ import annotations

import email.policy
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email import charset
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..config import Settings
from . import keys

SITE = "Parley"
EXCERPT = 600  # characters of a post quoted in a notification mail
DEFAULT_PUBLIC_URL = "http://localhost:8000"
# The compat32 MIME classes, not EmailMessage: the same message for an eighth of the CPU (the modern header
# registry builds a class per header set; bench/README.md "Mail"). Headers are set by _set(); an ASCII value
# is never turned into RFC 2047 encoded words (List-Unsubscribe stays a plain <URL>), a non-ASCII subject is.
POLICY = email.policy.compat32.clone(linesep="\r\n")
UTF8_QP = charset.Charset("utf-8")
UTF8_QP.header_encoding = charset.QP
UTF8_QP.body_encoding = charset.QP  # 7-bit safe for any server
KIND_TEXT = {
    "response": "answered your question",
    "comment": "commented",
    "mention": "mentioned you",
    "accepted": "accepted your answer",
    "followed": "replied in a thread you follow",
    "tagged": "asked a question with a tag you follow",
}

if TYPE_CHECKING:
    import jinja2


@cache
def _env() -> jinja2.Environment:
    """The templates, loaded with the first mail composed: importing jinja2 cost every start ~30 ms of CPU, and
    many processes never compose a mail."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("server.outbox", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


@dataclass(frozen=True)
class Mail:
    """A composed mail: who it goes to and the whole message (RFC 5322, CRLF line ends)."""

    kind: str
    recipient: str
    message: str


def one_line(text: str) -> str:
    """Header-safe: every run of white space (line breaks included) as one space."""
    return " ".join(text.split())


def excerpt(body: str, limit: int = EXCERPT) -> str:
    body = body.strip()
    return body if len(body) <= limit else body[:limit].rstrip() + "…"


class Composer:
    """Builds mails for one deployment's settings."""

    def __init__(self, settings: Settings) -> None:
        self.public = settings.public_url or DEFAULT_PUBLIC_URL
        self.secret = settings.secret
        header = HeaderRegistry()("from", settings.mail_from)
        self.sender: Address = header.addresses[0]  # type: ignore[attr-defined]
        self.from_header = formataddr((self.sender.display_name, self.sender.addr_spec), charset="utf-8")
        self.domain = self.sender.domain
        host = urlsplit(self.public).hostname or "localhost"
        self.list_id = f"{SITE} notifications <notifications.{host}>"
        self.inbound = settings.smtp_listen is not None

    def url(self, path: str, **query: str) -> str:
        q = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        return f"{self.public}{path}" + (f"?{q}" if q else "")

    def _message(self, to: str, subject: str, template: str, context: dict[str, Any],
                 msgid: str | None = None) -> Message:
        ctx = {"site": SITE, "public_url": self.public, **context}
        # typeshed says a charset name; the class takes a Charset too (email.mime.text: set_payload)
        text = MIMEText(_env().get_template(f"{template}.txt").render(ctx), "plain", UTF8_QP, policy=POLICY)  # type: ignore[arg-type]
        html = MIMEText(_env().get_template(f"{template}.html").render(ctx), "html", UTF8_QP, policy=POLICY)  # type: ignore[arg-type]
        # A boundary of our own: "=_" never occurs in quoted-printable text, so the generator need not search
        # the parts for it (it compiles a regular expression per message to do so).
        msg = MIMEMultipart("alternative", boundary=f"=_parley_{secrets.token_hex(12)}", _subparts=[text, html],
                            policy=POLICY)
        subject = one_line(subject)
        self._set(msg, "From", self.from_header)
        self._set(msg, "To", to)
        self._set(msg, "Subject", subject if subject.isascii() else Header(subject, "utf-8"))
        self._set(msg, "Date", format_datetime(datetime.now(UTC)))
        self._set(msg, "Message-ID", msgid or make_msgid(idstring=secrets.token_hex(4), domain=self.domain))
        self._set(msg, "Auto-Submitted", "auto-generated")
        self._set(msg, "X-Auto-Response-Suppress", "All")
        return msg

    @staticmethod
    def _set(msg: Message, name: str, value: str | Header) -> None:
        """Every header goes through here: no value may hold a line break (the generator also refuses an
        embedded header), so nothing from a title or a name can add a header of its own."""
        if isinstance(value, str) and ("\r" in value or "\n" in value):
            raise ValueError(f"a line break in the {name} header")
        msg[name] = value  # type: ignore[assignment]  # a Header is what compat32 takes for an encoded value

    def _unsubscribe(self, msg: Message, token: str) -> str:
        url = self.url("/unsubscribe", token=token)
        self._set(msg, "List-Unsubscribe", f"<{url}>")
        self._set(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        return url

    @staticmethod
    def _done(kind: str, to: str, msg: Message) -> Mail:
        return Mail(kind, to, msg.as_string())

    def verify(self, to: str, user: dict[str, Any], token: str) -> Mail:
        link = self.url("/verify-email", token=token)
        msg = self._message(to, f"Confirm your e-mail address for {SITE}", "verify",
                            {"user": user, "link": link, "email": to})
        return self._done("verify", to, msg)

    def reset(self, to: str, user: dict[str, Any], token: str) -> Mail:
        link = self.url("/reset-password", token=token)
        msg = self._message(to, f"Reset your {SITE} password", "reset", {"user": user, "link": link})
        return self._done("reset", to, msg)

    def notification(self, to: str, user: dict[str, Any], thread: dict[str, Any], items: list[dict[str, Any]],
                     epoch: int) -> Mail:
        """One mail for a user's due notifications in one thread (items oldest first: kind, actor, post_id,
        body)."""
        root = f"<thread.{thread['id']}@{self.domain}>"
        msgid = f"<thread.{thread['id']}.u{user['id']}.{secrets.token_hex(8)}@{self.domain}>"
        for item in items:
            item["what"] = KIND_TEXT.get(item["kind"], "wrote")
            item["url"] = self.url(f"/t/{thread['id']}") + f"#post-{item['post_id']}"
            item["excerpt"] = excerpt(item["body"])
        token = keys.unsubscribe_token(self.secret, user["id"], "n", epoch)
        context = {"user": user, "thread": thread, "items": items, "inbound": self.inbound,
                   "thread_url": self.url(f"/t/{thread['id']}"), "settings_url": self.url("/settings"),
                   "unsubscribe_url": self.url("/unsubscribe", token=token)}
        msg = self._message(to, f"[{SITE}] {thread['title']}", "notification", context, msgid)
        self._set(msg, "In-Reply-To", root)
        self._set(msg, "References", root)
        self._set(msg, "List-Id", self.list_id)
        self._unsubscribe(msg, token)
        if self.inbound:
            self._set(msg, "Reply-To", keys.reply_address(self.secret, self.sender, user["id"], thread["id"]))
        return self._done("notification", to, msg)

    def digest(self, to: str, user: dict[str, Any], threads: list[dict[str, Any]], period: str,
               epoch: int) -> Mail:
        for t in threads:
            t["url"] = self.url(f"/t/{t['id']}")
        token = keys.unsubscribe_token(self.secret, user["id"], "d", epoch)
        context = {"user": user, "threads": threads, "period": period, "settings_url": self.url("/settings"),
                   "unsubscribe_url": self.url("/unsubscribe", token=token)}
        label = "this week" if period == "weekly" else "today"
        msg = self._message(to, f"[{SITE}] What was new {label}", "digest", context)
        self._set(msg, "List-Id", f"{SITE} digest <digest.{urlsplit(self.public).hostname or 'localhost'}>")
        self._unsubscribe(msg, token)
        return self._done("digest", to, msg)
