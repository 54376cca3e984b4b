"""The keys a mail carries: a reply-by-mail address and a one-click unsubscribe token.

Both are signed with PARLEY_SECRET (HMAC-SHA256), so nothing is stored per mail:

- A reply address is `LOCAL+r{user}-{thread}-{sig}@DOMAIN` (LOCAL and DOMAIN those of PARLEY_MAIL_FROM):
  it names the user and the thread, and only the server can make one. Lower-case hex, because some mail
  servers fold the local part's case.
- An unsubscribe token is `{user}.{list}.{sig}` where the signature also covers the user's
  unsubscribe_epoch: using a token raises the epoch (store/addresses.py), so a link works until it is used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from email.headerregistry import Address

REPLY_SIG = 20  # hex digits: 80 bits
UNSUB_SIG = 32
LISTS = ("n", "d")  # notifications (email_notifications → never), digest (digest → off)
_REPLY = re.compile(rf"r([1-9][0-9]{{0,18}})-([1-9][0-9]{{0,18}})-([0-9a-f]{{{REPLY_SIG}}})")
_UNSUB = re.compile(rf"([1-9][0-9]{{0,18}})\.([nd])\.([0-9a-f]{{{UNSUB_SIG}}})")


def _sig(secret: str, text: str, length: int) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:length]


def reply_address(secret: str, sender: Address, user_id: int, thread_id: int) -> str:
    """The Reply-To of a notification mail: where a reply by `user_id` in `thread_id` goes."""
    key = f"r{user_id}-{thread_id}-{_sig(secret, f'reply:{user_id}:{thread_id}', REPLY_SIG)}"
    return f"{sender.username}+{key}@{sender.domain}"


def parse_reply_address(secret: str, address: str) -> tuple[int, int] | None:
    """(user id, thread id) of a reply address this server made, else None (any domain: the operator
    routes the mail here; the key is what counts)."""
    local = address.rpartition("@")[0].strip("<>").lower()
    key = local.rpartition("+")[2]
    m = _REPLY.fullmatch(key)
    if m is None:
        return None
    user_id, thread_id, sig = int(m.group(1)), int(m.group(2)), m.group(3)
    if not hmac.compare_digest(sig, _sig(secret, f"reply:{user_id}:{thread_id}", REPLY_SIG)):
        return None
    return user_id, thread_id


def unsubscribe_token(secret: str, user_id: int, list_: str, epoch: int) -> str:
    return f"{user_id}.{list_}.{_sig(secret, f'unsubscribe:{user_id}:{list_}:{epoch}', UNSUB_SIG)}"


def parse_unsubscribe(token: str) -> tuple[int, str, str] | None:
    """(user id, list, signature) of a well-formed token; the caller checks it against the user's epoch."""
    m = _UNSUB.fullmatch(token)
    return (int(m.group(1)), m.group(2), m.group(3)) if m else None


def unsubscribe_ok(secret: str, user_id: int, list_: str, epoch: int, sig: str) -> bool:
    return hmac.compare_digest(sig, _sig(secret, f"unsubscribe:{user_id}:{list_}:{epoch}", UNSUB_SIG))
