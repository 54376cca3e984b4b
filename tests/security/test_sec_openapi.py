"""The OpenAPI document describes every route, and schemathesis finds no 5xx and no answer off the schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from server import app, openapi
from support.api import Api, new_thread, unique
from support.databases import db_fetch, make_moderator

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
PHASES = "examples,coverage,fuzzing,stateful"
SEED = "19"
MAX_EXAMPLES = 8  # per operation and phase: the three runs together stay well under three minutes on two cores
SIGNED_IN_EXCLUDED = ["--exclude-operation-id", "signOut"]
# GET /api/stream answers a stream that stays open until the client leaves (docs/live.md "Transports"): every
# valid case would wait out the request timeout. Its refusals are the contract's errors in tests/live/test_live_sse.py.
STREAM_EXCLUDED = ["--exclude-operation-id", "stream"]
# The refusals the contract itself makes 422 though the document cannot tell them from valid requests: they
# depend on what the ids name ("a comment on a comment → 422 (field parent_id)"; accepting a post that is not a
# live response of the thread "else 422, field post_id"), or on how PostgreSQL parses a search ("422 field q when
# it cannot": more than 16 search words, or too costly). Accepted for these three operations only; docs/api.md.
# E-mail (CONTRACT "E-mail"): "a malformed one → 422 field email" by email-validator's rules (more than a pattern
# can say: special-use domains, IDNA, lengths of parts); "a used, expired or unknown [token] → 422 field token".
# Duplicates (docs/api.md "Duplicates"): a thread named as its own original, or an original that is itself a
# duplicate → 422 field of; like setAccepted it depends on what the ids name.
# Pictures (CONTRACT "Pictures"): the file's bytes decide ("anything else, a damaged image, or one over 40
# megapixels → 422 field file"); the document can only say "binary".
# Webhooks (CONTRACT "Webhooks"): "a URL that resolves to a loopback, private or link-local address is refused
# (422 field url)": what the host resolves to at that moment decides, which no schema can say.
PICTURES_422 = ("createUpload",)
WEBHOOKS_422 = ("createWebhook",)
# Trust (CONTRACT "Trust and spam"): "Moderators cannot be ignored (422 field username)", nor can oneself: it
# depends on who the name is. (The new-account limits' 422s on createThread/editPost are for PARLEY_TRUST=standard.)
TRUST_422 = ("ignoreUser",)
EMAIL_422 = ("signUp", "setEmail", "requestPasswordReset", "verifyEmail", "confirmPasswordReset", "unsubscribe")
CONTRACT_422 = "".join(f"""
[[operations]]
include-operation-id = "{op_id}"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
""" for op_id in ("createPost", "setAccepted", "setDuplicate", "search", *EMAIL_422, *PICTURES_422,
                 *WEBHOOKS_422, *TRUST_422))


def api_routes() -> set[tuple[str, str]]:
    out = set()
    for route in app.routes():
        if isinstance(route, Mount) or not isinstance(route, Route) or app.is_page(route.endpoint) \
                or route.path.startswith("/static/"):
            continue
        if route.path.startswith("/static/"):  # the page's files (a generated one, /static/js/limits.js, too)
            continue
        for method in route.methods or ():
            if method != "HEAD":
                out.add((route.path, method.lower()))
    return out


def test_every_route_is_in_the_document() -> None:
    """Every (path, method) of app.routes() but /static and the page's routes (app.is_page) is an operation, and
    nothing else is."""
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
            # The single sign-on dance's steps answer redirects (a browser follows them), not 2xx.
            assert any(s.startswith("2") or (s.startswith("3") and path.startswith("/auth/oidc/"))
                       for s in statuses), (method, path)
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
    r = httpx.get(server.url + "/api/openapi.json", timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == openapi.document()


def schemathesis(url: str, cwd: Path, *extra: str, cookie: str | None = None) -> subprocess.Popen[str]:
    """schemathesis with every check and every phase, a fixed seed and a bounded example count, as an outsider
    would run it. A session goes in as the cookieAuth credential (schemathesis.toml), so the cases that drop
    the cookie really send none; an allowed Origin rides on every request."""
    auth = f'[auth.openapi.cookieAuth]\napi_key = "{cookie}"\n' if cookie is not None else ""
    (cwd / "schemathesis.toml").write_text(auth + CONTRACT_422)
    cmd = [*SCHEMATHESIS, "run", url + "/api/openapi.json", "--checks", "all", "--phases", PHASES, "--seed", SEED,
           "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-shrink", "--no-color",
           "--request-timeout", "30", "-H", f"Origin: {url}", *STREAM_EXCLUDED, *extra]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def summary(out: str) -> list[str]:
    """The lines of a schemathesis report worth quoting: failures by kind and the case count."""
    return [line.strip() for line in out.splitlines()
            if "generated" in line or line.strip().startswith("❌ ST") or "issues found" in line]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_all_checks_as_guest_member_and_moderator(spawn: Any, pg_url: str, tmp_path: Path) -> None:
    """schemathesis -c all (examples, coverage, fuzzing, stateful; fixed seed, bounded examples) as a guest, a
    member and a moderator finds nothing: no 5xx, no answer off the document, no schema-valid request refused,
    no schema-violating one accepted, Allow lists exactly the path's methods, the cookie is required where
    the document says so."""
    srv = spawn(PARLEY_RATE_LIMITS="off")
    mod = Api(srv.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Fuzz"}).status_code == 201
    other = Api(srv.url).sign_up()
    member = Api(srv.url).sign_up()  # posts nothing, so the moderator's run never meets (and suspends) its name
    first = None
    for _ in range(3):  # a few real threads, responses and comments for the generated ids to hit
        thread = new_thread(mod, slug)["thread"]
        first = first or thread["id"]
        r = other.post(f"/api/threads/{thread['id']}/posts", json={"body": "a *reply*"})
        assert r.status_code == 201
        comment = {"body": "a comment", "parent_id": r.json()["post"]["id"]}
        assert other.post(f"/api/threads/{thread['id']}/posts", json=comment).status_code == 201
    start = time.monotonic()
    runs = {}
    # Signed in, sign-out is left out: it would end the very session the run uses (the guest run covers it).
    for name, cookie, extra in (("guest", None, []), ("member", member.session_cookie, SIGNED_IN_EXCLUDED),
                                ("moderator", mod.session_cookie, SIGNED_IN_EXCLUDED)):
        (tmp_path / name).mkdir()
        runs[name] = schemathesis(srv.url, tmp_path / name, *extra, cookie=cookie)
    outputs = {}
    try:
        for name, proc in runs.items():
            out, _ = proc.communicate(timeout=540 - (time.monotonic() - start))
            outputs[name] = (proc.returncode, out)
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"schemathesis: the three runs took {time.monotonic() - start:.0f} s")
    for name, (_, out) in outputs.items():
        print(f"schemathesis as {name}:", *summary(out))
    for name, (code, out) in outputs.items():
        assert code == 0, f"schemathesis as {name} failed:\n{out[-8000:]}"
        counts = re.search(r"(\d+) generated, (\d+) passed", out)
        assert counts and counts[1] == counts[2] and int(counts[1]) > 500, out[-3000:]  # every case passed
    # The signed-in runs really were signed in throughout, and the server logged no bug.
    assert member.get("/api/me").status_code == 200
    assert mod.get("/api/me").status_code == 200
    assert "bug: unhandled error" not in srv.output()
    print(*(line for line in srv.output().splitlines() if "response count already" in line), sep="\n")
    # Whatever sequence the runs made, every kept count agrees with a recount of what is there (the threads made
    # since this test began: other tests of this worker's database write rows by hand).
    drift = db_fetch(pg_url, """
        SELECT t.id, t.response_count, (SELECT count(*) FROM posts p WHERE p.thread_id = t.id
                                          AND p.kind = 'response' AND NOT p.deleted) AS actual,
               (SELECT string_agg(e.seq || ':' || e.name || coalesce(':' || (e.data->>'id'), ''), ' ' ORDER BY e.seq)
                  FROM thread_events e WHERE e.thread_id = t.id) AS history
        FROM threads t WHERE NOT t.deleted AND t.id >= $1""", first)
    drift = [dict(r) for r in drift if r["response_count"] != r["actual"]]
    assert not drift, drift


GENERATOR = "openapi-python-client"
CLIENT_CALLS = '''
import sys
from parley_client import Client
from parley_client.api.accounts import me, sign_up
from parley_client.api.forum import list_threads
from parley_client.models import SignUp

url, name = sys.argv[1], sys.argv[2]
with Client(base_url=url, raise_on_unexpected_status=True) as client:  # keeps the session cookie it is given
    created = sign_up.sync_detailed(client=client, body=SignUp(username=name, password="a long password"))
    assert created.status_code == 201, created
    assert created.parsed.user.username == name
    who = me.sync(client=client)
    assert who.user.username == name and who.user.is_moderator is False, who
    page = list_threads.sync(client=client, limit=5)
    assert len(page.threads) <= 5 and all(t.id >= 1 for t in page.threads), page
print("three calls made")
'''


def generator_path(cache: Path) -> Path | None:
    """A directory holding openapi-python-client (installed there from PyPI when it is not installed already)."""
    try:
        import openapi_python_client  # noqa: F401
        return Path(openapi_python_client.__file__).parents[1]
    except ImportError:
        pass
    target = cache / "openapi-python-client"
    if not (target / "openapi_python_client").is_dir():
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), GENERATOR],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return None
    return target


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_generated_client_makes_three_calls(server: Any, tmp_path: Path) -> None:
    """openapi-python-client turns GET /api/openapi.json into a client (docs/api.md) whose sign-up, who-am-I and
    thread list work against a real server."""
    lib = generator_path(Path.home() / ".cache" / "parley-tests")
    if lib is None:
        pytest.skip(f"{GENERATOR} could not be installed from PyPI")
    (tmp_path / "openapi.json").write_text(httpx.get(server.url + "/api/openapi.json").text)
    # No formatter hooks: the generator would run ruff from PATH, which a test run need not have. The images of
    # GET /uploads/{name} are bytes to the client, whatever their type (it knows no image/* content types).
    (tmp_path / "generator.yaml").write_text("post_hooks: []\ncontent_type_overrides:\n" + "".join(
        f"  {t}: application/octet-stream\n" for t in ("image/png", "image/jpeg", "image/gif", "image/webp")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(lib)]),
           "PATH": os.pathsep.join([str(lib / "bin"), os.environ.get("PATH", "")])}
    gen = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
                          "--meta", "none", "--output-path", "parley_client", "--config", "generator.yaml"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0 and (tmp_path / "parley_client" / "client.py").exists(), gen.stdout + gen.stderr
    assert "Warning" not in gen.stdout + gen.stderr, gen.stdout + gen.stderr  # every operation and model made it
    run = subprocess.run([sys.executable, "-c", CLIENT_CALLS, server.url, unique("gen")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "three calls made" in run.stdout, run.stdout + run.stderr


def test_text_patterns_accept_exactly_what_the_validation_accepts() -> None:
    """The document's text patterns (trimmed length, blank, shows something, no NUL) agree with Text.check on
    edge cases, and every character that is not printable is invisible (why the class scans printable ones)."""
    import itertools

    from server import fields
    from server.errors import Invalid
    from server.render import is_invisible
    not_printable = itertools.filterfalse(str.isprintable, map(chr, range(sys.maxunicode + 1)))
    assert all(map(is_invisible, not_printable))
    rule = fields.Text(1, 5)
    length, shows = re.compile(fields.trimmed_pattern(5, True)), re.compile(fields.visible_pattern())
    samples = ["a", "  a  ", "abcde", "\tabcde\n", "abcdef", " ", "", "\u200b", "\u200bx", "\u3164", "\u2800a",
               "a\x00", "e\u0301", "\u0301", "日本", "😀", "\U000e0001", "\ue000", "a\nb", "ab\u3000", "\u00a0\u00a0"]
    for text in samples:
        try:
            ok = rule.check(text, "f") is not None and "\x00" not in text
        except Invalid:
            ok = False
        assert ok == bool(length.search(text) and shows.search(text)), repr(text)
    # Names and titles (issue 25, finding 9): the published "without these characters" pattern is the rule.
    for refuse in ("name", "title"):
        rule = fields.Text(1, 5, refuse=refuse)
        without = re.compile(fields.refused_pattern(refuse))
        for text in [*samples, "a\u202eb", "\u2066ab", "a\u200db", "a\u200fb", "a\u00adb", "\ufeffab", "a\u2028b",
                     "سارة", "a\u3164"]:
            try:
                ok = rule.check(text, "f") is not None and "\x00" not in text
            except Invalid:
                ok = False
            assert ok == bool(length.search(text) and shows.search(text) and without.search(text)), (refuse, repr(text))
    blank = re.compile(fields.blank_pattern())
    assert [bool(blank.search(t)) for t in ("", " \t\n\u3000", " a ")] == [True, True, False]
    assert re.search(fields.whole(re.compile("[a-z]{3}")), "ada\n") is None  # `$` would have matched
