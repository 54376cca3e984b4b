"""Logs: one JSON object per line when asked, one line per request, sockets summarized, no secrets."""

from __future__ import annotations

import asyncio
import json

import httpx

from support.api import Api


async def test_json_logs_one_line_per_request_and_sockets_summarized_without_secrets(spawn, watchers):
    """With PARLEY_LOG_FORMAT=json every log line is a JSON object; a request logs one access line,
    sockets no line each but a summary of those opened and closed (the last one at shutdown), and
    neither the password nor the session cookie appears."""
    srv = spawn(PARLEY_LOG_FORMAT="json")
    password = "very secret password 123"
    api = Api(srv.url).sign_up(password=password)
    httpx.post(srv.url + "/api/session", json={"username": api.user["username"], "password": password})
    w = await watchers(srv.ws_url, api.session_cookie)
    await w.close()
    await asyncio.sleep(0.5)
    srv.stop()
    lines = [x for x in srv.output().splitlines() if x.strip()]
    records = [json.loads(x) for x in lines]  # every line parses
    access = [r for r in records if r["logger"] == "parley.access" and r.get("path") == "/api/session"]
    assert len(access) == 1 and access[0]["status"] == 200 and access[0]["method"] == "POST"
    assert not [r for r in records if r["msg"].startswith(("ws open", "ws close"))]  # an ordinary socket
    summaries = [r["msg"] for r in records if r["msg"].startswith("ws sockets:")]
    assert summaries == ["ws sockets: 1 opened, 1 closed (client=1), 0 open"], summaries
    assert not any("WebSocket" in r["msg"] or r["msg"].startswith("connection ") for r in records)
    text = srv.output()
    assert password not in text
    assert api.session_cookie not in text
