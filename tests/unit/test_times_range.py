"""Times from clients (issue 25, finding 5): every time a client sends is in the years 2000–2999 as written
(docs/api.md "Times"); outside it a body field is 422 naming the field and a cursor is no position (404), and
nothing ends up stored as 'infinity' or breaks the profile and sign-in."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from server.store.threads import micros
from support import http
from support.api import Api
from support.databases import make_moderator

PASSWORD = "correct horse battery"

# Past year 9999 (asyncpg stores datetime.max as 'infinity'; the offsets overflow Python's datetime), and
# just outside the years 2000–2999 as written, in UTC and with offsets.
OUT_OF_RANGE = ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59.999999+00:00",
                "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "3000-01-01T00:00:00Z",
                "1999-12-31T23:59:59.999999Z", "1999-12-31T23:00:00-05:00", "5000-06-01T00:00:00+23:59"]


def test_times_outside_the_range_are_refused_everywhere(server: Any, pg_url: str) -> None:
    """A suspension `until` outside 2000–2999 is 422 field `until` (nothing stored; the profile and sign-in still
    answer); the edges of the range are accepted; a list cursor carrying such a time is 404 bad_cursor."""
    mod = Api(server.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    member = Api(server.url).sign_up(password=PASSWORD)
    name = member.user["username"]  # type: ignore[index]
    for until in OUT_OF_RANGE:
        r = mod.put(f"/api/users/{name}/suspension", json={"until": until})
        assert r.status_code == 422, (until, r.status_code, r.text)
        assert r.json()["error"]["field"] == "until", (until, r.text)
        profile = http.get(f"{server.url}/api/users/{name}", timeout=30)
        assert profile.status_code == 200 and profile.json()["user"]["suspended_until"] is None, (until, profile.text)
        signin = http.post(server.url + "/api/session", json={"username": name, "password": PASSWORD}, timeout=30)
        assert signin.status_code == 200, (until, signin.text)
    # The last moment of the range, with the widest offset, is a suspension; the profile and sign-in show it.
    for until, shown in (("2999-12-31T23:59:59.999999-23:59", "3000-01-01T23:58:59.999999Z"),
                         ("2999-12-31T23:59:59.999999Z", "2999-12-31T23:59:59.999999Z")):
        r = mod.put(f"/api/users/{name}/suspension", json={"until": until})
        assert r.status_code == 200 and r.json()["user"]["suspended_until"] == shown, (until, r.text)
        profile = http.get(f"{server.url}/api/users/{name}", timeout=30)
        assert profile.status_code == 200 and profile.json()["user"]["suspended_until"] == shown, profile.text
        signin = http.post(server.url + "/api/session", json={"username": name, "password": PASSWORD}, timeout=30)
        assert signin.status_code == 403 and signin.json()["error"]["code"] == "suspended", signin.text
    # The start of the range is in the past: the same as null.
    r = mod.put(f"/api/users/{name}/suspension", json={"until": "2000-01-01T00:00:00+23:59"})
    assert r.status_code == 200 and r.json()["user"]["suspended_until"] is None, r.text

    # Cursors of the thread lists carry times (microseconds since 1970): one outside the range names no position.
    for year in (1, 1970, 1999, 3000, 9999):
        value = micros(datetime(year, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
        for sort, key in (("activity", [value, 1]), ("newest", ["n", value, 1])):
            cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
            r = http.get(f"{server.url}/api/threads", params={"sort": sort, "before": cursor}, timeout=30)
            assert r.status_code == 404 and r.json()["error"]["code"] == "bad_cursor", (year, sort, r.text)
            assert r.json()["error"]["field"] == "before"
