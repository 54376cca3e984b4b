"""Verify an uploaded file and re-encode it: run in a worker process (workers.py), never on the event loop.

The type is taken from the bytes, never the name: PNG, JPEG, GIF or WebP. A file is refused (Refused, the
contract's 422 field `file`) when it is anything else (text, SVG, HTML…), when bytes follow the image's own
end (a polyglot: an image with HTML or a ZIP appended), when its header claims more than MAX_PIXELS (a
decompression bomb is refused before a pixel is decoded), when it has more than MAX_FRAMES frames or more
than MAX_PIXELS pixels over all of them, or when Pillow cannot decode it whole (truncated, damaged).

What is stored is never the uploaded file: the first frame (every frame of a GIF) decoded and encoded
again, with its orientation applied (EXIF Orientation) and no metadata at all (EXIF, GPS, XMP, comments,
text chunks), only the colour profile kept. A thumbnail at most THUMB_WIDTH wide is made when the image is
wider, and a square avatar crop on demand (avatar()).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Pillow is imported by process() and avatar(), which run in the image worker processes: the server process uses
# this module's names (key, Refused, Encoded) but never decodes a picture, and importing Pillow there cost every
# start ~20 ms of CPU.
if TYPE_CHECKING:
    from PIL import Image

MAX_PIXELS = 40_000_000  # contract: "over 40 megapixels → 422"
MAX_FRAMES = 200
THUMB_WIDTH = 1200
AVATAR_SIZE = 256
JPEG_QUALITY = 85
WEBP_QUALITY = 85

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WEBP"}


class Refused(Exception):
    """The file is not an image we keep; str(exc) says why (the 422's message)."""


@dataclass(frozen=True)
class Encoded:
    """One stored file: its bytes written to `path`, named by their SHA-256."""

    path: str
    sha256: str
    size: int
    width: int
    height: int


@dataclass(frozen=True)
class Processed:
    ext: str
    content_type: str
    image: Encoded
    thumb: Encoded


def sniff(head: bytes) -> str | None:
    """The format of a file from its first bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _png_end(data: bytes) -> int:
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise Refused("The PNG is damaged: it has no end")


def _jpeg_end(data: bytes) -> int:
    pos = 2
    n = len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            raise Refused("The JPEG is damaged")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > n:
            break
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker that is not RSTn or FF00
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    raise Refused("The JPEG is truncated")
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
    raise Refused("The JPEG is truncated")


def _gif_end(data: bytes) -> int:
    n = len(data)
    if n < 13:
        raise Refused("The GIF is truncated")
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)

    def skip_blocks(p: int) -> int:
        while p < n:
            size = data[p]
            p += 1 + size
            if size == 0:
                return p
        raise Refused("The GIF is truncated")

    while pos < n:
        kind = data[pos]
        if kind == 0x3B:
            return pos + 1
        if kind == 0x21:  # extension: label, then sub-blocks
            pos = skip_blocks(pos + 2)
        elif kind == 0x2C:  # image descriptor, optional local table, LZW minimum code size, sub-blocks
            if pos + 10 > n:
                raise Refused("The GIF is truncated")
            lflags = data[pos + 9]
            pos += 10 + (3 * 2 ** ((lflags & 7) + 1) if lflags & 0x80 else 0)
            pos = skip_blocks(pos + 1)
        else:
            raise Refused("The GIF is damaged")
    raise Refused("The GIF is truncated")


def _webp_end(data: bytes) -> int:
    (size,) = struct.unpack("<I", data[4:8])
    return 8 + size + (size & 1)


ENDS = {"png": _png_end, "jpg": _jpeg_end, "gif": _gif_end, "webp": _webp_end}


def _camera_trailer(trailer: bytes) -> bool:
    """What phones append to a JPEG: a Motion Photo's MP4 (Google, Samsung: an ISO box, `ftyp` at offset 4),
    more JPEG images of a Multi-Picture file (depth maps, previews) or Samsung's SEFT block. Only the decoded
    pixels are ever stored and served, so keeping such a photo costs nothing; anything else after the image
    (HTML, a ZIP, a script) is still refused as a polyglot."""
    return (trailer[4:8] == b"ftyp" or trailer.startswith(b"\xff\xd8\xff")
            or (trailer.endswith(b"SEFT") and b"SEFH" in trailer))


def check_whole(data: bytes, ext: str) -> None:
    """Refused when the file ends before its image does, or goes on after it (a polyglot) with anything but
    what cameras append to a JPEG."""
    end = ENDS[ext](data)
    if end > len(data):
        raise Refused("The image is truncated")
    if end < len(data) and not (ext == "jpg" and _camera_trailer(data[end:])):
        raise Refused("The file holds more than one image: bytes follow the image's end")


def _write(out_dir: str, data: bytes, width: int, height: int) -> Encoded:
    fd, path = tempfile.mkstemp(dir=out_dir, prefix=".enc-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Encoded(path, hashlib.sha256(data).hexdigest(), len(data), width, height)


def _save_static(im: Image.Image, ext: str, icc: bytes | None) -> bytes:
    buf = io.BytesIO()
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if ext == "jpg":
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        im.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True, **extra)
    elif ext == "png":
        if "transparency" in im.info:
            extra["transparency"] = im.info["transparency"]
        im.save(buf, "PNG", **extra)
    elif ext == "gif":
        if "transparency" in im.info:
            extra.pop("icc_profile", None)
            extra["transparency"] = im.info["transparency"]
        im.save(buf, "GIF", **{k: v for k, v in extra.items() if k != "icc_profile"})
    else:
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
        im.save(buf, "WEBP", quality=WEBP_QUALITY, **extra)
    return buf.getvalue()


def _clean(im: Image.Image) -> Image.Image:
    """A copy holding the pixels (and the palette's transparency) and nothing else of the file."""
    out = im.copy()
    keep: dict[str | tuple[int, int], Any] = {
        k: im.info[k] for k in ("transparency", "duration", "loop", "background") if k in im.info}
    out.info = keep
    return out


def process(source: str, out_dir: str) -> Processed:
    """Verify `source` and write the stored image and its thumbnail into `out_dir` (Refused if it is not one)."""
    from PIL import Image, ImageOps, ImageSequence

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard too (it raises at twice this)
    with open(source, "rb") as f:
        data = f.read()
    ext = sniff(data[:16])
    if ext is None:
        raise Refused("The file is not a PNG, JPEG, GIF or WebP image")
    check_whole(data, ext)
    try:
        with warnings.catch_warnings():  # Pillow warns past MAX_IMAGE_PIXELS: that is a refusal here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[ext]])
        width, height = im.size
        if width * height > MAX_PIXELS:
            raise Refused(f"The image is over {MAX_PIXELS // 1_000_000} megapixels")
        frames = 0
        for frames, _ in enumerate(ImageSequence.Iterator(im), 1):
            if frames > MAX_FRAMES or frames * width * height > MAX_PIXELS:
                raise Refused(f"The image has too many frames (at most {MAX_FRAMES}, "
                              f"{MAX_PIXELS // 1_000_000} megapixels in all)")
        icc = im.info.get("icc_profile")
        im.seek(0)
        if ext == "gif" and frames > 1:
            images = [_clean(frame) for frame in ImageSequence.Iterator(im)]
            durations = [frame.info.get("duration", 100) for frame in ImageSequence.Iterator(im)]
            buf = io.BytesIO()
            images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=durations,
                           loop=im.info.get("loop", 0), disposal=2)
            first = images[0]
            stored = buf.getvalue()
        else:
            im.load()
            first = _clean(ImageOps.exif_transpose(im))
            stored = _save_static(first, ext, icc)
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(f"The image is over {MAX_PIXELS // 1_000_000} megapixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError, MemoryError) as exc:
        raise Refused(f"The image cannot be read: {exc.__class__.__name__}") from None
    image = _write(out_dir, stored, first.width, first.height)
    if first.width > THUMB_WIDTH:  # (an animated GIF's thumbnail is its first frame)
        h = max(1, round(first.height * THUMB_WIDTH / first.width))
        small = first.resize((THUMB_WIDTH, h), Image.Resampling.LANCZOS)
        small.info = {k: v for k, v in first.info.items() if k == "transparency"}
        thumb = _write(out_dir, _save_static(small, ext, icc), THUMB_WIDTH, h)
    else:
        thumb = image
    return Processed(ext, CONTENT_TYPES[ext], image, thumb)


def avatar(source: str, ext: str, out_dir: str) -> tuple[str, Encoded]:
    """A square crop (the middle of the image) of AVATAR_SIZE px, from a stored image (already verified):
    (its extension, the file). A GIF's avatar is a PNG of its first frame."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(source) as im:
        im.seek(0)
        im.load()
        icc = im.info.get("icc_profile")
        square = ImageOps.fit(_clean(im.convert("RGBA") if im.mode == "P" else im), (AVATAR_SIZE, AVATAR_SIZE),
                              Image.Resampling.LANCZOS)
        square.info = {}
    out_ext = "png" if ext == "gif" else ext
    return out_ext, _write(out_dir, _save_static(square, out_ext, icc), AVATAR_SIZE, AVATAR_SIZE)


def key(sha256: str, ext: str) -> str:
    """The store's name of a file."""
    return f"{sha256}.{ext}"


def cleanup(paths: list[str]) -> None:
    for p in set(paths):
        Path(p).unlink(missing_ok=True)
