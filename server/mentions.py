"""@mentions in rendered posts (CONTRACT "Post": `@username` of an existing user, outside code).

Rendering (server/render.py) runs in worker processes and knows nothing of users. So a mention is
two steps over the sanitized HTML, both linear scans done after the render:

1. candidates(html): the @names written in text, outside <code>, <pre> and existing links, in
   order of first appearance, canonical (lower case);
2. the caller looks them up in the users table (store.notifications.resolve_mentions), then
   link(html, known) turns each known one into `<a class="mention" href="/u/NAME">@NAME</a>`.

A link is internal (same origin), so it carries no rel. Linking can make the HTML grow; the caller
checks the result against render.MAX_HTML again.
"""

from __future__ import annotations

import re

from . import limits
from .errors import Invalid
from .render import MAX_HTML

# @ + a username (CONTRACT "Limits"), not glued to a word before it (ada@example.com is no mention)
# nor running on into more name characters. A trailing dot or hyphen ("thanks @ada.") is punctuation
# unless the name with it exists: both forms are candidates.
_MENTION = re.compile(rf"(?<![A-Za-z0-9_.@/&#-])@({limits.USERNAME_PATTERN})(?![A-Za-z0-9_])")
_TAG = re.compile(r"(<[^>]*>)")
_SKIP = {"code", "pre", "a"}
MAX_CANDIDATES = 200  # names looked up per post; more @names than this are left as text


def _texts(html: str) -> list[tuple[str, bool]]:
    """(piece, is_text_outside_code_and_links) for every piece of the HTML, in order."""
    out: list[tuple[str, bool]] = []
    depth = 0
    for piece in _TAG.split(html):
        if not piece:
            continue
        if piece.startswith("<"):
            m = re.match(r"</?([a-zA-Z0-9]+)", piece)
            if m and m.group(1).lower() in _SKIP and not piece.endswith("/>"):
                depth += -1 if piece.startswith("</") else 1
                depth = max(depth, 0)
            out.append((piece, False))
        else:
            out.append((piece, depth == 0))
    return out


def _forms(name: str) -> list[str]:
    stripped = name.rstrip(".-")
    return [name] if stripped == name or len(stripped) < 3 else [name, stripped]


def candidates(html: str) -> list[str]:
    """The canonical @names the HTML mentions outside code and links, first appearance first."""
    seen: dict[str, None] = {}
    for piece, is_text in _texts(html):
        if not is_text or "@" not in piece:
            continue
        for m in _MENTION.finditer(piece):
            for form in _forms(m.group(1)):
                seen.setdefault(form.lower(), None)
            if len(seen) >= MAX_CANDIDATES:
                return list(seen)
    return list(seen)


def link(html: str, known: dict[str, str]) -> str:
    """The HTML with each mention of a known user (canonical name → username) made a profile link."""
    if not known:
        return html

    def one(m: re.Match[str]) -> str:
        for form in _forms(m.group(1)):
            username = known.get(form.lower())
            if username is not None:
                rest = m.group(1)[len(form):]
                return f'<a class="mention" href="/u/{username}">@{username}</a>{rest}'
        return m.group(0)

    out = []
    for piece, is_text in _texts(html):
        out.append(_MENTION.sub(one, piece) if is_text and "@" in piece else piece)
    linked = "".join(out)
    if len(linked.encode()) > MAX_HTML:
        raise Invalid(f"body renders to more than {MAX_HTML // 1024} KiB of HTML", field="body")
    return linked
