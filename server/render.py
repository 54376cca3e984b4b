"""Markdown → safe HTML, done once on write.

markdown-it-py renders CommonMark with raw HTML disabled (it is escaped, not
passed through) and linkify on; nh3 (the Ammonia sanitizer) then enforces an
allow-list, so even a renderer bug cannot let a script or handler through.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}).enable(
    ["linkify", "strikethrough", "table"]
)

TAGS = {
    "a", "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "img",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow ugc noopener"


def sanitize(html: str) -> str:
    """Keep only the allow-listed tags, attributes and URL schemes."""
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render(markdown: str) -> str:
    """Render a post body (CommonMark + linkify) to sanitized HTML."""
    return sanitize(_md.render(markdown))
