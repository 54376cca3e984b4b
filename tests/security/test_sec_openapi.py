"""The OpenAPI document describes every route, and schemathesis finds no 5xx and no answer off the schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Api, make_moderator, new_thread, unique
from starlette.routing import Mount, Route

from server import app, openapi

PAGES = {"/", "/c/{rest:path}", "/t/{rest:path}", "/u/{rest:path}", "/signin", "/signup", "/search", "/settings",
         "/review", "/modlog"}
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
CHECKS = "not_a_server_error,response_schema_conformance"
# Operations the signed-in run skips: they do not depend on the cookie (sign-up, sign-in, meta) or would end the
# very session the run uses (sign-out). The guest run covers all of them.
NOT_SIGNED_IN = ["signUp", "signIn", "signOut", "openapi", "healthz", "readyz", "metrics"]


def api_routes() -> set[tuple[str, str]]:
    out = set()
    for route in app.routes():
        if isinstance(route, Mount) or not isinstance(route, Route) or route.path in PAGES:
            continue
        for method in route.methods or ():
            if method != "HEAD":
                out.add((route.path, method.lower()))
    return out


def test_every_route_is_in_the_document() -> None:
    """Every (path, method) of app.routes() but /static and the page routes is an operation, and nothing else is."""
    doc = openapi.document()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert api_routes() == documented


def test_every_operation_documents_its_errors_and_parameters() -> None:
    """Each operation has an operationId, a 2xx, the error body on its 4xx/5xx, and a schema for each path id."""
    doc = openapi.document()
    for path, ops in doc["paths"].items():
        for method, operation in ops.items():
            assert operation["operationId"], (method, path)
            statuses = set(operation["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            if path.startswith("/api/") and path != "/api/openapi.json":
                assert "503" in statuses, (method, path)
            for status, answer in operation["responses"].items():
                if status[0] in "45" and path.startswith("/api/"):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            names = {p["name"] for p in operation.get("parameters", [])}
            assert {seg[1:-1] for seg in path.split("/") if seg.startswith("{")} <= names, (method, path)
            if method in ("post", "put", "patch"):
                assert "415" in statuses and "413" in statuses and "422" in statuses, (method, path)
    create_post = doc["paths"]["/api/threads/{id}/posts"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create_post["parameters"]}
    assert doc["components"]["securitySchemes"]["cookieAuth"] == {
        "type": "apiKey", "in": "cookie", "name": "parley_session",
        "description": "The session cookie set by sign-up and sign-in"}


def test_served_document_is_the_module_document(server: Any) -> None:
    """GET /api/openapi.json answers the document, as JSON, to a guest."""
    r = httpx.get(server.url + "/api/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == openapi.document()


def schemathesis(url: str, cwd: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [*SCHEMATHESIS, "run", url + "/api/openapi.json", "--checks", CHECKS, "--workers", "2",
           "--phases", "coverage,fuzzing", "--no-color", "--request-timeout", "30", *extra]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_guest_and_signed_in(spawn: Any, pg_url: str, tmp_path: Path) -> None:
    """schemathesis (default example count, all operations, as a guest and as a signed-in moderator): no 5xx,
    every answer conforms to the document."""
    srv = spawn(PARLEY_RATE_LIMITS="off")
    mod = Api(srv.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Fuzz"}).status_code == 201
    other = Api(srv.url).sign_up()
    for _ in range(3):  # a few real threads, responses and comments for the generated ids to hit
        thread = new_thread(mod, slug)["thread"]
        r = other.post(f"/api/threads/{thread['id']}/posts", json={"body": "a *reply*"})
        assert r.status_code == 201
        comment = {"body": "a comment", "parent_id": r.json()["post"]["id"]}
        assert other.post(f"/api/threads/{thread['id']}/posts", json=comment).status_code == 201
    (tmp_path / "guest").mkdir()
    (tmp_path / "member").mkdir()
    start = time.monotonic()
    guest = schemathesis(srv.url, tmp_path / "guest")
    excluded = [arg for op_id in NOT_SIGNED_IN for arg in ("--exclude-operation-id", op_id)]
    member = schemathesis(srv.url, tmp_path / "member", "-H", f"Cookie: parley_session={mod.session_cookie}",
                          *excluded)
    outputs = {}
    try:
        for name, proc in (("guest", guest), ("signed in", member)):
            out, _ = proc.communicate(timeout=540 - (time.monotonic() - start))
            outputs[name] = (proc.returncode, out)
    finally:
        for proc in (guest, member):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"schemathesis: both runs took {time.monotonic() - start:.0f} s")
    for name, (_, out) in outputs.items():
        print(f"schemathesis as {name}:", *[line.strip() for line in out.splitlines() if "generated" in line])
    for name, (code, out) in outputs.items():
        assert code == 0, f"schemathesis as {name} failed:\n{out[-6000:]}"
        assert "generated" in out and " passed" in out, out[-2000:]
    assert "Authentication failed" not in outputs["signed in"][1], outputs["signed in"][1][-3000:]
    # The signed-in run really was signed in: the session still works, and the server logged no bug.
    assert mod.get("/api/me").status_code == 200
    assert "bug: unhandled error" not in srv.output()
