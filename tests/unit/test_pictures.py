"""Pictures' pure parts, in-process: settings, the verification of files by their bytes, re-encoding without
metadata, and how posts' images are placed (ours sized and lazy, others as links)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from server import config, render
from server.uploads import images
from uploads import pictures


def load(tmp_path: Path, **env: str) -> config.Settings:
    return config.load({"PARLEY_DATA_DIR": str(tmp_path), **env}, env_file=tmp_path / "none.env")


def test_upload_settings_default_and_cast(tmp_path: Path) -> None:
    """The store is uploads/ in the data directory and the limit 8 MiB unless set; s3:// takes the AWS keys."""
    s = load(tmp_path)
    assert s.upload_store == "uploads" and s.upload_max_bytes == 8 * 1024 * 1024 and s.s3_endpoint is None
    s = load(tmp_path, PARLEY_UPLOAD_STORE="s3://forum/up/", PARLEY_S3_ENDPOINT="http://127.0.0.1:9000",
             PARLEY_UPLOAD_MAX_BYTES="1048576", AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
    assert (s.upload_store, s.s3_endpoint, s.upload_max_bytes) == ("s3://forum/up", "http://127.0.0.1:9000", 1 << 20)
    assert (s.s3_access_key, s.s3_secret_key) == ("k", "s")


@pytest.mark.parametrize("name,value", [
    ("PARLEY_UPLOAD_STORE", "ftp://host/x"), ("PARLEY_UPLOAD_STORE", "s3://Bad_Bucket/x"),
    ("PARLEY_UPLOAD_MAX_BYTES", "12"), ("PARLEY_UPLOAD_MAX_BYTES", "lots"), ("PARLEY_S3_ENDPOINT", "minio:9000"),
])
def test_a_bad_upload_setting_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    """A bad store, size or endpoint stops start-up with one line naming the variable."""
    with pytest.raises(config.ConfigError, match=name):
        load(tmp_path, **{name: value})


def test_half_a_key_pair_is_refused(tmp_path: Path) -> None:
    """An S3 store with only one of the two AWS keys stops start-up."""
    with pytest.raises(config.ConfigError, match="AWS_SECRET_ACCESS_KEY"):
        load(tmp_path, PARLEY_UPLOAD_STORE="s3://forum", AWS_ACCESS_KEY_ID="k")


@pytest.mark.parametrize("head,ext", [(b"\x89PNG\r\n\x1a\n....", "png"), (b"\xff\xd8\xff\xe0", "jpg"),
                                      (b"GIF89a", "gif"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
                                      (b"<svg ", None), (b"<?xml", None), (b"PK\x03\x04", None), (b"BM", None)])
def test_type_comes_from_the_bytes(head: bytes, ext: str | None) -> None:
    """PNG, JPEG, GIF and WebP are recognised by their first bytes; SVG, XML, ZIP and BMP are not images here."""
    assert images.sniff(head) == ext


def run(tmp_path: Path, data: bytes) -> images.Processed:
    (tmp_path / "in").write_bytes(data)
    return images.process(str(tmp_path / "in"), str(tmp_path))


@pytest.mark.parametrize("data,why", [
    (pictures.png() + b"<html>", "more than one image"), (pictures.webp() + b"PK\x03\x04", "more than one image"),
    (pictures.animated_gif() + b"<script>", "more than one image"), (pictures.png()[:-20], "no end|truncated"),
    (pictures.png_bomb(7000), "megapixels"), (pictures.many_frames_gif(400), "frames"),
])
def test_refusals_say_why(tmp_path: Path, data: bytes, why: str) -> None:
    """Bytes after the image's end, a missing end, too many pixels or frames: Refused, with the reason."""
    with pytest.raises(images.Refused, match=why):
        run(tmp_path, data)


@pytest.mark.parametrize("trailer", [
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64,  # a Motion Photo's MP4
    None,  # a second JPEG (a Multi-Picture file's depth map or preview): filled in below
])
def test_a_phone_photo_with_what_cameras_append_is_kept_without_it(tmp_path: Path, trailer: bytes | None) -> None:
    """A JPEG followed by a Motion Photo's video or a Multi-Picture image is accepted; only its pixels are kept."""
    photo = pictures.phone_jpeg(60, 20, orientation=1)
    done = run(tmp_path, photo + (trailer if trailer is not None else pictures.phone_jpeg(8, 8, orientation=1)))
    data = Path(done.image.path).read_bytes()
    assert b"ftyp" not in data and data.count(b"\xff\xd8\xff") == 1
    with pytest.raises(images.Refused, match="more than one image"):
        run(tmp_path, photo + b"PK\x03\x04" + b"\x00" * 64)  # a ZIP after it is still a polyglot


def test_reencoded_jpeg_keeps_no_metadata_and_is_upright(tmp_path: Path) -> None:
    """EXIF (GPS, model), XMP and the comment are gone; orientation 8 is applied; the sha256 is the file's."""
    done = run(tmp_path, pictures.phone_jpeg(60, 20, orientation=8))
    data = Path(done.image.path).read_bytes()
    im = Image.open(io.BytesIO(data))
    assert im.size == (20, 60) == (done.image.width, done.image.height)
    assert not im.getexif() and "xmp" not in im.info and "comment" not in im.info
    import hashlib
    assert hashlib.sha256(data).hexdigest() == done.image.sha256 and len(data) == done.image.size


def test_avatar_is_a_square_crop(tmp_path: Path) -> None:
    """The avatar of a wide GIF is a 256 px square PNG."""
    done = run(tmp_path, pictures.animated_gif())
    ext, crop = images.avatar(done.image.path, "gif", str(tmp_path))
    assert ext == "png" and Image.open(crop.path).size == (256, 256)


SHA = "a" * 64


def test_our_upload_gets_its_size_and_lazy_loading() -> None:
    """`![alt](/uploads/SHA.png)` of a known upload: <img> with src, alt, width, height, loading=lazy."""
    html = render.render(f'![a "cat"](/uploads/{SHA}.png "T")')
    assert render.upload_shas(html) == [SHA]
    out = render.place_images(html, {SHA: (640, 480)})
    assert f'<img src="/uploads/{SHA}.png" alt="a &quot;cat&quot;" title="T" width="640" height="480" ' \
           'loading="lazy">' in out


@pytest.mark.parametrize("body,expect", [
    ("![pixel](https://tracker.example/p.gif)",
     '<a href="https://tracker.example/p.gif" rel="nofollow ugc noopener" title="Image: '
     'https://tracker.example/p.gif">pixel</a>'),
    (f"![gone](/uploads/{'b' * 64}.png)", f'<a href="/uploads/{"b" * 64}.png"'),
    ("![](https://x.example/a.png)", ">image</a>"),
    ("![ftp](ftp://x.example/a.png)", "<p>ftp</p>"),
    ("[![inner](https://x.example/i.png)](https://x.example/page)",
     '<a href="https://x.example/page" rel="nofollow ugc noopener">inner</a>'),
])
def test_any_other_image_becomes_a_link_or_text(body: str, expect: str) -> None:
    """An image from elsewhere, of no upload, or whose address the sanitizer dropped is never an <img>: a link
    to it (text inside another link, as links do not nest), or its alt text."""
    out = render.place_images(render.render(body), {SHA: (1, 1)})
    assert "<img" not in out and expect in out, out
