"""The spam check (CONTRACT rev. 3 "Trust and spam"; docs/moderation.md "Spam check"): an Akismet-compatible
`comment-check` endpoint (PARLEY_SPAM_CHECK_URL) asked about the posts of new accounts before they are published.

Akismet's protocol: a form-encoded POST (`blog`, `user_ip`, `user_agent`, `comment_type`, `comment_author`,
`comment_content`, `permalink`); the answer's body is `true` (spam) or `false`. Anything else fails open: a
checker that cannot be reached, takes longer than `spam_check_timeout_seconds`, answers another status or another
body, never blocks posting; the post is published and the failure counted
(`parley_spam_check_failures_total{reason}`). Only accounts under privileges.NEW_ACCOUNT reputation are checked,
so established members' posts never wait for the round trip.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import metrics, privileges

# httpx (which brings its CLI's rich and pygments) is imported when a checker is configured: every process builds
# a SpamCheck, few have PARLEY_SPAM_CHECK_URL, and the import cost every start ~60 ms of CPU.
if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class SpamCheck:
    """One process's client of the checker (one connection pool), opened and closed by the lifespan; with no URL
    (PARLEY_SPAM_CHECK_URL unset) it is off and asks nobody."""

    def __init__(self, url: str | None, timeout: float, site: str) -> None:
        self.url = url
        self.site = site  # Akismet's `blog`: the forum's public URL
        self.client: httpx.AsyncClient | None = None
        if url:
            import httpx

            self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def is_spam(self, author: str, text: str, kind: str, ip: str, user_agent: str) -> bool:
        """The checker's verdict; False (publish) when it has none."""
        form = {"blog": self.site, "user_ip": ip, "user_agent": user_agent,
                "comment_type": "forum-post" if kind == "question" else "reply", "comment_author": author,
                "comment_content": text}
        if self.client is None or self.url is None:
            return False
        import httpx  # imported by __init__ already (a client exists): a name lookup

        try:
            r = await self.client.post(self.url, data=form)
        except httpx.TimeoutException:
            return _failed("timeout")
        except httpx.HTTPError as exc:
            log.warning("spam check failed open: %s", exc)
            return _failed("unreachable")
        if r.status_code != 200:
            return _failed("status")
        verdict = r.text.strip()
        if verdict not in ("true", "false"):
            return _failed("answer")
        metrics.SPAM_CHECKS.labels("spam" if verdict == "true" else "ham").inc()
        return verdict == "true"


def _failed(reason: str) -> bool:
    metrics.SPAM_CHECK_FAILURES.labels(reason).inc()
    return False


def needs_check(check: SpamCheck, user: Any) -> bool:
    """Whether a post by `user` goes to the checker: one is configured, and the account is new (any preset)."""
    return check.enabled and not user["is_moderator"] and user["reputation"] < privileges.NEW_ACCOUNT
