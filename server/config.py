"""Settings, read once from the environment (and `.env`), validated at start-up.

This is the only module that reads os.environ. A bad value raises ConfigError
whose message is the one line `parley` prints before exiting with code 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values


class ConfigError(Exception):
    """A configuration value is wrong; str(exc) names the variable."""


@dataclass(frozen=True)
class RateLimits:
    """Token-bucket sizes: (capacity, refill per second). Defaults are far above a person's pace.

    "ip" and "address" mean auth.address_key(): an IPv4 address, or an IPv6 client's /64.
    Sign-in failures (docs/security.md, "Password guessing") are counted per (address, account), per address
    and per account; the account's bucket never refuses an address that has not failed on the account."""

    signup_per_ip: tuple[int, float] = (10, 10 / 3600)
    signup_per_ip_day: tuple[int, float] = (20, 20 / 86400)
    signin_per_ip: tuple[int, float] = (30, 30 / 300)
    signin_failures_per_address_account: tuple[int, float] = (10, 10 / 900)
    signin_failures_per_address: tuple[int, float] = (30, 30 / 3600)
    signin_failures_per_account: tuple[int, float] = (50, 50 / 3600)
    post_per_user: tuple[int, float] = (20, 20 / 60)
    edit_per_user: tuple[int, float] = (30, 30 / 60)
    vote_per_user: tuple[int, float] = (120, 120 / 60)
    thread_per_user: tuple[int, float] = (5, 5 / 60)
    ws_frames: tuple[int, float] = (150, 20.0)  # a burst of 100 subscribes on connect must fit
    ws_typing: tuple[int, float] = (5, 1.0)  # per user and thread, across sockets and processes
    password_change_per_user: tuple[int, float] = (5, 5 / 3600)  # each costs two argon2 hashes
    # The page reports a read position at most once per 1.5 s per tab, and only when the thread's seq grew.
    read_per_user: tuple[int, float] = (120, 2.0)
    notifications_read_per_user: tuple[int, float] = (60, 1.0)
    moderation_per_user: tuple[int, float] = (120, 2.0)  # categories, settling flags, suspensions
    # Draft saves: the page saves at most one per DRAFT_SAVE_DELAY_MS pause per box (server/limits.py), so a
    # fast typist in two boxes stays far below this; a script writing drafts in a loop does not.
    draft_per_user: tuple[int, float] = (120, 2.0)
    # Searches (each may hold a database connection up to PARLEY_SEARCH_TIMEOUT_SECONDS): the page searches
    # on submit and on "Show more", a person a few times a minute. An address may be shared (an office, NAT).
    search_per_user: tuple[int, float] = (30, 30 / 60)
    search_per_ip: tuple[int, float] = (60, 60 / 60)
    # Verification and reset mails (server/api/email.py): per address (the one mailed, any case) and per
    # client address. A person asks for a few; a script mailing someone over and over gets 429.
    mail_per_address: tuple[int, float] = (5, 5 / 3600)
    mail_per_ip: tuple[int, float] = (20, 20 / 3600)
    # Confirming a token (verify, reset): guessing one is hopeless (256 bits), but each try costs a hash.
    token_per_ip: tuple[int, float] = (30, 30 / 300)
    # Uploads (each costs a worker up to a second of CPU): a person pastes a few screenshots in a row; the
    # day's quota (store/uploads.py: 50 uploads, 100 MiB) is the other bound.
    upload_per_user: tuple[int, float] = (10, 10 / 60)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    redis_ping_seconds: float = 10.0  # an idle subscriber pings; unanswered for as long again → reconnect
    redis_cluster: bool = False  # REDIS_URL names one or more Redis Cluster nodes (comma-separated)
    secret: str = ""
    allowed_origins: tuple[str, ...] = ()
    rate_limits_enabled: bool = True
    trust: str = "open"  # PARLEY_TRUST: the privilege preset (server/privileges.py PRESETS)
    spam_check_url: str | None = None  # PARLEY_SPAM_CHECK_URL: an Akismet-compatible comment-check URL
    spam_check_timeout_seconds: float = 2.0  # the checker's whole round trip; past it the post is published
    event_retention_days: int = 30
    ws_compression: bool = False
    log_format: str = "text"
    data_dir: Path = field(default_factory=lambda: Path.cwd() / ".parley")
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    session_idle_days: float = 30.0
    session_cache_size: int = 10_000  # sessions the reply path keeps per process (server/sessioncache.py); 0: off
    presence_grace_seconds: float = 15.0
    presence_lease_seconds: float = 30.0
    ws_heartbeat_seconds: float = 20.0
    # The recent history a resume is served from (server/live/rooms.py, docs/live.md): per room, its last
    # this many events, none older than this many seconds; a resume further back reads thread_events.
    history_events: int = 64
    history_seconds: float = 300.0
    ws_max_pending_bytes: int = 1 << 20
    render_workers: int = 2           # processes that render Markdown (server/render.py)
    render_budget_seconds: float = 1.0  # a body that takes longer to render is refused (422)
    search_timeout_seconds: float = 0.8  # a search's statements together; past it the search is 422 field q
    max_connections_per_ip: int = 2000
    demo_on_empty: bool = True
    db_pool_size: int = 20
    # argon2id's memory per password hash (KiB). OWASP's minimum is the default; less is for test suites, which
    # make thousands of accounts (as Django's docs advise a fast hasher for tests): start-up logs a warning.
    password_hash_memory_kib: int = 19456
    # Prepared statements asyncpg keeps per connection (its default, 100); 0 for PgBouncer in transaction
    # mode before 1.21 (docs/operations.md "PgBouncer in transaction mode"): unnamed statements only.
    db_statement_cache: int = 100
    # Read replicas (server/replicas.py, docs/operations.md "Read replicas and failover").
    database_replica_urls: tuple[str, ...] = ()
    replica_max_lag_seconds: float = 5.0
    gc_freeze: bool = True  # freeze start-up's objects out of garbage collection (server/gcpolicy.py)
    body_timeout_seconds: float = 20.0  # end of a request's head → last byte of its body; then 408 (httpguard.py)
    limits: RateLimits = field(default_factory=RateLimits)
    # E-mail (docs/operations.md "E-mail"). public_url: the base of every link in a mail (None: the server's
    # own origin, which `parley serve` sets from --host/--port). smtp_url None: mail is written to mail/ in
    # the data directory. smtp_listen: (host, port) of the reply-by-mail listener, or None.
    public_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "Parley <parley@localhost>"
    smtp_listen: tuple[str, int] | None = None
    mail_delay_seconds: float = 120.0
    # Pictures (docs/operations.md "Pictures"): a directory (relative: in the data directory) or s3://BUCKET/PREFIX
    # at s3_endpoint (None: AWS's) with the AWS_* credentials (None: boto3's own chain).
    upload_store: str = "uploads"
    upload_max_bytes: int = 8 * 1024 * 1024
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    # Webhooks (docs/operations.md "Webhooks"): private, loopback and link-local targets allowed (tests, a LAN);
    # how many delivery tasks this process runs (0: it delivers none; any other process does).
    webhook_allow_private: bool = False
    webhook_workers: int = 4
    # Single sign-on (docs/operations.md "Single sign-on"): OpenID Connect, all three or none; sso_only turns
    # password sign-up, sign-in and reset off.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    sso_only: bool = False
    # Who may read /metrics (by auth.client_ip): loopback unless PARLEY_METRICS_ALLOW says otherwise.
    metrics_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

    @property
    def embedded_db(self) -> bool:
        return self.database_url is None


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}")


