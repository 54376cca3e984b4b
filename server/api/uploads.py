"""Pictures over HTTP: POST /api/uploads, GET /uploads/{file}, PUT /api/me/avatar (CONTRACT "Pictures").

An upload is streamed to a temporary file as it arrives (python-multipart's push parser; the size limit is
checked on every chunk, so an oversized body is refused at the limit, never held in memory), verified and
re-encoded in a worker process (server/uploads/images.py, workers.py), and its files are put in the store
and its row written together (store/uploads.py: the cleanup cannot delete an object a new row names).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from .. import db, metrics
from ..errors import BadRequest, Invalid, NotFound, TooLarge, UnsupportedMediaType
from ..shapes import Id
from ..state import AppState
from ..store import uploads, users
from ..uploads import images
from ..uploads.storage import CONTENT_TYPES
from .common import json, state, writing

FORM_OVERHEAD = 64 * 1024  # multipart headers and boundaries around the one file
NAME = re.compile(r"([0-9a-f]{64})\.(png|jpg|gif|webp)")
UPLOAD_HEADERS = {  # X-Content-Type-Options: nosniff comes with every answer (app.SECURITY_HEADERS)
    "cache-control": "public, max-age=31536000, immutable",
    # Opened on its own, an uploaded file runs nothing and reaches nothing (the page's policy is added too).
    "content-security-policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    "cross-origin-resource-policy": "same-origin",
}


class AvatarChange(msgspec.Struct, forbid_unknown_fields=False):
    upload_id: Id | None


class _Form:
    """Receives the multipart parser's callbacks: the part named `file` goes to `out`, counted against `cap`."""

    def __init__(self, out: Any, cap: int) -> None:
        self.out = out
        self.cap = cap
        self.size = 0
        self.files = 0
        self.header_field = b""
        self.header_value = b""
        self.is_file = False
        self.headers: dict[bytes, bytes] = {}

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks (a TypedDict)
        return {"on_part_begin": self.part_begin, "on_part_data": self.part_data,
                "on_header_field": self.field, "on_header_value": self.value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_done}

    def part_begin(self) -> None:
        self.headers = {}
        self.is_file = False

    def field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.is_file = options.get(b"name") == b"file"
        if self.is_file:
            self.files += 1
            if self.files > 1:
                raise Invalid("Send one file per upload", field="file")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.is_file:
            return
        self.size += end - start
        if self.size > self.cap:
            raise TooLarge(f"The file is over {self.cap} bytes")
        self.out.write(data[start:end])


