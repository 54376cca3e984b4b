"""Pictures over real HTTP (CONTRACT "Pictures"): uploads verified by their bytes and re-encoded without
metadata, kept once, served with the contract's headers, refused when hostile, counted against a day's quota,
shown in posts with their size, used as avatars, and deleted when nothing refers to them for a day."""

from __future__ import annotations

import asyncio
import hashlib
import io
import select
import socket
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from PIL import Image

from api_support import check_error
from server import housekeeping
from server.uploads.storage import DirectoryStorage
from support.api import Api, new_thread
from support.databases import db_fetch, db_fetchval
from uploads import pictures


def upload(api: Api, data: bytes, name: str = "photo.jpg", ctype: str = "application/octet-stream") -> httpx.Response:
    return api.post("/api/uploads", files={"file": (name, data, ctype)})  # type: ignore[no-any-return]


def stored_files(server: Any) -> set[str]:
    root = Path(server.env["PARLEY_DATA_DIR"]) / "uploads"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children (the image and render workers)."""
    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


@pytest.fixture(scope="module")
def ada(server: Any) -> Api:
    return Api(server.url).sign_up()


def test_phone_photo_is_stored_upright_without_gps_exif_xmp_or_comment(server: Any, ada: Api) -> None:
    """A phone JPEG (GPS, orientation 6, XMP, comment) → 201; the stored bytes, read back with Pillow, carry no
    metadata, are turned upright, and their SHA-256 and size are the answer's."""
    r = upload(ada, pictures.phone_jpeg(64, 32, orientation=6), "photo.png")  # the name says PNG: ignored
    assert r.status_code == 201, r.text
    up = r.json()["upload"]
    assert up["content_type"] == "image/jpeg" and (up["width"], up["height"]) == (32, 64)
    assert up["url"] == f"/uploads/{up['sha256']}.jpg" and up["thumbnail_url"] == up["url"]
    got = ada.get(up["url"])
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == up["sha256"] and len(got.content) == up["size"]
    im = Image.open(io.BytesIO(got.content))
    assert im.size == (32, 64)
    assert dict(im.getexif()) == {} and im.getexif().get_ifd(pictures.GPS_IFD) == {}
    assert not {"exif", "xmp", "comment", "XML:com.adobe.xmp"} & set(im.info)
    assert b"shot at home" not in got.content and b"Parley Phone" not in got.content and b"xmpmeta" not in got.content
    top, bottom = im.convert("RGB").getpixel((16, 2)), im.convert("RGB").getpixel((16, 61))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # red half on top, blue below: rotated