def _number(name: str, raw: str, cast: type[int] | type[float], low: float, high: float) -> float:
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, not {raw!r}")
    return value


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(f"{name} must start with {' or '.join(s + '://' for s in schemes)}, not {raw!r}")
    return raw


def _pg_url(name: str, raw: str) -> str:
    """A PostgreSQL URL; its host part may list several host:port (libpq's multi-host form, which asyncpg
    tries in order: with ?target_session_attrs=read-write it connects to whichever is the primary)."""
    raw = raw.strip()
    try:
        parts = urlsplit(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{name} must start with postgresql:// or postgres://, not {raw!r}")
    hosts = parts.netloc.rpartition("@")[2]
    for host in hosts.split(","):
        try:
            urlsplit(f"//{host}").port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    return raw


def _public_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"PARLEY_PUBLIC_URL must be a URL like https://forum.example, not {raw!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _mail_from(raw: str) -> str:
    from email.errors import HeaderParseError
    from email.headerregistry import HeaderRegistry

    try:
        header = HeaderRegistry()("from", raw)
        addresses = header.addresses  # type: ignore[attr-defined]
    except (HeaderParseError, IndexError, ValueError):
        addresses = ()
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain or header.defects:
        raise ConfigError(f"PARLEY_MAIL_FROM must be one address like 'Forum <forum@example.org>', not {raw!r}")
    return str(header)


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"PARLEY_SMTP_LISTEN must be HOST:PORT, like 127.0.0.1:2525, not {raw!r}")
    return host, int(port)


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _upload_store(raw: str) -> str:
    """A directory, or s3://BUCKET/PREFIX (a bucket name as S3 allows it, an optional prefix)."""
    raw = raw.strip()
    if raw.startswith("s3://"):
        bucket, _, prefix = raw[5:].partition("/")
        if not _BUCKET.fullmatch(bucket) or any(c in prefix for c in "?#\\"):
            raise ConfigError(f"PARLEY_UPLOAD_STORE must be a directory or s3://BUCKET/PREFIX, not {raw!r}")
        return raw.rstrip("/")
    if "://" in raw:
        raise ConfigError(f"PARLEY_UPLOAD_STORE must be a directory or s3://BUCKET/PREFIX, not {raw!r}")
    return raw


