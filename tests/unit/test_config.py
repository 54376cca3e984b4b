"""Settings from the environment: defaults, casts, and one line naming the variable for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import config


def load(tmp_path: Path, **env: str) -> config.Settings:
    return config.load({"PARLEY_DATA_DIR": str(tmp_path), **env}, env_file=tmp_path / "none.env")


def test_defaults_without_any_variable(tmp_path):
    """Nothing set: the embedded database, the in-process broker, rate limits on, a generated secret kept."""
    s = load(tmp_path)
    assert s.database_url is None and s.redis_url is None and s.embedded_db
    assert s.rate_limits_enabled and s.event_retention_days == 30 and s.session_idle_days == 30
    assert len(s.secret) >= 32 and (tmp_path / "secret").read_text().strip() == s.secret
    assert load(tmp_path).secret == s.secret  # generated once


def test_values_are_cast(tmp_path):
    """Numbers, switches, origins and proxies are read into their types."""
    s = load(tmp_path, DATABASE_URL="postgresql://u@db/x", REDIS_URL="redis://r:6379/0", PARLEY_RATE_LIMITS="off",
             PARLEY_EVENT_RETENTION_DAYS="7", PARLEY_ALLOWED_ORIGINS="https://A.example, http://b.example:8080",
             PARLEY_TRUSTED_PROXIES="10.0.0.0/8", PARLEY_SECRET="s" * 20, PARLEY_SEARCH_TIMEOUT_SECONDS="0.5")
    assert s.database_url == "postgresql://u@db/x" and s.redis_url == "redis://r:6379/0"
    assert not s.rate_limits_enabled and s.event_retention_days == 7
    assert s.allowed_origins == ("https://a.example", "http://b.example:8080")
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8"] and s.secret == "s" * 20
    assert s.search_timeout_seconds == 0.5 and load(tmp_path).search_timeout_seconds == 0.8
    assert load(tmp_path).password_hash_memory_kib == 19456
    assert load(tmp_path, PARLEY_PASSWORD_HASH_MEMORY_KIB="64").password_hash_memory_kib == 64


def test_a_dotenv_file_fills_in_what_the_environment_does_not_set(tmp_path):
    """`.env` supplies values; the environment wins over it."""
    env_file = tmp_path / ".env"
    env_file.write_text("PARLEY_EVENT_RETENTION_DAYS=9\nPARLEY_RATE_LIMITS=off\n")
    s = config.load({"PARLEY_DATA_DIR": str(tmp_path), "PARLEY_RATE_LIMITS": "on"}, env_file=env_file)
    assert s.event_retention_days == 9 and s.rate_limits_enabled


@pytest.mark.parametrize("name, value", [
    ("DATABASE_URL", "mysql://x"), ("REDIS_URL", "http://r"), ("PARLEY_RATE_LIMITS", "maybe"),
    ("PARLEY_EVENT_RETENTION_DAYS", "0"), ("PARLEY_EVENT_RETENTION_DAYS", "ten"), ("PARLEY_SECRET", "short"),
    ("PARLEY_ALLOWED_ORIGINS", "forum.example"), ("PARLEY_TRUSTED_PROXIES", "10.0.0.300"),
    ("PARLEY_LOG_FORMAT", "xml"), ("PARLEY_WS_MAX_PENDING_BYTES", "10"), ("PARLEY_DB_POOL_SIZE", "1"),
    ("PARLEY_DB_STATEMENT_CACHE", "-1"), ("PARLEY_DB_STATEMENT_CACHE", "none"),
    ("PARLEY_PASSWORD_HASH_MEMORY_KIB", "4"), ("PARLEY_PASSWORD_HASH_MEMORY_KIB", "19MiB"),
    ("PARLEY_PRESENCE_GRACE_SECONDS", "99"), ("PARLEY_REDIS_CLUSTER", "on"), ("PARLEY_SEARCH_TIMEOUT_SECONDS", "0"),
    ("PARLEY_SEARCH_TIMEOUT_SECONDS", "soon"), ("PARLEY_PUBLIC_URL", "forum.example"),
    ("PARLEY_PUBLIC_URL", "ftp://forum.example"), ("PARLEY_SMTP_URL", "http://mail.example"),
    ("PARLEY_SMTP_URL", "smtp://"), ("PARLEY_SMTP_URL", "smtp://mail.example:99999"), ("PARLEY_MAIL_FROM", "nobody"),
    ("PARLEY_MAIL_FROM", "a@b.example, c@d.example"), ("PARLEY_SMTP_LISTEN", "2525"),
    ("PARLEY_SMTP_LISTEN", "127.0.0.1:70000"), ("PARLEY_MAIL_DELAY_SECONDS", "-1"),
    ("PARLEY_MAIL_DELAY_SECONDS", "later"), ("PARLEY_GC_FREEZE", "sometimes"),
    ("PARLEY_DATABASE_REPLICA_URLS", "mysql://replica"), ("PARLEY_DATABASE_REPLICA_URLS", "postgresql://r:70000/db"),
    ("PARLEY_DATABASE_REPLICA_URLS", "postgresql://r1:5432,r2:5432/db"), ("PARLEY_REPLICA_MAX_LAG_SECONDS", "0"),
    ("PARLEY_REPLICA_MAX_LAG_SECONDS", "soon"), ("DATABASE_URL", "postgresql://a:5432,b:x/db"),
    ("PARLEY_WEBHOOK_ALLOW_PRIVATE", "sometimes"), ("PARLEY_HISTORY_EVENTS", "0"), ("PARLEY_HISTORY_SECONDS", "-1"),
    ("PARLEY_HISTORY_SECONDS", "soon"),
    ("PARLEY_WEBHOOK_WORKERS", "100"), ("PARLEY_OIDC_ISSUER", "http://id.example.org"),
    ("PARLEY_OIDC_CLIENT_SECRET", "s3cret"), ("PARLEY_SSO_ONLY", "on"),
    ("PARLEY_MAIL_DELAY_SECONDS", "later"), ("PARLEY_TRUST", "strict"), ("PARLEY_TRUST", "Standard"),
])
def test_a_bad_value_names_its_variable(tmp_path, name, value):
    """Every bad value raises ConfigError whose one-line message names the variable."""
    with pytest.raises(config.ConfigError) as err:
        load(tmp_path, **{name: value})
    message = str(err.value)
    assert name in message and "\n" not in message


def test_single_sign_on_settings(tmp_path):
    """The issuer is https, or http on loopback; the three go together (the missing one is named); SSO-only reads."""
    oidc = {"PARLEY_OIDC_ISSUER": "https://id.example.org/", "PARLEY_OIDC_CLIENT_ID": "parley",
            "PARLEY_OIDC_CLIENT_SECRET": "s3cret", "PARLEY_SSO_ONLY": "on"}
    s = load(tmp_path, **oidc)
    assert (s.oidc_issuer, s.oidc_client_id, s.sso_only) == ("https://id.example.org", "parley", True)
    assert load(tmp_path, **{**oidc, "PARLEY_OIDC_ISSUER": "http://127.0.0.1:9000"}).oidc_issuer == \
        "http://127.0.0.1:9000"
    with pytest.raises(config.ConfigError, match="^PARLEY_OIDC_CLIENT_SECRET is required"):
        load(tmp_path, PARLEY_OIDC_ISSUER="https://id.example.org", PARLEY_OIDC_CLIENT_ID="parley")
    with pytest.raises(config.ConfigError, match="^PARLEY_OIDC_ISSUER must be an https URL"):
        load(tmp_path, **{**oidc, "PARLEY_OIDC_ISSUER": "http://10.0.0.1"})


def test_metrics_allow_is_validated(tmp_path):
    """PARLEY_METRICS_ALLOW: loopback by default, a list of IPs/CIDRs, and a bad entry stops start-up naming it."""
    assert [str(n) for n in load(tmp_path).metrics_allow] == ["127.0.0.0/8", "::1/128"]
    got = load(tmp_path, PARLEY_METRICS_ALLOW="10.0.0.0/8, 192.0.2.7,::1")
    assert [str(n) for n in got.metrics_allow] == ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]
    for bad in ("10.0.0.1/8", "localhost", "10.0.0.0/33", "1.2.3.4,nope"):
        with pytest.raises(config.ConfigError, match="^PARLEY_METRICS_ALLOW: "):
            load(tmp_path, PARLEY_METRICS_ALLOW=bad)


def test_mail_settings(tmp_path):
    """E-mail: nothing set writes mail to the data directory from Parley <parley@localhost> after 120 s; the
    SMTP URL needs PARLEY_MAIL_FROM (a one-line error naming it); the listener and the public URL are read."""
    s = load(tmp_path)
    assert s.smtp_url is None and s.mail_from == "Parley <parley@localhost>" and s.smtp_listen is None
    assert s.mail_delay_seconds == 120 and s.public_url is None
    with pytest.raises(config.ConfigError, match="PARLEY_MAIL_FROM"):
        load(tmp_path, PARLEY_SMTP_URL="smtp://mail.example:587")
    s = load(tmp_path, PARLEY_SMTP_URL="smtps://u:p@mail.example:465", PARLEY_MAIL_FROM="Forum <forum@example.org>",
             PARLEY_SMTP_LISTEN="[::1]:2525", PARLEY_PUBLIC_URL="https://forum.example/community/",
             PARLEY_MAIL_DELAY_SECONDS="0")
    assert s.smtp_url == "smtps://u:p@mail.example:465" and s.mail_from == "Forum <forum@example.org>"
    assert s.smtp_listen == ("::1", 2525) and s.public_url == "https://forum.example/community"
    assert s.mail_delay_seconds == 0


def test_replica_urls_and_a_multi_host_database_url(tmp_path):
    """Replica URLs are comma-separated, one host each; DATABASE_URL may name several hosts (failover)."""
    s = config.load({"PARLEY_DATA_DIR": str(tmp_path), "PARLEY_SECRET": "x" * 20,
                     "DATABASE_URL": "postgresql://p@a:5432,b:5433/db?target_session_attrs=read-write",
                     "PARLEY_DATABASE_REPLICA_URLS": "postgresql://r@r1:5432/db, postgresql://r@r2/db",
                     "PARLEY_REPLICA_MAX_LAG_SECONDS": "2.5"})
    assert s.database_url == "postgresql://p@a:5432,b:5433/db?target_session_attrs=read-write"
    assert s.database_replica_urls == ("postgresql://r@r1:5432/db", "postgresql://r@r2/db")
    assert s.replica_max_lag_seconds == 2.5
    assert config.load({"PARLEY_DATA_DIR": str(tmp_path)}).database_replica_urls == ()
