"""Atom 1.0 documents (RFC 4287) from the feeds' entries: pure, data in and bytes out (server/api/feeds.py).

Every entry carries its author, so the feed needs none of its own; `updated` is the newest entry's (a feed's
bytes, and so its ETag, change only when what it lists changes). Post bodies are the stored, sanitized `html`,
sent as escaped HTML content (`type="html"`).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from typing import NamedTuple

NS = "http://www.w3.org/2005/Atom"
EMPTY_UPDATED = "1970-01-01T00:00:00Z"  # a feed with no entry yet: a fixed time keeps its ETag stable
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
# Characters XML 1.0 cannot hold at all (not even escaped): dropped from any text put in a feed. The complement
# of XML's Char (#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]) spelled out: as a
# negated class over all of Unicode it took ~6 ms of CPU to compile at every start.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Entry(NamedTuple):
    id: str
    title: str
    url: str
    published: str
    updated: str
    author_name: str
    author_uri: str
    html: str
    category: tuple[str, str] | None = None  # (term, label)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{NS}}}{tag}", {k: NOT_XML.sub("", v) for k, v in attrs.items()})
    if text is not None:
        el.text = NOT_XML.sub("", text)
    return el


def document(*, feed_id: str, title: str, self_url: str, page_url: str, entries: list[Entry]) -> bytes:
    ET.register_namespace("", NS)
    feed = ET.Element(f"{{{NS}}}feed")
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title)
    _sub(feed, "updated", max((e.updated for e in entries), default=EMPTY_UPDATED))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=page_url)
    _sub(feed, "generator", "Parley")
    for e in entries:
        entry = _sub(feed, "entry")
        _sub(entry, "id", e.id)
        _sub(entry, "title", e.title)
        _sub(entry, "published", e.published)
        _sub(entry, "updated", e.updated)
        author = _sub(entry, "author")
        _sub(author, "name", e.author_name)
        _sub(author, "uri", e.author_uri)
        _sub(entry, "link", rel="alternate", type="text/html", href=e.url)
        if e.category is not None:
            _sub(entry, "category", term=e.category[0], label=e.category[1])
        _sub(entry, "content", e.html, type="html")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
