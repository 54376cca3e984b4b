"""The S3 store against a real S3 endpoint on loopback (moto's standalone server): uploads go to the bucket
under the prefix, every host sharing the bucket serves them, and the cleanup deletes them there."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from PIL import Image

from server import housekeeping
from server.uploads.storage import S3Storage
from support.api import Api
from support.databases import db_fetch
from support.ports import free_port
from uploads import pictures

moto_server = pytest.importorskip("moto.server")

KEYS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a loopback port, with the bucket `forum`."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket="forum")
    yield url
    server.stop()


def bucket_keys(endpoint: str) -> set[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])
    return {o["Key"] for o in s3.list_objects_v2(Bucket="forum").get("Contents", [])}


def test_two_hosts_share_uploads_through_an_s3_bucket(spawn: Any, s3_endpoint: str, tmp_path: Path) -> None:
    """An upload on one host lands in the bucket under the prefix (image and thumbnail), and another host with
    its own data directory serves the same bytes (streamed), with ETag and 304; an avatar made on one host is
    served by the other; nothing is written to either directory."""
    env = {"PARLEY_UPLOAD_STORE": "s3://forum/site-a", "PARLEY_S3_ENDPOINT": s3_endpoint, **KEYS}
    one = spawn(**env, PARLEY_DATA_DIR=str(tmp_path / "one"))
    two = spawn(**env, PARLEY_DATA_DIR=str(tmp_path / "two"))
    api = Api(one.url).sign_up()
    r = api.post("/api/uploads", files={"file": ("wide.png", pictures.wide_png(1600, 200), "image/png")})
    assert r.status_code == 201, r.text
    up = r.json()["upload"]
    keys = bucket_keys(s3_endpoint)
    assert {f"site-a/{up['sha256']}.png", "site-a" + up["thumbnail_url"][len("/uploads"):]} <= keys
    other = Api(two.url)
    got = other.get(up["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert hashlib.sha256(got.content).hexdigest() == up["sha256"]
    assert other.get(up["url"], headers={"if-none-match": got.headers["etag"]}).status_code == 304
    assert other.get("/uploads/" + "c" * 64 + ".png").status_code == 404
    r = api.put("/api/me/avatar", json={"upload_id": up["id"]})  # the crop is made from the bucket's copy
    assert r.status_code == 200, r.text
    crop = other.get(r.json()["user"]["avatar_url"])
    assert crop.status_code == 200 and Image.open(io.BytesIO(crop.content)).size == (256, 256)
    assert int(crop.headers["content-length"]) == len(crop.content)
    for host in ("one", "two"):
        assert not (tmp_path / host / "uploads").exists() or not any((tmp_path / host / "uploads").iterdir())


def test_cleanup_deletes_objects_from_the_bucket(spawn: Any, s3_endpoint: str, tmp_path: Path) -> None:
    """An upload nothing refers to, a day old, is deleted from the bucket by housekeeping."""
    srv = spawn(PARLEY_UPLOAD_STORE="s3://forum/site-b", PARLEY_S3_ENDPOINT=s3_endpoint, **KEYS)
    api = Api(srv.url).sign_up()
    up = api.post("/api/uploads", files={"file": ("a.png", pictures.png(9, 9, (9, 8, 7)), "image/png")}).json()
    key = f"site-b/{up['upload']['sha256']}.png"
    assert key in bucket_keys(s3_endpoint)
    db = srv.env["DATABASE_URL"]
    db_fetch(db, "UPDATE uploads SET created_at = now() - interval '2 days' WHERE id = $1", up["upload"]["id"])
    store = S3Storage("s3://forum/site-b", s3_endpoint, KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"])

    async def clean() -> int | None:
        pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
        try:
            return await housekeeping.clean_uploads(pool, store)
        finally:
            await pool.close()

    # The server's own housekeeping may hold the cleanup (None) or run it first; either way the object goes.
    deadline = time.monotonic() + 30
    while key in bucket_keys(s3_endpoint) and time.monotonic() < deadline:
        if asyncio.run(clean()) is None:
            time.sleep(0.5)
    assert key not in bucket_keys(s3_endpoint)
    assert api.get(up["upload"]["url"]).status_code == 404


def test_an_unreachable_store_is_503_and_nothing_is_kept(spawn: Any) -> None:
    """With the S3 endpoint down, an upload is 503 (retry later), not a 500, and leaves no upload row."""
    srv = spawn(PARLEY_UPLOAD_STORE="s3://forum/down", PARLEY_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}", **KEYS)
    api = Api(srv.url).sign_up()
    r = api.post("/api/uploads", files={"file": ("a.png", pictures.png(8, 8, (1, 2, 3)), "image/png")})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert db_fetch(srv.env["DATABASE_URL"], "SELECT id FROM uploads WHERE owner_id = $1",
                    api.user["id"]) == []  # type: ignore[index]
    assert api.get("/uploads/" + "d" * 64 + ".png").status_code == 503
