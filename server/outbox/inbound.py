"""Reply by e-mail: an SMTP listener (aiosmtpd) on PARLEY_SMTP_LISTEN in every `parley serve` process
(SO_REUSEPORT: several processes share the port). docs/operations.md "E-mail: inbound".

A notification mail's Reply-To is `LOCAL+r{user}-{thread}-{sig}@DOMAIN` (outbox/keys.py). Mail to such an
address becomes a response in that thread by that user, through the same function and checks as the HTTP
write (api/forum.make_post after the user's post bucket, the suspension, the body's rules; a locked or
deleted thread is refused by the store; the live event and notifications follow from after_commit).
The mail's From must be the user's verified address (a forwarded notification does not let its new
reader post as the member). Quoted text and signatures are removed by mail-parser-reply.

Answers, all in the SMTP conversation (no bounce mail of our own, so no backscatter):
- RCPT of an address that is not a good key: 550; a second recipient: 452;
- over MAX_BYTES: 552 (aiosmtpd refuses it while reading);
- an automatic reply (Auto-Submitted other than `no`, X-Autoreply, Precedence auto_reply/bulk/junk):
  250 and dropped, so an auto-responder gets no bounce to answer;
- anything that does not qualify (unknown or suspended user, wrong sender, a thread that is gone or
  locked, nothing left once quotes are removed, a body the rules refuse): 550 with a short reason;
- a rate limit or a database that is away: 451 (the sending server tries again later);
- posted: 250. The Message-ID is the post's idempotency key: a server that sends it again after a broken
  connection makes no second post.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import logging
import socket
from email import errors
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session
from mailparser_reply import EmailReplyParser

from .. import metrics
from ..errors import ApiError, NotFound, RateLimited, Unavailable
from ..store import users
from . import keys

if TYPE_CHECKING:
    from ..state import AppState

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 20       # a whole message; a reply is at most 20,000 characters of text
MAX_TEXT = 64 * 1024      # characters of text handed to the reply parser
PARSE_SECONDS = 5.0       # the reply parser's budget
TIMEOUT = 60.0            # an idle SMTP connection is closed after this
LANGUAGES = ["en", "de", "cs", "da", "es", "fr", "it", "ja", "ko", "nl", "pl", "sv", "zh"]
AUTOMATIC_PRECEDENCE = {"auto_reply", "bulk", "junk"}


class HtmlText(HTMLParser):
    """The text of an HTML part, blocks on lines of their own, without what a reader does not read as the
    reply: quoted blocks (<blockquote>), styles, scripts and the head."""

    SKIP = {"blockquote", "style", "script", "head", "title"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)

    @classmethod
    def text(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        return "".join(parser.parts)


# MIME structure or transfer-encoding damage: the message cannot be read as its sender meant (email.errors).
MALFORMED = (errors.StartBoundaryNotFoundDefect, errors.CloseBoundaryNotFoundDefect, errors.NoBoundaryInMultipartDefect,
             errors.MultipartInvariantViolationDefect, errors.InvalidMultipartContentTransferEncodingDefect,
             errors.InvalidBase64PaddingDefect, errors.InvalidBase64CharactersDefect, errors.InvalidBase64LengthDefect,
             errors.MissingHeaderBodySeparatorDefect)


def malformed(msg: EmailMessage) -> bool:
    return any(isinstance(d, MALFORMED) for part in msg.walk() for d in part.defects)


def automatic(msg: EmailMessage) -> bool:
    """Whether the message says it was sent by a program (RFC 3834 Auto-Submitted, and the common others)."""
    submitted = str(msg.get("Auto-Submitted", "no")).split(";")[0].strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    return submitted != "no" or precedence in AUTOMATIC_PRECEDENCE or "X-Autoreply" in msg or "X-Autorespond" in msg


def body_text(msg: EmailMessage) -> str:
    """The reply's own words: its text/plain part (or its HTML as text), quoted text and signature removed."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = part.get_content()
    if not isinstance(text, str):
        return ""
    if part.get_content_subtype() == "html":
        text = HtmlText.text(text)
    text = text.replace("\r\n", "\n")[:MAX_TEXT]
    replies = EmailReplyParser(languages=LANGUAGES).read(text=text).replies
    # The first part is the reply's own text, unless it opens with a quote header ("On … wrote:"): then the
    # mail holds only the quoted message, and nothing of its own.
    if not replies or replies[0].headers:
        return ""
    return str(replies[0].body).strip()


def sender_addresses(msg: EmailMessage) -> set[str]:
    header = msg.get("From")
    return {a.addr_spec.lower() for a in getattr(header, "addresses", ())}


