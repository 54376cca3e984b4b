"""POST /api/render: the composers' Markdown preview, rendered exactly as a post would be."""

from __future__ import annotations

import httpx

from api_support import check_error
from support.api import Api


def test_render_answers_the_same_html_as_a_post(forum):
    """The preview of a body is the html a post with that body gets; nothing is stored."""
    api = Api(forum["url"]).sign_up()
    text = "**bold** <script>alert(1)</script> [x](javascript:alert(1)) ![a loaf](https://example.com/l.jpg)"
    r = api.post("/api/render", json={"body": text})
    assert r.status_code == 200, r.text
    html = r.json()["html"]
    assert "<strong>bold</strong>" in html and "<script>" not in html and "href=\"javascript" not in html
    thread = api.post("/api/threads",
                      json={"category": forum["category"], "title": "Preview equals post", "body": text})
    assert thread.status_code == 201, thread.text
    assert thread.json()["question"]["html"] == html


def test_render_needs_a_session_and_a_body(forum):
    """A guest gets 401; an empty or too long body gets 422 on `body`."""
    check_error(httpx.post(forum["url"] + "/api/render", json={"body": "x"}), 401)
    api = Api(forum["url"]).sign_up()
    check_error(api.post("/api/render", json={"body": "   "}), 422, field="body")
    check_error(api.post("/api/render", json={"body": "x" * 20_001}), 422, field="body")