def _oidc(issuer: str | None, client_id: str | None, client_secret: str | None,
          sso_only: str | None) -> dict[str, object]:
    """PARLEY_OIDC_ISSUER, _CLIENT_ID and _CLIENT_SECRET (all or none) and PARLEY_SSO_ONLY. The issuer is https,
    or http on a loopback address only (a provider in the same host, as in tests)."""
    names = ("PARLEY_OIDC_ISSUER", "PARLEY_OIDC_CLIENT_ID", "PARLEY_OIDC_CLIENT_SECRET")
    kw: dict[str, object] = {}
    given = [n for n, v in zip(names, (issuer, client_id, client_secret), strict=True) if v is not None]
    if given and len(given) < 3:
        missing = next(n for n in names if n not in given)
        raise ConfigError(f"{missing} is required with {given[0]} (single sign-on needs all three)")
    if issuer is not None:
        parts = urlsplit(issuer.strip())
        loopback = False
        try:
            loopback = parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback
        except ValueError:
            pass
        if parts.query or parts.fragment or not parts.hostname or not (
                parts.scheme == "https" or (parts.scheme == "http" and loopback)):
            raise ConfigError(f"PARLEY_OIDC_ISSUER must be an https URL (http only on a loopback address), "
                              f"not {issuer!r}")
        kw.update(oidc_issuer=issuer.strip().rstrip("/"), oidc_client_id=client_id, oidc_client_secret=client_secret)
    if sso_only is not None:
        kw["sso_only"] = _bool("PARLEY_SSO_ONLY", sso_only)
        if kw["sso_only"] and issuer is None:
            raise ConfigError("PARLEY_SSO_ONLY=on needs PARLEY_OIDC_ISSUER (else nobody could sign in)")
    return kw