class Replies:
    """The aiosmtpd handler: RCPT checks the key, DATA posts."""

    def __init__(self, st: AppState) -> None:
        self.st = st

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if keys.parse_reply_address(self.st.settings.secret, address) is None:
            metrics.INBOUND_MAIL.labels("unknown_key").inc()
            return "550 5.1.1 No such recipient here"
        if envelope.rcpt_tos:
            return "452 4.5.3 One recipient per message"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        try:
            outcome, reply = await self.deliver(envelope)
        except Exception:
            log.exception("reply by mail: unexpected failure (the sender will try again)")
            outcome, reply = "error", "451 4.3.0 Something went wrong on our side; try again later"
        metrics.INBOUND_MAIL.labels(outcome).inc()
        return reply

    async def deliver(self, envelope: Envelope) -> tuple[str, str]:
        st = self.st
        target = keys.parse_reply_address(st.settings.secret, envelope.rcpt_tos[0]) if envelope.rcpt_tos else None
        if target is None:
            return "unknown_key", "550 5.1.1 No such recipient here"
        user_id, thread_id = target
        raw = envelope.original_content or envelope.content or b""
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "replace")
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            auto = automatic(msg)  # type: ignore[arg-type]
            senders = sender_addresses(msg)  # type: ignore[arg-type]
            broken = malformed(msg)  # type: ignore[arg-type]
        except Exception:
            return "malformed", "550 5.6.0 This message could not be read"
        if auto:
            return "automatic", "250 2.0.0 Automatic reply dropped"
        if broken:
            return "malformed", "550 5.6.0 This message's MIME structure is damaged"
        user = await users.by_id(st.pool, user_id)
        if user is None:
            return "unknown_key", "550 5.1.1 No such recipient here"
        if not user["email_verified"] or (user["email"] or "").lower() not in senders:
            return "wrong_sender", "550 5.7.1 Send your reply from the address your notifications go to"
        if users.suspended(user):
            return "suspended", "550 5.7.1 This account is suspended"
        try:
            text = await asyncio.wait_for(asyncio.to_thread(body_text, msg), PARSE_SECONDS)  # type: ignore[arg-type]
        except TimeoutError:
            return "malformed", "550 5.6.0 This message could not be read in time"
        except Exception:
            return "malformed", "550 5.6.0 This message could not be read"
        return await self.post(user, thread_id, text, msg)

    async def post(self, user: Any, thread_id: int, text: str, msg: EmailMessage) -> tuple[str, str]:
        from ..api.common import BUCKETS, limit
        from ..api.forum import BODY, make_post
        st = self.st
        if not text.strip():
            return "empty", "550 5.6.0 Nothing to post: the reply is empty once quoted text is left out"
        msgid = str(msg.get("Message-ID", "")).strip()
        key = "mail:" + hashlib.sha256(msgid.encode()).hexdigest()[:40] if msgid else None
        try:
            body = BODY.check(text, "body") or ""
            await limit(st, f"post:{user['id']}", BUCKETS["post"](st.settings.limits))
            post, created = await make_post(st, user, thread_id, body, None, key)
        except RateLimited:
            return "rate_limited", "451 4.7.1 Too many posts just now; try again later"
        except NotFound:
            return "gone", "550 5.1.1 That thread is gone"
        except Unavailable:
            return "unavailable", "451 4.3.0 Try again later"
        except ApiError as exc:  # the body's rules (422), a locked thread (409), …
            return "refused", f"550 5.7.1 {_short(exc.message)}"
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("reply by mail: %s", exc)
            return "unavailable", "451 4.3.0 Try again later"
        log.info("reply by mail: post %s by user %s in thread %s%s", post["id"], user["id"], thread_id,
                 "" if created else " (sent again: the first post stands)")
        return "posted", "250 2.0.0 Posted"


def _short(text: str) -> str:
    return " ".join(text.split())[:200]


async def start(st: AppState, host: str, port: int) -> asyncio.AbstractServer:
    """Listen for replies; SO_REUSEPORT lets every process of `--workers N` bind the same port."""
    loop = asyncio.get_running_loop()
    handler = Replies(st)

    def protocol() -> SMTP:
        return SMTP(handler, data_size_limit=MAX_BYTES, enable_SMTPUTF8=False, ident="Parley", timeout=TIMEOUT,
                    hostname=socket.getfqdn() if host in ("0.0.0.0", "::") else host)

    return await loop.create_server(protocol, host, port, reuse_port=True)