async def _receive_file(request: Request, path: Path, cap: int) -> int:
    """Stream the form's `file` part into `path`; its size. 413 as soon as it passes `cap`."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("Send the image as multipart/form-data, in a field named file")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap + FORM_OVERHEAD:
        raise TooLarge(f"The file is over {cap} bytes")
    with open(path, "wb") as out:
        form = _Form(out, cap)
        parser = MultipartParser(boundary, form.callbacks(), max_size=cap + FORM_OVERHEAD)
        total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > cap + FORM_OVERHEAD:
                    raise TooLarge(f"The file is over {cap} bytes")
                parser.write(chunk)
            parser.finalize()
        except ClientDisconnect:
            raise BadRequest("The client went away before sending the body", code="client_disconnected") from None
        except (Invalid, TooLarge):
            raise
        except Exception as exc:  # python-multipart's MultipartParseError and kin
            raise BadRequest(f"The form is malformed: {exc.__class__.__name__}", code="bad_form") from None
    if not form.files or form.size == 0:
        raise Invalid("Send an image in a field named file", field="file")
    return form.size


async def create_upload(request: Request) -> Response:
    """POST /api/uploads (multipart, field `file`) → 201 {upload}, or 200 with the one the user already has."""
    st, user, _, _ = await writing(request, None, bucket="upload")
    tmp = Path(tempfile.mkdtemp(prefix="parley-upload-"))
    try:
        await _receive_file(request, tmp / "in", st.settings.upload_max_bytes)
        await uploads.check_quota(st.pool, user["id"], 0)  # before spending a worker on it
        try:
            done = await st.images.run(user["id"], images.process, str(tmp / "in"), str(tmp))
        except images.Refused as exc:
            metrics.UPLOADS.labels("refused").inc()
            raise Invalid(str(exc), field="file") from None
        async with db.transaction(st.pool) as conn:
            await uploads.lock_shared(conn)
            row, created = await uploads.create(
                conn, user["id"], sha256=done.image.sha256, ext=done.ext, content_type=done.content_type,
                size=done.image.size, width=done.image.width, height=done.image.height,
                thumb_sha256=done.thumb.sha256, thumb_width=done.thumb.width, thumb_height=done.thumb.height)
            if created:  # the objects before COMMIT: a row never names bytes that are not there
                await st.storage.put(images.key(done.image.sha256, done.ext), Path(done.image.path))
                if done.thumb.sha256 != done.image.sha256:
                    await st.storage.put(images.key(done.thumb.sha256, done.ext), Path(done.thumb.path))
        metrics.UPLOADS.labels("created" if created else "again").inc()
        return json({"upload": uploads.upload_dict(row)}, 201 if created else 200)
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


def _not_modified(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    return any(tag.strip() in (etag, f"W/{etag}", "*") for tag in wanted.split(","))


async def serve_upload(request: Request) -> Response:
    """GET /uploads/{name}: the stored bytes with their true type, cached forever (the name is their hash)."""
    st = state(request)
    m = NAME.fullmatch(request.path_params["name"])
    if m is None:
        raise NotFound("No such upload")
    etag = f'"{m.group(1)}"'
    headers = {**UPLOAD_HEADERS, "etag": etag}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    found = await st.storage.get(request.path_params["name"])
    if found is None:
        raise NotFound("No such upload")
    ctype = CONTENT_TYPES[m.group(2)]
    if found.path is not None:
        return FileResponse(found.path, media_type=ctype, headers=headers)
    assert found.stream is not None
    return StreamingResponse(found.stream, media_type=ctype, headers={**headers, "content-length": str(found.size)})


async def set_avatar(request: Request) -> Response:
    """PUT /api/me/avatar {upload_id|null} → 200 {user}: a square crop of one of my uploads, or none."""
    st, user, body, _ = await writing(request, AvatarChange, bucket="preferences")
    if body.upload_id is None:
        async with db.transaction(st.pool) as conn:
            row = await uploads.set_avatar(conn, user["id"], None, None)
        return json({"user": users.full(row)})
    up = await uploads.by_id(st.pool, body.upload_id)
    if up["owner_id"] != user["id"]:
        raise NotFound(f"No upload {body.upload_id} of yours", field="upload_id")
    crop_ext = "png" if up["ext"] == "gif" else up["ext"]
    tmp = Path(tempfile.mkdtemp(prefix="parley-avatar-"))
    try:
        crop = None if up["avatar_sha256"] else await _make_crop(st, user["id"], up, tmp)
        async with db.transaction(st.pool) as conn:
            await uploads.lock_shared(conn)
            if crop is not None:  # put under the lock: the cleanup cannot take it before the row names it
                await st.storage.put(images.key(crop.sha256, crop_ext), Path(crop.path))
                await uploads.set_avatar_crop(conn, up["id"], crop.sha256)
            sha = crop.sha256 if crop is not None else up["avatar_sha256"]
            row = await uploads.set_avatar(conn, user["id"], up["id"], uploads.url(sha, crop_ext))
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)
    return json({"user": users.full(row)})


async def _make_crop(st: AppState, user_id: int, up: asyncpg.Record, tmp: Path) -> images.Encoded:
    """The square crop of the upload's image, made in a worker, written in `tmp`."""
    found = await st.storage.get(images.key(up["sha256"], up["ext"]))
    if found is None:
        raise NotFound(f"No upload {up['id']}", field="upload_id")
    source = tmp / "in"
    if found.path is not None:
        await asyncio.to_thread(shutil.copyfile, found.path, source)
    else:
        data = await found.read()
        await asyncio.to_thread(source.write_bytes, data)
    _, crop = await st.images.run(user_id, images.avatar, str(source), up["ext"], str(tmp))
    return crop