def _origin(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(f"PARLEY_ALLOWED_ORIGINS: {raw.strip()!r} is not an origin like https://forum.example")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _secret(data_dir: Path) -> str:
    """The cookie-signing secret, generated once and kept under the data folder."""
    path = data_dir / "secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(f".{os.getpid()}")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # first writer wins when two processes start at once
    except FileExistsError:
        pass
    tmp.unlink()
    return path.read_text().strip()


def load(environ: dict[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build Settings from the environment, then `.env` for what it does not set."""
    env: dict[str, str] = {}
    dotenv = env_file if env_file is not None else Path.cwd() / ".env"
    if dotenv.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    kw: dict[str, object] = {}
    if (raw := get("DATABASE_URL")) is not None:
        kw["database_url"] = _pg_url("DATABASE_URL", raw)
    if (raw := get("PARLEY_REDIS_CLUSTER")) is not None:
        kw["redis_cluster"] = _bool("PARLEY_REDIS_CLUSTER", raw)
    if (raw := get("REDIS_URL")) is not None:
        if kw.get("redis_cluster"):  # seed nodes, any one is enough: redis://h1:7000,redis://h2:7001
            urls = [_url("REDIS_URL", u.strip(), ("redis", "rediss")) for u in raw.split(",") if u.strip()]
            if any(urlsplit(u).path not in ("", "/", "/0") for u in urls):
                raise ConfigError("REDIS_URL: a Redis Cluster has only database 0")
            kw["redis_url"] = ",".join(urls)
        elif "," in raw:
            raise ConfigError("REDIS_URL lists several servers: for a Redis Cluster set PARLEY_REDIS_CLUSTER=on")
        else:
            kw["redis_url"] = _url("REDIS_URL", raw, ("redis", "rediss", "unix"))
    if kw.get("redis_cluster") and not kw.get("redis_url"):
        raise ConfigError("PARLEY_REDIS_CLUSTER=on needs REDIS_URL: one or more cluster nodes, comma-separated")
    if (raw := get("PARLEY_REDIS_SHARDED_PUBSUB")) is not None and _bool("PARLEY_REDIS_SHARDED_PUBSUB", raw):
        # Removed: one connection cannot follow a cluster's MOVED; the cluster broker does sharded pub/sub.
        raise ConfigError("PARLEY_REDIS_SHARDED_PUBSUB is gone: for a Redis Cluster set PARLEY_REDIS_CLUSTER=on")
    if (raw := get("PARLEY_REDIS_PING_SECONDS")) is not None:
        kw["redis_ping_seconds"] = _number("PARLEY_REDIS_PING_SECONDS", raw, float, 0.2, 300)
    if (raw := get("PARLEY_DATA_DIR")) is not None:
        kw["data_dir"] = Path(raw).resolve()
    if (raw := get("PARLEY_ALLOWED_ORIGINS")) is not None:
        kw["allowed_origins"] = tuple(_origin(o) for o in raw.split(",") if o.strip())
    if (raw := get("PARLEY_RATE_LIMITS")) is not None:
        kw["rate_limits_enabled"] = _bool("PARLEY_RATE_LIMITS", raw)
    if (raw := get("PARLEY_TRUST")) is not None:
        if raw not in ("open", "standard"):
            raise ConfigError(f"PARLEY_TRUST must be open or standard, not {raw!r}")
        kw["trust"] = raw
    if (raw := get("PARLEY_SPAM_CHECK_URL")) is not None:
        url = _url("PARLEY_SPAM_CHECK_URL", raw, ("http", "https"))
        if not urlsplit(url).hostname:
            raise ConfigError(f"PARLEY_SPAM_CHECK_URL needs a host, not {raw!r}")
        kw["spam_check_url"] = url
    if (raw := get("PARLEY_EVENT_RETENTION_DAYS")) is not None:
        kw["event_retention_days"] = int(_number("PARLEY_EVENT_RETENTION_DAYS", raw, int, 1, 36500))
    if (raw := get("PARLEY_WS_COMPRESSION")) is not None:
        kw["ws_compression"] = _bool("PARLEY_WS_COMPRESSION", raw)
    if (raw := get("PARLEY_LOG_FORMAT")) is not None:
        if raw not in ("text", "json"):
            raise ConfigError(f"PARLEY_LOG_FORMAT must be text or json, not {raw!r}")
        kw["log_format"] = raw
    if (raw := get("PARLEY_TRUSTED_PROXIES")) is not None:
        try:
            kw["trusted_proxies"] = tuple(ipaddress.ip_network(p.strip()) for p in raw.split(",") if p.strip())
        except ValueError as exc:
            raise ConfigError(f"PARLEY_TRUSTED_PROXIES: {exc}") from None
    if (raw := get("PARLEY_METRICS_ALLOW")) is not None:
        try:
            kw["metrics_allow"] = tuple(ipaddress.ip_network(p.strip()) for p in raw.split(",") if p.strip())
        except ValueError as exc:
            raise ConfigError(f"PARLEY_METRICS_ALLOW: {exc} (IPs or CIDRs, comma-separated)") from None
    if (raw := get("PARLEY_SESSION_IDLE_DAYS")) is not None:
        kw["session_idle_days"] = _number("PARLEY_SESSION_IDLE_DAYS", raw, float, 0.0001, 3650)
    if (raw := get("PARLEY_SESSION_CACHE_SIZE")) is not None:
        kw["session_cache_size"] = int(_number("PARLEY_SESSION_CACHE_SIZE", raw, int, 0, 1_000_000))
    if (raw := get("PARLEY_PRESENCE_GRACE_SECONDS")) is not None:
        kw["presence_grace_seconds"] = _number("PARLEY_PRESENCE_GRACE_SECONDS", raw, float, 0, 30)
    if (raw := get("PARLEY_WS_HEARTBEAT_SECONDS")) is not None:
        kw["ws_heartbeat_seconds"] = _number("PARLEY_WS_HEARTBEAT_SECONDS", raw, float, 1, 300)
    if (raw := get("PARLEY_HISTORY_EVENTS")) is not None:
        kw["history_events"] = int(_number("PARLEY_HISTORY_EVENTS", raw, int, 1, 10_000))
    if (raw := get("PARLEY_HISTORY_SECONDS")) is not None:
        kw["history_seconds"] = _number("PARLEY_HISTORY_SECONDS", raw, float, 0, 86_400)
    if (raw := get("PARLEY_WS_MAX_PENDING_BYTES")) is not None:
        kw["ws_max_pending_bytes"] = int(_number("PARLEY_WS_MAX_PENDING_BYTES", raw, int, 16384, 1 << 30))
    if (raw := get("PARLEY_RENDER_WORKERS")) is not None:
        kw["render_workers"] = int(_number("PARLEY_RENDER_WORKERS", raw, int, 1, 64))
    if (raw := get("PARLEY_RENDER_BUDGET_SECONDS")) is not None:
        kw["render_budget_seconds"] = _number("PARLEY_RENDER_BUDGET_SECONDS", raw, float, 0.01, 60)
    if (raw := get("PARLEY_SEARCH_TIMEOUT_SECONDS")) is not None:
        kw["search_timeout_seconds"] = _number("PARLEY_SEARCH_TIMEOUT_SECONDS", raw, float, 0.05, 60)
    if (raw := get("PARLEY_MAX_CONNECTIONS_PER_IP")) is not None:
        kw["max_connections_per_ip"] = int(_number("PARLEY_MAX_CONNECTIONS_PER_IP", raw, int, 1, 10**7))
    if (raw := get("PARLEY_BODY_TIMEOUT_SECONDS")) is not None:
        kw["body_timeout_seconds"] = _number("PARLEY_BODY_TIMEOUT_SECONDS", raw, float, 0.5, 300)
    if (raw := get("PARLEY_DB_POOL_SIZE")) is not None:
        kw["db_pool_size"] = int(_number("PARLEY_DB_POOL_SIZE", raw, int, 2, 1000))
    if (raw := get("PARLEY_PASSWORD_HASH_MEMORY_KIB")) is not None:
        kw["password_hash_memory_kib"] = int(_number("PARLEY_PASSWORD_HASH_MEMORY_KIB", raw, int, 8, 4 * 1024 * 1024))
    if (raw := get("PARLEY_DB_STATEMENT_CACHE")) is not None:
        kw["db_statement_cache"] = int(_number("PARLEY_DB_STATEMENT_CACHE", raw, int, 0, 10000))
    if (raw := get("PARLEY_DATABASE_REPLICA_URLS")) is not None:
        # Comma-separated, one host each (a multi-host URL split at its commas names no scheme: refused).
        kw["database_replica_urls"] = tuple(_pg_url("PARLEY_DATABASE_REPLICA_URLS", u)
                                            for u in raw.split(",") if u.strip())
    if (raw := get("PARLEY_REPLICA_MAX_LAG_SECONDS")) is not None:
        kw["replica_max_lag_seconds"] = _number("PARLEY_REPLICA_MAX_LAG_SECONDS", raw, float, 0.1, 3600)
    if (raw := get("PARLEY_GC_FREEZE")) is not None:
        kw["gc_freeze"] = _bool("PARLEY_GC_FREEZE", raw)
    if (raw := get("PARLEY_PUBLIC_URL")) is not None:
        kw["public_url"] = _public_url(raw)
    if (raw := get("PARLEY_SMTP_URL")) is not None:
        url = _url("PARLEY_SMTP_URL", raw, ("smtp", "smtps"))
        if not urlsplit(url).hostname:
            raise ConfigError(f"PARLEY_SMTP_URL names no host: {raw!r}")
        kw["smtp_url"] = url
    if (raw := get("PARLEY_MAIL_FROM")) is not None:
        kw["mail_from"] = _mail_from(raw)
    elif "smtp_url" in kw:
        raise ConfigError("PARLEY_MAIL_FROM is required when PARLEY_SMTP_URL is set (the sender of every mail)")
    if (raw := get("PARLEY_SMTP_LISTEN")) is not None:
        kw["smtp_listen"] = _listen(raw)
    if (raw := get("PARLEY_MAIL_DELAY_SECONDS")) is not None:
        kw["mail_delay_seconds"] = _number("PARLEY_MAIL_DELAY_SECONDS", raw, float, 0, 86400 * 7)
    if (raw := get("PARLEY_UPLOAD_STORE")) is not None:
        kw["upload_store"] = _upload_store(raw)
    if (raw := get("PARLEY_UPLOAD_MAX_BYTES")) is not None:
        kw["upload_max_bytes"] = int(_number("PARLEY_UPLOAD_MAX_BYTES", raw, int, 1024, 1 << 30))
    if (raw := get("PARLEY_S3_ENDPOINT")) is not None:
        kw["s3_endpoint"] = _url("PARLEY_S3_ENDPOINT", raw, ("http", "https"))
    if str(kw.get("upload_store", "")).startswith("s3://"):
        kw["s3_access_key"] = get("AWS_ACCESS_KEY_ID")
        kw["s3_secret_key"] = get("AWS_SECRET_ACCESS_KEY")
        kw["s3_region"] = get("AWS_REGION") or get("AWS_DEFAULT_REGION")
        if (kw["s3_access_key"] is None) != (kw["s3_secret_key"] is None):
            raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither")
    if (raw := get("PARLEY_WEBHOOK_ALLOW_PRIVATE")) is not None:
        kw["webhook_allow_private"] = _bool("PARLEY_WEBHOOK_ALLOW_PRIVATE", raw)
    if (raw := get("PARLEY_WEBHOOK_WORKERS")) is not None:
        kw["webhook_workers"] = int(_number("PARLEY_WEBHOOK_WORKERS", raw, int, 0, 64))
    kw.update(_oidc(get("PARLEY_OIDC_ISSUER"), get("PARLEY_OIDC_CLIENT_ID"), get("PARLEY_OIDC_CLIENT_SECRET"),
                    get("PARLEY_SSO_ONLY")))
    if (raw := get("PARLEY_DEMO")) is not None:
        kw["demo_on_empty"] = _bool("PARLEY_DEMO", raw)
    data_dir = kw.setdefault("data_dir", Path.cwd() / ".parley")
    assert isinstance(data_dir, Path)
    secret = get("PARLEY_SECRET")
    if secret is not None and len(secret) < 16:
        raise ConfigError("PARLEY_SECRET must be at least 16 characters")
    kw["secret"] = secret if secret is not None else _secret(data_dir)
    return Settings(**kw)  # type: ignore[arg-type]
