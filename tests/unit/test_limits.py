"""Limits are declared once (server/limits.py): the page reads them from /static/js/limits.js, the OpenAPI
document and the request Structs carry the same numbers, and no page file types one of them again."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from server import limits
from support.inprocess import InProcessApp

WEB = Path(__file__).resolve().parents[2] / "web"
TYPED = re.compile(r"""(?:max|min)[lL]ength\s*[:=]\s*["']?\d""")


def test_the_page_module_is_generated_from_the_server_limits(app: InProcessApp) -> None:
    """GET /static/js/limits.js is an ES module whose LIMITS object equals limits.for_page()."""
    with httpx.Client(base_url=app.url, transport=app.transport) as c:
        r = c.get("/static/js/limits.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript"), r.headers
    m = re.search(r"export const LIMITS = Object\.freeze\((\{.*\})\);", r.text, re.S)
    assert m, r.text
    assert json.loads(m.group(1)) == limits.for_page()


def test_no_page_file_types_a_length_limit() -> None:
    """Every maxlength/minlength in web/ comes from LIMITS, none is a number typed in a page file."""
    typed = []
    for path in [*WEB.rglob("*.js"), *WEB.rglob("*.html")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if TYPED.search(line):
                typed.append(f"{path.relative_to(WEB)}:{n}: {line.strip()}")
    assert typed == []


def test_the_openapi_document_publishes_the_same_limits(app: InProcessApp) -> None:
    """The request schemas of the OpenAPI document carry the numbers of server/limits.py."""
    with httpx.Client(base_url=app.url, transport=app.transport) as c:
        doc: dict[str, Any] = c.get("/api/openapi.json").json()
    text = json.dumps(doc)
    schemas = doc["components"]["schemas"]

    def prop(struct: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = schemas[struct]["properties"][name]
        return found

    for struct, name, high in [("NewPost", "body", limits.BODY_MAX), ("PostEdit", "body", limits.BODY_MAX),
                               ("NewThread", "body", limits.BODY_MAX), ("NewThread", "title", limits.TITLE_MAX)]:
        rule = prop(struct, name)  # a Text rule: its length is in the description and in the trimmed pattern
        assert rule["description"].startswith(f"1–{high} characters"), (struct, name, rule["description"])
        assert f"{{0,{high - 2}}}" in rule["allOf"][0]["pattern"], (struct, name)
    assert f"{{{limits.USERNAME_MIN},{limits.USERNAME_MAX}}}" in prop("SignUp", "username")["pattern"]
    assert prop("SignUp", "password")["minLength"] == limits.PASSWORD_MIN
    assert prop("SignUp", "password")["maxLength"] == limits.PASSWORD_MAX
    assert str(limits.BIGINT) in text


def test_the_bigint_bound_is_written_once() -> None:
    """Only server/limits.py spells the bigint bound; every other module reads limits.BIGINT."""
    server = WEB.parent / "server"
    spelled = [str(p.relative_to(server)) for p in server.rglob("*.py")
               if p.name != "limits.py" and re.search(r"2\s*\*\*\s*63|9223372036854775807", p.read_text())]
    assert spelled == []
