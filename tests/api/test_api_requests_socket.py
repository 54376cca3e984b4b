"""Bad requests that need a real server: bytes on the socket that no HTTP client would send, and a client
that hangs up mid-body (the rest of these rules run in-process: tests/unit/test_api_requests.py)."""

from __future__ import annotations

import httpx
import pytest

from api_support import posted
from support.api import Api, new_thread


@pytest.fixture(scope="module")
def setup(forum):
    """A signed-in user, a thread of the moderator's with one response."""
    api = Api(forum["url"]).sign_up()
    thread = new_thread(forum["mod"], forum["category"])
    resp = posted(forum["mod"], thread["thread"]["id"])
    return {"api": api, "thread": thread["thread"]["id"], "question": thread["question"]["id"],
            "response": resp["id"], **forum}


def test_bad_content_length_is_400(setup):
    """A Content-Length that is not a number → 400 (never a 500)."""
    import socket
    port = int(setup["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: abc\r\nConnection: close\r\n\r\n{}")
        answer = s.recv(4096)
    assert answer.split(b" ")[1] == b"400", answer


def test_client_hanging_up_mid_body_is_not_a_server_error(setup):
    """A client that disconnects before sending its whole body is not counted (or logged) as a 500."""
    import re
    import socket
    import time
    port = int(setup["url"].rsplit(":", 1)[1])
    cookie = setup["api"].session_cookie
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(f"POST /api/threads/{setup['thread']}/posts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Type: application/json\r\nCookie: parley_session={cookie}\r\n"
                      "Content-Length: 5000\r\n\r\n{\"body\": \"only the start".encode())
            time.sleep(0.2)
    time.sleep(0.5)
    metrics = httpx.get(setup["url"] + "/metrics").text
    assert not re.search(r'parley_http_requests_total\{[^}]*status="5\d\d"[^}]*\}', metrics), metrics
