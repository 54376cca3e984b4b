"""Pages crawlers and link previews can read: the page's own index.html with a title, a description, OpenGraph
and a canonical link for what the URL shows, that content as plain HTML in <main>, and the API answers the
script would fetch embedded as JSON (`<script type="application/json" id="preload">`), so the script takes
over without fetching them again and without a flash (web/js/api.js reads them once).

Pure functions: the data comes in (the same shapes the API answers), bytes go out. Post bodies are the
stored `html`, sanitized when written (server/render.py); every other text is escaped here.
"""

from __future__ import annotations

import re
from html import escape, unescape
from typing import Any

import msgspec

DESCRIPTION_MAX = 200   # characters of a meta description (search engines show about 155–160)
SLUG_MAX = 80

_TITLE = "<title>Parley</title>"
_DESCRIPTION = re.compile(r'<meta name="description" content="[^"]*">')
_MAIN = '<main id="main" class="wrap" tabindex="-1"></main>'
_BLOCKS = re.compile(r"</?(?:p|div|li|ul|ol|h[1-6]|blockquote|pre|br|hr|tr|td|th|table|img)\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
_IMG = re.compile(r"<img\b([^>]*)>", re.I)
_ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')


class Template:
    """index.html split where a page puts its own parts; a page without these markers is a bug of the page."""

    def __init__(self, html: str) -> None:
        if _TITLE not in html or _MAIN not in html or not _DESCRIPTION.search(html):
            raise RuntimeError("index.html lacks the <title>, description or <main> the crawler pages fill")
        html = _DESCRIPTION.sub("", html, count=1)
        self.head, rest = html.split(_TITLE, 1)
        self.middle, self.tail = rest.split(_MAIN, 1)

    def render(self, *, title: str, description: str, url: str, og_type: str, main: str,
               preload: dict[str, Any] | None) -> bytes:
        t, d, u = escape(title), escape(description), escape(url)
        head = (f"<title>{t} · Parley</title>\n  <meta name=\"description\" content=\"{d}\">\n"
                f"  <link rel=\"canonical\" href=\"{u}\">\n"
                f"  <meta property=\"og:title\" content=\"{t}\">\n"
                f"  <meta property=\"og:description\" content=\"{d}\">\n"
                f"  <meta property=\"og:url\" content=\"{u}\">\n"
                f"  <meta property=\"og:type\" content=\"{og_type}\">\n"
                f"  <meta property=\"og:site_name\" content=\"Parley\">")
        data = ""
        if preload:
            data = f'\n  <script type="application/json" id="preload">{embedded_json(preload)}</script>'
        body = f'<main id="main" class="wrap" tabindex="-1" data-server-rendered="">{main}</main>{data}'
        return (self.head + head + self.middle + body + self.tail).encode()


def embedded_json(data: Any) -> str:
    """JSON safe inside a <script> element: a `<` only occurs in strings, where \\u003c means the same."""
    return msgspec.json.encode(data).decode().replace("<", "\\u003c")


def text_of(html: str) -> str:
    """The readable text of a fragment of our HTML, whitespace collapsed."""
    return _SPACE.sub(" ", unescape(_TAGS.sub("", _BLOCKS.sub(" ", html)))).strip()


def summary(text: str, limit: int = DESCRIPTION_MAX) -> str:
    """At most `limit` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:.") + "…"


def slug(title: str) -> str:
    """The words of a title for a URL (`/t/7/how-do-i-…`): ASCII letters and digits joined by hyphens."""
    return _SLUG_DROP.sub("-", title.lower()).strip("-")[:SLUG_MAX].strip("-") or "thread"


def thread_path(thread: dict[str, Any]) -> str:
    return f"/t/{thread['id']}/{slug(thread['title'])}"


def _time(ts: str) -> str:
    return f'<time datetime="{escape(ts)}">{escape(ts[:10])}</time>'


def _user(user: dict[str, Any]) -> str:
    return f'<a href="/u/{escape(user["username"])}">{escape(user["display_name"])}</a>'


def images_as_links(html: str) -> str:
    """An image from elsewhere as a link to it, as the page's script shows it (web/js/dom.js): the CSP loads no
    remote image, and a reader's browser must not fetch one (no tracking pixels). Our own uploads (a path on this
    site) stay images. The attribute values are the sanitizer's, already escaped."""
    def link(m: re.Match[str]) -> str:
        attrs = dict(_ATTR.findall(m.group(1)))
        src = attrs.get("src", "")
        if src.startswith("/") and not src.startswith("//"):
            return m.group(0)
        return f'<a class="image-link" href="{src}" rel="nofollow ugc noopener">{attrs.get("alt") or src}</a>'
    return _IMG.sub(link, html)


