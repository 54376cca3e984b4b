"""New-account limits under PARLEY_TRUST=standard (CONTRACT rev. 3 "Trust and spam"; docs/moderation.md).

An account under privileges.NEW_ACCOUNT reputation may put at most limits.NEW_ACCOUNT_LINKS links,
NEW_ACCOUNT_IMAGES images and NEW_ACCOUNT_MENTIONS mentions in a post (422 field `body`, whatever
PARLEY_RATE_LIMITS says), and open at most NEW_ACCOUNT_THREADS_PER_DAY threads a day (a rate limit: 429).

The post is counted as it is RENDERED (server/render.py, then our uploads placed and mentions linked), never as
typed: a link is a link however it was written (a bare URL, an autolink, a reference link, an entity-escaped
URL all become one `<a href>`), an image from elsewhere is shown as a link and counts as one, and a mention is
the `<a class="mention">` the server made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import asyncpg

from . import limits, privileges
from .errors import Forbidden, Invalid, RateLimited
from .state import AppState
from .store import threads


class _Counter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links = self.images = self.mentions = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images += 1
        elif tag == "a" and a.get("href"):
            if "mention" in (a.get("class") or "").split():
                self.mentions += 1
            elif not (a.get("href") or "").startswith("#"):  # a link within the page itself leads nowhere
                self.links += 1


def count(html: str) -> tuple[int, int, int]:
    """(links, images, mentions) in a rendered post."""
    counter = _Counter()
    counter.feed(html)
    counter.close()
    return counter.links, counter.images, counter.mentions


def check_post(user: Any, preset: str, html: str, mentioned: list[int]) -> None:
    """422 field `body` when a new account's rendered post holds more links, images or mentions than it may."""
    if not privileges.is_new(user, preset):
        return
    links, images, mention_links = count(html)
    mentions = max(len(set(mentioned)), mention_links)
    for got, most, what in ((links, limits.NEW_ACCOUNT_LINKS, "links"), (images, limits.NEW_ACCOUNT_IMAGES, "images"),
                            (mentions, limits.NEW_ACCOUNT_MENTIONS, "mentions")):
        if got > most:
            raise Invalid(f"New accounts (under {privileges.NEW_ACCOUNT} reputation) may put at most {most} {what} "
                          f"in a post; this one has {got}", field="body")


async def check_new_thread(st: AppState, user: Any, conn: asyncpg.Connection | None = None) -> None:
    """429 (Retry-After: when the oldest of them is a day old) when a new account already opened its threads of
    the last 24 hours. A rate limit: off with PARLEY_RATE_LIMITS=off. Called twice by a new thread: before any work
    (on the pool, to refuse cheaply) and again with `conn` inside the transaction that writes it, under the
    author's lock (store/threads.opened_since), which is the check that holds when requests race."""
    if not st.settings.rate_limits_enabled or not privileges.is_new(user, st.settings.trust):
        return
    if conn is None:
        opened = await threads.opened_since(st.pool, user["id"], 24)
    else:
        opened = await threads.opened_since(conn, user["id"], 24, lock=True)
    if len(opened) >= limits.NEW_ACCOUNT_THREADS_PER_DAY:
        free_at = opened[-limits.NEW_ACCOUNT_THREADS_PER_DAY] + timedelta(days=1)
        raise RateLimited((free_at - datetime.now(UTC)).total_seconds(),
                          f"New accounts may open at most {limits.NEW_ACCOUNT_THREADS_PER_DAY} threads a day")


def check_not_silenced(user: Any) -> None:
    """403 code `silenced`: a silenced account may not post (store/silence.py)."""
    if user["silenced_at"] is not None:
        raise Forbidden("Your account is silenced: a moderator will look at it", code="silenced")
