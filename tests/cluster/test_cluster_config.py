"""PARLEY_REDIS_CLUSTER: Redis Cluster is a configuration switch, checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import config
from server.live.cluster import parse_urls

BASE = {"PARLEY_SECRET": "test-secret-0123456789abcdef"}


def load(tmp_path: Path, **env: str) -> config.Settings:
    return config.load({**BASE, "PARLEY_DATA_DIR": str(tmp_path), **env}, env_file=tmp_path / "none.env")


def test_cluster_switch_takes_seed_node_list(tmp_path):
    """PARLEY_REDIS_CLUSTER=on with comma-separated REDIS_URL seeds parses; the broker sees every seed."""
    s = load(tmp_path, PARLEY_REDIS_CLUSTER="on", REDIS_URL="redis://a:7000, redis://:pw@b:7001/0")
    assert s.redis_cluster and s.redis_url == "redis://a:7000,redis://:pw@b:7001/0"
    seeds, ep, options = parse_urls(s.redis_url)
    assert seeds == [("a", 7000), ("b", 7001)]
    assert (ep.username, ep.password, ep.tls) == (None, "pw", None)
    assert options == {"username": None, "password": "pw"}
    assert not load(tmp_path, REDIS_URL="redis://a:6379/0").redis_cluster


@pytest.mark.parametrize(("env", "message"), [
    ({"REDIS_URL": "redis://a:7000,redis://b:7001"}, "PARLEY_REDIS_CLUSTER=on"),
    ({"PARLEY_REDIS_CLUSTER": "on"}, "needs REDIS_URL"),
    ({"PARLEY_REDIS_CLUSTER": "on", "REDIS_URL": "redis://a:7000/2"}, "only database 0"),
    ({"PARLEY_REDIS_CLUSTER": "on", "REDIS_URL": "unix:///run/redis.sock"}, "redis://"),
    ({"PARLEY_REDIS_CLUSTER": "maybe", "REDIS_URL": "redis://a:7000"}, "on or off"),
    ({"PARLEY_REDIS_SHARDED_PUBSUB": "on", "REDIS_URL": "redis://a:6379"}, "PARLEY_REDIS_CLUSTER=on"),
])
def test_cluster_misconfiguration_is_one_clear_error(tmp_path, env, message):
    """A wrong cluster setting stops start-up with a ConfigError naming what to fix."""
    with pytest.raises(config.ConfigError, match=message):
        load(tmp_path, **env)