def test_served_with_true_type_nosniff_immutable_etag_and_304(server: Any, ada: Api) -> None:
    """GET of an upload: its type, nosniff, a year's immutable caching, a CSP that runs nothing, and an ETag
    whose If-None-Match answers 304; an unknown or malformed name is 404."""
    up = upload(ada, pictures.png(12, 9)).json()["upload"]
    r = ada.get(up["url"])
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["etag"] == f'"{up["sha256"]}"'
    again = ada.get(up["url"], headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert ada.get("/uploads/" + "0" * 64 + ".png").status_code == 404
    assert ada.get("/uploads/../secret").status_code == 404
    assert ada.get(up["url"].replace(".png", ".html")).status_code == 404


def test_same_bytes_again_is_200_and_kept_once(server: Any, ada: Api) -> None:
    """The same user uploading identical bytes gets 200 and the same upload; another user gets their own
    upload (201) of the same bytes, which are stored once."""
    data = pictures.png(21, 13, (1, 2, 3))
    first = upload(ada, data)
    assert first.status_code == 201
    before = stored_files(server)
    second = upload(ada, data)
    assert second.status_code == 200 and second.json() == first.json()
    bob = Api(server.url).sign_up()
    theirs = upload(bob, data)
    assert theirs.status_code == 201
    assert theirs.json()["upload"]["id"] != first.json()["upload"]["id"]
    assert theirs.json()["upload"]["sha256"] == first.json()["upload"]["sha256"]
    assert stored_files(server) == before


def test_wide_image_gets_a_thumbnail_at_most_1200_wide(server: Any, ada: Api) -> None:
    """An image 2400 px wide keeps its size and gets a thumbnail 1200 px wide, in proportion."""
    up = upload(ada, pictures.wide_png(2400, 300)).json()["upload"]
    assert (up["width"], up["height"]) == (2400, 300) and up["thumbnail_url"] != up["url"]
    thumb = Image.open(io.BytesIO(ada.get(up["thumbnail_url"]).content))
    assert thumb.size == (1200, 150)


def test_gif_webp_and_animation_are_kept_without_comments(server: Any, ada: Api) -> None:
    """A WebP stays WebP; an animated GIF keeps its frames and loses its comment."""
    w = upload(ada, pictures.webp()).json()["upload"]
    assert w["content_type"] == "image/webp" and w["url"].endswith(".webp")
    g = upload(ada, pictures.animated_gif(3)).json()["upload"]
    data = ada.get(g["url"]).content
    im = Image.open(io.BytesIO(data))
    assert g["content_type"] == "image/gif" and im.n_frames == 3 and "comment" not in im.info
    assert b"secret" not in data


HOSTILE = {
    "text named .png": (b"just some text, not an image\n" * 10, "notes.png"),
    "SVG": (pictures.SVG, "logo.svg"),
    "truncated JPEG": (pictures.phone_jpeg(200, 200, noise=True)[:-300], "cut.jpg"),
    "PNG bomb 20000x20000": (pictures.png_bomb(20_000), "bomb.png"),
    "GIF of 10,000 frames": (pictures.many_frames_gif(10_000), "long.gif"),
    "PNG + ZIP polyglot": (pictures.png() + pictures.ZIP, "poly.png"),
    "JPEG + HTML polyglot": (pictures.phone_jpeg() + pictures.HTML, "poly.jpg"),
    "HTML": (pictures.HTML, "page.html"),
}


@pytest.mark.parametrize("what", list(HOSTILE))
def test_hostile_files_are_refused_and_nothing_is_stored(server: Any, what: str) -> None:
    """Each hostile file → 422 field file; no upload row and no stored file appear."""
    api = Api(server.url).sign_up()
    data, name = HOSTILE[what]
    before = stored_files(server)
    r = upload(api, data, name, "image/png")
    check_error(r, 422, field="file")
    assert stored_files(server) == before
    assert db_fetchval(server.env["DATABASE_URL"], "SELECT count(*) FROM uploads WHERE owner_id = $1",
                       api.user["id"]) == 0  # type: ignore[index]


def test_memory_stays_bounded_while_hostile_files_arrive(server: Any) -> None:
    """Twenty bombs and frame floods at once: the server's processes (workers included) grow by well under the
    300 MB one decoded bomb would take, and all are refused."""
    apis = [Api(server.url).sign_up() for _ in range(4)]
    pid = server.proc.pid
    before = tree_rss(pid)
    peak = before
    bomb, frames = HOSTILE["PNG bomb 20000x20000"][0], HOSTILE["GIF of 10,000 frames"][0]

    async def send_all() -> list[int]:
        async def one(i: int) -> int:
            api = apis[i % len(apis)]
            async with httpx.AsyncClient(base_url=server.url, cookies=api.http.cookies, timeout=90) as c:
                data = bomb if i % 2 else frames
                r = await c.post("/api/uploads", files={"file": ("x.png", data, "image/png")})
                return r.status_code

        async def watch(stop: asyncio.Event) -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, tree_rss(pid))
                await asyncio.sleep(0.05)

        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(stop))
        codes = await asyncio.gather(*(one(i) for i in range(20)))
        stop.set()
        await watcher
        return list(codes)

    codes = asyncio.run(send_all())
    print(f"server tree RSS: {before / 2**20:.0f} MB before, {peak / 2**20:.0f} MB at the peak")  # for the record
    assert codes == [422] * 20
    assert peak - before < 150 * 1024 * 1024, (before, peak)


