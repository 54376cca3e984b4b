"""Smoke test of an installed Parley (run by the installed venv's python, from outside the checkout).

Starts `parley serve` from that venv on a fresh database, then checks /healthz, /readyz, the page and
one of its JS modules, a sign-up, a thread, a reply, and that the reply arrives over /ws. Only the
standard library and what Parley itself depends on (websockets, asyncpg) are used.
Usage: python wheel-smoke.py ADMIN_DATABASE_URL REDIS_URL
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from websockets.asyncio.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    admin_url, redis_url = sys.argv[1], sys.argv[2]
    parley = Path(sys.executable).with_name("parley")
    import server
    assert "site-packages" in server.__file__, f"not an installed package: {server.__file__}"
    name = f"parley_wheel_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(admin_url)
    db_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    asyncio.run(admin(admin_url, f'CREATE DATABASE "{name}"'))
    work = Path(tempfile.mkdtemp(prefix="parley-wheel-"))  # not the checkout: nothing to find beside it
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "PARLEY_SECRET": "wheel-smoke-0123456789",
           "PARLEY_DATA_DIR": str(work / "data")}
    proc = subprocess.Popen([str(parley), "serve", "--port", str(port)], cwd=work, env=env)
    try:
        check = subprocess.run([str(parley), "migrate", "--check"], cwd=work, env=env, capture_output=True,
                               text=True)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def call(method: str, path: str, body: object = None) -> tuple[int, bytes]:
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"content-type": "application/json"} if data else {})
            try:
                with opener.open(req, timeout=10) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        for _ in range(120):
            try:
                if call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"parley serve exited with {proc.returncode}")
            time.sleep(0.5)
        else:
            raise SystemExit("parley serve did not answer /healthz in 60 s")
        print("migrate --check:", check.returncode, check.stdout.strip())
        status, _ = call("GET", "/readyz")
        assert status == 200, f"/readyz {status}"
        status, html = call("GET", "/")
        assert status == 200 and b"<html" in html.lower(), f"page {status}"
        status, js = call("GET", "/static/js/app.js")
        assert status == 200 and b"import" in js, f"app.js {status}"
        status, body = call("POST", "/api/users", {"username": "wheel_" + uuid.uuid4().hex[:6],
                                                   "password": "correct horse battery"})
        assert status == 201, body
        status, body = call("POST", "/api/categories", {"slug": "smoke", "name": "Smoke"})
        if status == 403:  # not a moderator: make one through the database, as an operator would
            asyncio.run(admin(db_url, "UPDATE users SET is_moderator = true"))
            status, body = call("POST", "/api/categories", {"slug": "smoke", "name": "Smoke"})
        assert status == 201, body
        status, body = call("POST", "/api/threads", {"category": "smoke", "title": "Does it install?",
                                                     "body": "From a wheel."})
        assert status == 201, body
        thread = json.loads(body)["thread"]["id"]

        async def live() -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws", origin=base) as ws:
                await ws.send(json.dumps({"type": "subscribe", "thread": thread}))
                deadline = time.monotonic() + 10
                posted = False
                while time.monotonic() < deadline:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if frame.get("type") == "subscribed" and not posted:
                        posted = True
                        s, b = await asyncio.to_thread(call, "POST", f"/api/threads/{thread}/posts",
                                                       {"body": "Yes, it does."})
                        assert s == 201, b
                    if frame.get("type") == "event" and frame.get("name") == "post.created":
                        assert frame["data"]["body"] == "Yes, it does."
                        return
                raise AssertionError("no post.created event over /ws")
        asyncio.run(live())
        print(f"wheel smoke test passed: {server.__file__}")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        asyncio.run(admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
