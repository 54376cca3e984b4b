"""A first check that the fixtures start a real server."""


def test_server_answers_healthz_and_readyz(server):
    """A spawned `parley serve` answers /healthz and, with Redis up, /readyz."""
    import httpx
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200 and r.json()["broker"] == "redis"