def test_over_the_limit_sent_slowly_is_413_at_the_limit(spawn: Any) -> None:
    """A body streamed slowly (chunked, no Content-Length) past PARLEY_UPLOAD_MAX_BYTES is answered 413 once the
    limit passes, while the client is still sending; nothing is stored. A declared length over it: 413 at once."""
    srv = spawn(PARLEY_UPLOAD_MAX_BYTES="65536")
    api = Api(srv.url).sign_up()
    boundary = "parleyboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + pictures.png()[:8]
    host, port = srv.url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    sent = 0
    answer = b""
    try:
        sock.sendall(("POST /api/uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      f"Cookie: parley_session={api.session_cookie}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode())
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        for _ in range(128):  # up to 128 × 8 KiB = 1 MiB, 16 times the limit, in small pieces
            if select.select([sock], [], [], 0.05)[0]:
                answer = sock.recv(65536)
                break
            try:
                sock.sendall(b"2000\r\n" + b"\x00" * 8192 + b"\r\n")
            except OSError:
                break
            sent += 8192
        if not answer:
            answer = sock.recv(65536)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 512 * 1024, sent  # answered long before the client was done
    root = Path(srv.env["PARLEY_DATA_DIR"]) / "uploads"
    assert not root.exists() or not any(root.iterdir())
    r = upload(api, b"\x89PNG\r\n\x1a\n" + b"\x00" * 70_000)
    check_error(r, 413)


def test_not_multipart_is_415_and_no_file_is_422(server: Any, ada: Api) -> None:
    """JSON instead of a form → 415; a form without a `file` field → 422 field file; a guest → 401."""
    check_error(ada.post("/api/uploads", json={"file": "x"}), 415)
    check_error(ada.post("/api/uploads", files={"other": ("a.png", pictures.png(), "image/png")}), 422, field="file")
    check_error(Api(server.url).post("/api/uploads", files={"file": ("a.png", pictures.png(), "image/png")}), 401)


def test_day_quota_of_50_uploads_and_100_mib(server: Any) -> None:
    """Past 50 uploads or 100 MiB in a day: 429 with Retry-After; uploads older than a day do not count."""
    db = server.env["DATABASE_URL"]
    api = Api(server.url).sign_up()
    uid = api.user["id"]  # type: ignore[index]
    fill = ("INSERT INTO uploads (owner_id, sha256, ext, content_type, size, width, height, thumb_sha256,"
            " thumb_width, thumb_height, created_at) SELECT $1, md5(g::text || $2) || md5(g::text || $2), 'png',"
            " 'image/png', $3, 1, 1, md5(g::text || $2) || md5(g::text || $2), 1, 1, now() - make_interval(hours => $4)"
            " FROM generate_series(1, $5) g")
    db_fetch(db, fill, uid, "old", 10, 48, 60)  # yesterday's do not count
    db_fetch(db, fill, uid, "today", 10, 1, 49)
    assert upload(api, pictures.png(5, 5, (9, 9, 9))).status_code == 201  # the 50th
    r = upload(api, pictures.png(5, 5, (8, 8, 8)))
    check_error(r, 429)
    assert int(r.headers["retry-after"]) > 0
    big = Api(server.url).sign_up()
    db_fetch(db, fill, big.user["id"], "big", 100 * 1024 * 1024 - 50, 1, 1)  # type: ignore[index]
    check_error(upload(big, pictures.png(30, 30, (7, 7, 7))), 429)


def test_post_shows_our_upload_as_sized_lazy_img_and_others_as_links(forum: dict[str, Any], server: Any,
                                                                     ada: Api) -> None:
    """`![alt](our upload)` renders as <img> with src, alt, width, height and loading=lazy; an image from
    elsewhere, or an /uploads/ URL of no upload, renders as a link to it (never loaded by readers)."""
    up = upload(ada, pictures.png(33, 17, (5, 6, 7))).json()["upload"]
    missing = "/uploads/" + "e" * 64 + ".png"
    body = f"Look ![a screenshot]({up['url']}) and ![pixel](https://tracker.example/p.gif) ![gone]({missing})"
    t = new_thread(ada, forum["category"], body=body)
    html = t["question"]["html"]
    assert (f'<img src="{up["url"]}" alt="a screenshot" width="33" height="17" loading="lazy">') in html
    assert "tracker.example/p.gif" in html and 'src="https://tracker' not in html
    assert f'<a href="{missing}"' in html and html.count("<img") == 1


def test_avatar_is_a_square_crop_shown_in_briefs_and_null_clears_it(forum: dict[str, Any], server: Any) -> None:
    """PUT /api/me/avatar {upload_id} → the user with avatar_url, a 256×256 crop; posts' author briefs carry it;
    another user's upload is 404; null takes it away (initials again)."""
    me = Api(server.url).sign_up()
    assert me.user["avatar_url"] is None  # type: ignore[index]
    up = upload(me, pictures.png(300, 100, (200, 10, 10))).json()["upload"]
    r = me.put("/api/me/avatar", json={"upload_id": up["id"]})
    assert r.status_code == 200, r.text
    url = r.json()["user"]["avatar_url"]
    assert url.startswith("/uploads/") and url != up["url"]
    assert Image.open(io.BytesIO(me.get(url).content)).size == (256, 256)
    t = new_thread(me, forum["category"])
    assert t["question"]["author"]["avatar_url"] == url
    assert me.get(f"/api/users/{me.user['username']}").json()["user"]["avatar_url"] == url  # type: ignore[index]
    other = Api(server.url).sign_up()
    check_error(other.put("/api/me/avatar", json={"upload_id": up["id"]}), 404)
    r = me.put("/api/me/avatar", json={"upload_id": None})
    assert r.status_code == 200 and r.json()["user"]["avatar_url"] is None


def test_cleanup_deletes_unreferenced_uploads_after_a_day_only(forum: dict[str, Any], server: Any) -> None:
    """Housekeeping deletes uploads older than 24 h that no post and no avatar refers to, and their files;
    one in a post, one as an avatar, and a fresh one stay; bytes another upload still names stay."""
    db = server.env["DATABASE_URL"]
    me = Api(server.url).sign_up()
    lone = upload(me, pictures.png(11, 11, (1, 1, 1))).json()["upload"]
    used = upload(me, pictures.png(12, 12, (2, 2, 2))).json()["upload"]
    face = upload(me, pictures.png(13, 13, (3, 3, 3))).json()["upload"]
    fresh = upload(me, pictures.png(14, 14, (4, 4, 4))).json()["upload"]
    shared = upload(me, pictures.png(15, 15, (5, 5, 5))).json()["upload"]
    friend = Api(server.url).sign_up()
    assert upload(friend, pictures.png(15, 15, (5, 5, 5))).status_code == 201  # same bytes, a fresh upload
    new_thread(me, forum["category"], body=f"see ![it]({used['url']})")
    assert me.put("/api/me/avatar", json={"upload_id": face["id"]}).status_code == 200
    old = [lone["id"], used["id"], face["id"], shared["id"]]
    db_fetch(db, "UPDATE uploads SET created_at = now() - interval '25 hours' WHERE id = any($1::bigint[])", old)

    async def clean() -> int | None:
        pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
        try:
            return await housekeeping.clean_uploads(pool, DirectoryStorage(Path(server.env["PARLEY_DATA_DIR"])
                                                                           / "uploads"))
        finally:
            await pool.close()

    assert (asyncio.run(clean()) or 0) >= 2
    assert me.get(lone["url"]).status_code == 404
    for kept in (used, face, fresh, shared):
        assert me.get(kept["url"]).status_code == 200, kept
    left = {r["id"] for r in db_fetch(db, "SELECT id FROM uploads WHERE owner_id = $1", me.user["id"])}  # type: ignore[index]
    assert left == {used["id"], face["id"], fresh["id"]}
