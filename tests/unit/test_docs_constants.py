"""The numbers the docs quote are the code's: settings and their defaults (README.md, docs/operations.md),
the rate limits (docs/security.md), the request limits, presence's grace and lease, BROADCAST_MIN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import config, httpguard
from server.api.inputs import MAX_BODY
from server.live.userchannel import BROADCAST_MIN

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "bench" / "README.md"]
GONE = {"PARLEY_REDIS_SHARDED_PUBSUB"}  # read only to refuse it with a message naming its replacement
FIELDS = {"PARLEY_RATE_LIMITS": "rate_limits_enabled", "PARLEY_DEMO": "demo_on_empty"}


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def table(doc: str, first_header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with `first_header`, as cells."""
    rows: list[list[str]] = []
    inside = False
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if inside:
                break
            continue
        if cells[0] == first_header:
            inside, rows = True, []
        elif inside and not set(cells[0]) <= {"-", ":"}:
            rows.append(cells)
    assert rows, f"no table starting with {first_header!r}"
    return rows


def settings_read_by_config() -> set[str]:
    source = text(ROOT / "server" / "config.py")
    return set(re.findall(r'get\("((?:PARLEY_|DATABASE_|REDIS_)[A-Z0-9_]+)"\)', source)) - GONE


def default_of(cell: str) -> object:
    """The first `code` token of a default cell: on/off → bool, a number → int/float, else None."""
    m = re.match(r"`([^`]+)`", cell)
    if not m:
        return None
    token = m.group(1)
    if token in ("on", "off"):
        return token == "on"
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return token


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_configuration_tables_list_every_setting_with_the_codes_default(doc: str) -> None:
    """Every variable server/config.py reads has a row, every row names one it reads, and every default the
    row quotes (a number, on/off, a word) is the Settings default."""
    rows = table(text(ROOT / doc), "variable")
    documented = {re.sub(r"`", "", r[0]) for r in rows}
    assert documented == settings_read_by_config(), (documented ^ settings_read_by_config())
    defaults = config.Settings()
    for row in rows:
        name = row[0].strip("`")
        if not name.startswith("PARLEY_"):
            continue
        field = FIELDS.get(name, name.removeprefix("PARLEY_").lower())
        quoted = default_of(row[1])
        if quoted is None or not hasattr(defaults, field):
            continue
        actual = getattr(defaults, field)
        if isinstance(actual, tuple | list):
            continue  # lists (origins, proxies) are described in words
        if isinstance(actual, Path):
            quoted, actual = Path(str(quoted)).resolve(), actual.resolve()  # ./.parley: under the working folder
        assert quoted == actual, (doc, name, quoted, actual)


PERIODS = {"s": 1, "min": 60, "5 min": 300, "15 min": 900, "hour": 3600, "day": 86400}
# (bucket, key) as docs/security.md's table names them → the RateLimits field.
BUCKETS = {("sign-up", "address"): "signup_per_ip", ("sign-up, daily", "address"): "signup_per_ip_day",
           ("sign-in attempts", "address"): "signin_per_ip",
           ("sign-in failures", "address and account"): "signin_failures_per_address_account",
           ("sign-in failures", "address"): "signin_failures_per_address",
           ("sign-in failures", "account"): "signin_failures_per_account",
           ("replies and comments", "user"): "post_per_user", ("new threads", "user"): "thread_per_user",
           ("edits, renames, deletes", "user"): "edit_per_user", ("votes", "user"): "vote_per_user",
           ("websocket frames", "socket"): "ws_frames", ("typing frames", "user and thread"): "ws_typing",
           ("password changes", "user"): "password_change_per_user", ("read positions", "user"): "read_per_user",
           ("marking notifications read", "user"): "notifications_read_per_user",
           ("moderators' writes", "user"): "moderation_per_user",
           ("searches", "client address"): "search_per_ip", ("searches", "user"): "search_per_user",
           ("verification and reset mails", "address mailed"): "mail_per_address",
           ("verification and reset mails", "client address"): "mail_per_ip",
           ("confirming a token", "client address"): "token_per_ip", ("uploads", "user"): "upload_per_user",
           ("draft saves and deletes", "user"): "draft_per_user"}


def _name(cell: str) -> str:
    """A table cell without its parenthesised remark: "read positions (`PUT …`)" → "read positions"."""
    return re.sub(r"\s*\(.*\)\s*$", "", cell).strip()


def test_rate_limit_table_is_the_codes() -> None:
    """docs/security.md's bucket table: one row per RateLimits bucket, with its capacity and refill rate."""
    rows = table(text(ROOT / "docs" / "security.md"), "bucket")
    limits = config.RateLimits()
    assert {(_name(r[0]), _name(r[1])) for r in rows} == set(BUCKETS)
    assert set(BUCKETS.values()) == set(vars(limits))
    for bucket, key, capacity, refill, *_ in rows:
        want_capacity, want_rate = getattr(limits, BUCKETS[(_name(bucket), _name(key))])
        m = re.fullmatch(r"(\d+) per (.+)", refill)
        assert m and m.group(2) in PERIODS, refill
        assert int(capacity) == want_capacity, (bucket, capacity, want_capacity)
        assert int(m.group(1)) / PERIODS[m.group(2)] == pytest.approx(want_rate), (bucket, refill, want_rate)


def test_broadcast_min_is_quoted_as_it_is() -> None:
    """Wherever `userchannel.BROADCAST_MIN` is quoted with a number, the number is the code's."""
    quoted = [(p.name, int(n)) for p in DOCS
              for n in re.findall(r"`userchannel\.BROADCAST_MIN`\)?\s*[(,]\s*(\d+)", text(p))]
    assert quoted, "no doc quotes BROADCAST_MIN any more: drop this test"
    assert all(n == BROADCAST_MIN for _, n in quoted), (quoted, BROADCAST_MIN)


def test_request_limits_are_quoted_as_they_are() -> None:
    """The body cap (docs/api.md, docs/security.md) and the request-head cap and deadline (docs/security.md)."""
    api, security = text(ROOT / "docs" / "api.md"), text(ROOT / "docs" / "security.md")
    assert re.findall(r"a body over (\d+) KiB", api) == [str(MAX_BODY // 1024)]
    assert re.findall(r"≤ (\d+) KiB: a larger `Content-Length`", security) == [str(MAX_BODY // 1024)]
    head = re.findall(r"complete within (\d+) s of the connection or of the request's first byte, "
                      r"and at most (\d+) KiB", security)
    assert head == [(str(int(httpguard.HEAD_TIMEOUT)), str(httpguard.HEAD_MAX // 1024))]


def test_presence_grace_and_lease_are_quoted_as_they_are() -> None:
    """docs/presence.md: the grace period's default and ceiling, and the lease."""
    doc = text(ROOT / "docs" / "presence.md")
    grace = re.search(r"`PARLEY_PRESENCE_GRACE_SECONDS` \(default (\d+) s, at most (\d+)\)", doc)
    assert grace, "docs/presence.md no longer quotes the grace period"
    source = text(ROOT / "server" / "config.py")
    ceiling = re.search(r'_number\("PARLEY_PRESENCE_GRACE_SECONDS", raw, float, [\d.]+, (\d+)\)', source)
    assert ceiling
    assert (float(grace.group(1)), grace.group(2)) == (config.Settings().presence_grace_seconds, ceiling.group(1))
    lease = re.search(r"lease runs out \(≤ (\d+) s", doc)
    assert lease and float(lease.group(1)) == config.Settings().presence_lease_seconds