def _post(post: dict[str, Any], heading: str) -> str:
    body = ('<p class="ssr-deleted">This post was deleted.</p>' if post["deleted"]
            else f'<div class="post-body">{images_as_links(post["html"])}</div>')
    return (f'<article class="ssr-post" id="post-{post["id"]}" aria-label="{heading}">'
            f'<p class="ssr-meta">{_user(post["author"])} · {_time(post["created_at"])} · '
            f'score {post["score"]}</p>{body}</article>')


def thread_main(page: dict[str, Any], more: str | None) -> str:
    """A thread page as HTML: the question, then each response with its comments. `more` links the next page."""
    thread, question = page["thread"], page["question"]
    category = thread["category"]
    parts = [f'<article class="ssr-thread"><h1 dir="auto">{escape(thread["title"])}</h1>',
             f'<p class="ssr-meta">Asked by {_user(thread["author"])} in '
             f'<a href="/c/{escape(category["slug"])}">{escape(category["name"])}</a> · '
             f'{_time(thread["created_at"])}</p>',
             _post(question, "Question")]
    n = thread["response_count"]
    parts.append(f'<section aria-labelledby="ssr-responses"><h2 id="ssr-responses">{n} '
                 f'{"response" if n == 1 else "responses"}</h2>')
    for response in page["responses"]:
        accepted = " (accepted answer)" if response["id"] == thread["accepted_id"] else ""
        parts.append(_post(response, "Response" + accepted))
        if response["comments"]:
            parts.append('<ul class="ssr-comments" aria-label="Comments">')
            parts.extend(f"<li>{_post(c, 'Comment')}</li>" for c in response["comments"])
            parts.append("</ul>")
    if more:
        parts.append(f'<p><a rel="next" href="{escape(more)}">More responses</a></p>')
    parts.append("</section></article>")
    return "".join(parts)


def thread_description(page: dict[str, Any]) -> str:
    question = page["question"]
    return summary(text_of(question["html"])) if not question["deleted"] else page["thread"]["title"]


def profile_main(user: dict[str, Any], posts: list[dict[str, Any]]) -> str:
    s = user["stats"]
    stats = "".join(f"<dt>{label}</dt><dd>{s[key]}</dd>" for key, label in (
        ("questions", "Questions"), ("responses", "Responses"), ("comments", "Comments"),
        ("accepted", "Accepted answers"), ("score", "Score")))
    items = "".join(
        f'<li><a href="/t/{p["thread"]["id"]}#post-{p["id"]}">{escape(p["thread"]["title"])}</a> · '
        f'{_time(p["created_at"])}<p>{escape(summary(text_of(p["html"]), 160))}</p></li>' for p in posts)
    return (f'<article class="ssr-profile"><h1 dir="auto">{escape(user["display_name"])}</h1>'
            f'<p>@{escape(user["username"])} · member since {_time(user["created_at"])}</p>'
            f"<dl>{stats}</dl>"
            f'<section aria-labelledby="ssr-posts"><h2 id="ssr-posts">Questions and responses</h2>'
            f'{f"<ol>{items}</ol>" if items else "<p>Nothing posted yet.</p>"}</section></article>')


def profile_description(user: dict[str, Any]) -> str:
    s = user["stats"]
    return (f"{user['display_name']} (@{user['username']}) on Parley: {s['questions']} questions, "
            f"{s['responses']} responses, {s['accepted']} accepted answers.")


def category_main(category: dict[str, Any], threads: list[dict[str, Any]]) -> str:
    children = "".join(f'<li><a href="/c/{escape(c["slug"])}">{escape(c["name"])}</a></li>'
                       for c in category["children"])
    items = "".join(
        f'<li><a href="{escape(thread_path(t))}">{escape(t["title"])}</a> · {t["response_count"]} '
        f'{"response" if t["response_count"] == 1 else "responses"} · {_time(t["last_activity_at"])}</li>'
        for t in threads)
    subcategories = f'<ul aria-label="Subcategories">{children}</ul>' if children else ""
    return (f'<div class="ssr-category"><h1 dir="auto">{escape(category["name"])}</h1>{subcategories}'
            f'<section aria-labelledby="ssr-threads"><h2 id="ssr-threads">Most active threads</h2>'
            f'{f"<ol>{items}</ol>" if items else "<p>No questions here yet.</p>"}</section></div>')


def category_description(category: dict[str, Any]) -> str:
    path = " » ".join(p["name"] for p in category["path"])
    return f"Questions and answers in {path} on Parley."
