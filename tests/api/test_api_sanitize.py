"""The sanitization corpus: hostile post bodies come back as harmless HTML, and links are marked and safe."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from api_support import posted
from support.api import Api, new_thread

ALLOWED_TAGS = {"a", "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
                "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "img"}
SAFE_SCHEMES = {"http", "https", "mailto"}
REL = "nofollow ugc noopener"

VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<<script>script>alert(1)<</script>/script>",
    "<img src=x onerror=alert(1)>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    '<img src="jav&#x09;ascript:alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">x</math>',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit><button formaction=javascript:alert(1)>x</button></form>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<link rel=stylesheet href=javascript:alert(1)>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<!--<script>alert(1)</script>-->",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116'
    '&#0000058alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1))",
    "[click](java%0ascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](javascript:alert&#40;1&#41;)",
    "<javascript:alert(1)>",
    "[click](vbscript:msgbox(1))",
    "[click](VBScript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](data:text/html,%3Cscript%3Ealert(1)%3C/script%3E)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![img](javascript:alert(1))",
    '![x](https://ok.example/a.png" onerror="alert(1))',
    '[x](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "![pic][ref]\n\n[ref]: data:image/png;base64,iVBORw0KGgo=",
    "[x](https://example.com) onclick=\"alert(1)\"",
    'https://example.com/"onmouseover="alert(1)',
    "www.evil.example/?q=<script>alert(1)</script>",
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "> <script>alert(1)</script>\n> [quote](javascript:alert(1))",
    "* [list](javascript:alert(1))\n* <img src=x onerror=alert(1)>",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | [t](javascript:alert(1)) |",
    "[[nested](javascript:alert(1))](https://ok.example)",
    "[![img](https://ok.example/i.png)](javascript:alert(1))",
]


class Tags(HTMLParser):
    """Collects (tag, attrs) with attribute values entity-decoded, the way a browser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = Tags()
    p.feed(html)
    p.close()
    return p.tags


def scheme_of(url: str) -> str | None:
    """The URL's scheme as a browser would see it (it ignores tabs, newlines and leading controls/spaces)."""
    cleaned = re.sub(r"[\x00-\x20]", "", url).lower()
    m = re.match(r"^([a-z][a-z0-9+.\-]*):", cleaned)
    return m.group(1) if m else None


def assert_safe(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered and "<style" not in lowered, html
    for tag, attrs in parse(html):
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (name, html)
            assert name not in ("style", "srcdoc", "formaction", "action", "background", "xlink:href"), (name, html)
            if name in ("href", "src") and value is not None:
                scheme = scheme_of(value)
                assert scheme is None or scheme in SAFE_SCHEMES, (value, html)
        if tag == "a":
            assert attrs.get("rel") == REL, (attrs, html)


@pytest.fixture(scope="module")
def thread(forum):
    author = Api(forum["url"]).sign_up()
    t = new_thread(author, forum["category"], title="Sanitization corpus")
    return {"author": author, "id": t["thread"]["id"]}


def test_corpus_has_at_least_40_vectors():
    """The corpus below holds at least 40 distinct hostile inputs."""
    assert len(set(VECTORS)) == len(VECTORS) >= 40


@pytest.mark.parametrize("vector", VECTORS, ids=[f"v{i:02d}" for i in range(len(VECTORS))])
def test_hostile_body_is_rendered_harmless(thread, vector):
    """A hostile body is stored as written, and its html has no script, handler, style or dangerous URL."""
    post = posted(thread["author"], thread["id"], vector)
    assert post["body"] == vector.strip()
    assert_safe(post["html"])


@pytest.mark.parametrize("vector", VECTORS[:12], ids=[f"v{i:02d}" for i in range(12)])
def test_hostile_edit_is_rendered_harmless(thread, vector):
    """The same holds when the hostile body arrives as an edit (rendered again on write)."""
    post = posted(thread["author"], thread["id"], "harmless at first")
    r = thread["author"].patch(f"/api/posts/{post['id']}", json={"body": vector})
    assert r.status_code == 200, r.text
    assert_safe(r.json()["post"]["html"])


def test_hostile_question_is_rendered_harmless(forum):
    """A thread's opening post is sanitized like any other."""
    t = new_thread(forum["mod"], forum["category"], body="<img src=x onerror=alert(1)> [x](javascript:alert(1))")
    assert_safe(t["question"]["html"])
    assert "<img" not in t["question"]["html"]


def test_bare_urls_become_marked_links(thread):
    """Bare URLs (with a scheme or www.) become <a> links with rel="nofollow ugc noopener"."""
    post = posted(thread["author"], thread["id"], "see https://example.com/path?q=1&r=2 and www.example.org too")
    tags = parse(post["html"])
    links = [attrs for tag, attrs in tags if tag == "a"]
    assert [a["href"] for a in links] == ["https://example.com/path?q=1&r=2", "http://www.example.org"]
    assert all(a["rel"] == REL for a in links)
    assert_safe(post["html"])


def test_markdown_links_and_images_keep_safe_urls(thread):
    """Safe Markdown links survive, marked with rel; mailto is allowed; an image from elsewhere becomes a link to it
    (CONTRACT "Pictures": never loaded by readers' browsers)."""
    post = posted(thread["author"], thread["id"],
                  '[docs](https://docs.example/a "The docs") ![cat](https://img.example/cat.png) '
                  "[mail](mailto:someone@example.com)")
    tags = parse(post["html"])
    links = [attrs for tag, attrs in tags if tag == "a"]
    assert links[0] == {"href": "https://docs.example/a", "title": "The docs", "rel": REL}
    assert links[1] == {"href": "https://img.example/cat.png", "title": "Image: https://img.example/cat.png",
                        "rel": REL}
    assert links[2]["href"] == "mailto:someone@example.com" and links[2]["rel"] == REL
    assert [attrs for tag, attrs in tags if tag == "img"] == []


def test_raw_html_is_shown_as_text(thread):
    """Raw HTML in a body is escaped, so readers see it as typed."""
    post = posted(thread["author"], thread["id"], "<b>bold?</b>")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in post["html"] and "<b>" not in post["html"]


def test_formatting_survives_sanitizing(thread):
    """Ordinary Markdown (emphasis, code, lists, quotes, tables, strikethrough) renders as expected."""
    post = posted(thread["author"], thread["id"],
                  "*em* **strong** ~~gone~~ `code`\n\n> quote\n\n1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    html = post["html"]
    for fragment in ("<em>em</em>", "<strong>strong</strong>", "<s>gone</s>", "<code>code</code>", "<blockquote>",
                     "<ol>", "<li>one</li>", "<table>", "<td>1</td>"):
        assert fragment in html, (fragment, html)


@pytest.mark.parametrize("bad", [
    "<script>x</script>", '<img src="x" onerror="y">', '<a href="java\tscript:x" rel="nofollow ugc noopener">',
    '<a href="https://ok.example">no rel</a>', '<img src=" data:image/png;base64,AA">', "<iframe></iframe>",
    '<a href="&#106;avascript:x" rel="nofollow ugc noopener">',
])
def test_the_checker_itself_catches_unsafe_html(bad):
    """The corpus's oracle is not vacuous: it rejects each kind of unsafe HTML it looks for."""
    with pytest.raises(AssertionError):
        assert_safe(bad)
