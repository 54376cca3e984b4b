"""Where uploaded bytes live: a directory on one host, or an S3-compatible object store shared by many.

Objects are named by content (`<sha256>.<ext>`), so a name never changes meaning: writing one that exists
is harmless, and every reader may cache it forever. Both backends answer the same small interface; boto3 is
blocking, so the S3 backend runs each call in a thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from ..errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Found:
    """An object to answer: a path to send from (a directory), or its bytes as they come (S3, in chunks)."""

    size: int
    path: Path | None = None
    stream: AsyncIterator[bytes] | None = None

    async def read(self) -> bytes:
        """The whole object (at most PARLEY_UPLOAD_MAX_BYTES: an avatar's source)."""
        if self.path is not None:
            return await asyncio.to_thread(self.path.read_bytes)
        assert self.stream is not None
        return b"".join([chunk async for chunk in self.stream])


CHUNK = 256 * 1024


class Storage(Protocol):
    name: str

    async def put(self, key: str, source: Path) -> None:
        """Store the file `source` under `key` (the caller may delete `source` afterwards)."""
        ...

    async def get(self, key: str) -> Found | None:
        """The object `key`, or None when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; nothing when it is absent."""
        ...

    async def exists(self, key: str) -> bool:
        ...


class DirectoryStorage:
    """Objects as files of one directory (the default: `uploads/` in the data directory)."""

    name = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key

    async def put(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path) -> None:
        target = self._path(key)
        if target.exists():
            return
        tmp = target.with_name(f".{key}.{os.getpid()}.{id(source)}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)  # atomic: a reader sees the whole file or none

    async def get(self, key: str) -> Found | None:
        path = self._path(key)
        try:
            return Found(size=path.stat().st_size, path=path)
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Storage:
    """Objects in an S3-compatible store: `s3://BUCKET/PREFIX`, at `endpoint` (MinIO, R2, …) or AWS's."""

    name = "s3"

    def __init__(self, url: str, endpoint: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        parts = urlsplit(url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self.client: Any = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region or "us-east-1",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                          max_pool_connections=20))

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def _run(self, call: Callable[[], T]) -> T:
        """A blocking boto3 call in a thread; the store unreachable or refusing → 503 (Unavailable)."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return await asyncio.to_thread(call)
        except (BotoCoreError, ClientError) as exc:
            log.warning("the S3 store failed: %s", exc)
            raise Unavailable("The picture store is unavailable; try again shortly") from None

    async def put(self, key: str, source: Path) -> None:
        ctype = CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
        await self._run(lambda: self.client.upload_file(str(source), self.bucket, self._key(key),
                                                        ExtraArgs={"ContentType": ctype}))

    async def get(self, key: str) -> Found | None:
        def fetch() -> Any:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                return None
        answer = await self._run(fetch)
        if answer is None:
            return None
        body = answer["Body"]

        async def chunks() -> AsyncIterator[bytes]:  # never the whole object in memory at once
            try:
                while chunk := await self._run(lambda: body.read(CHUNK)):
                    yield chunk
            finally:
                body.close()
        return Found(size=int(answer["ContentLength"]), stream=chunks())

    async def delete(self, key: str) -> None:
        await self._run(lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
        return await self._run(head)


CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def open_storage(store: str, data_dir: Path, endpoint: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str | None = None) -> Storage:
    """The backend PARLEY_UPLOAD_STORE names: `s3://BUCKET/PREFIX`, or a directory (relative to the data
    directory)."""
    if store.startswith("s3://"):
        return S3Storage(store, endpoint, access_key, secret_key, region)
    path = Path(store)
    return DirectoryStorage(path if path.is_absolute() else data_dir / path)
