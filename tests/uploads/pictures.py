"""Images for the upload tests, made here with Pillow (or by hand where Pillow would refuse to make them)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def phone_jpeg(width: int = 64, height: int = 32, orientation: int = 6, size: tuple[int, int] | None = None,
               noise: bool = False) -> bytes:
    """A JPEG as a phone writes one: EXIF with GPS coordinates, a camera model, an orientation, an XMP packet
    and a comment. The left half red, the right half blue (so a rotation shows)."""
    w, h = size or (width, height)
    im = Image.new("RGB", (w, h), (255, 0, 0))
    im.paste((0, 0, 255), (w // 2, 0, w, h))
    if noise:
        im = Image.merge("RGB", [Image.effect_noise((w, h), 64).convert("L")] * 3)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x0110] = "Parley Phone 9"  # Model
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    buf = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description secret="home"/></rdf:RDF></x:xmpmeta>'
    im.save(buf, "JPEG", exif=exif, quality=90, comment=b"shot at home", xmp=xmp)
    return buf.getvalue()


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20_000) -> bytes:
    """A 1-bit PNG of side × side pixels (400 megapixels at 20,000) that compresses to a few KB."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def many_frames_gif(frames: int = 10_000) -> bytes:
    """An animated GIF of `frames` 2×2 frames, built by hand (header, palette, then the same frame over)."""
    buf = io.BytesIO()
    a = Image.new("P", (2, 2), 0)
    b = Image.new("P", (2, 2), 1)
    a.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    b.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    a.save(buf, "GIF", save_all=True, append_images=[b], duration=10, loop=0, optimize=False)
    data = buf.getvalue()
    # The frames start at the first graphic control extension (21 F9) after the header and the NETSCAPE loop.
    first = data.index(b"\x21\xf9")
    frames_part = data[first:-1]  # up to the trailer (3B)
    return data[:first] + frames_part * (frames // 2) + b"\x3b"


def animated_gif(frames: int = 3) -> bytes:
    buf = io.BytesIO()
    imgs = [Image.new("RGB", (20, 10), (i * 60 % 256, 0, 0)) for i in range(frames)]
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=50, loop=0, comment=b"secret")
    return buf.getvalue()


def webp(width: int = 30, height: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(buf, "WEBP")
    return buf.getvalue()


def wide_png(width: int = 2400, height: int = 300) -> bytes:
    return png(width, height)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
ZIP = b"PK\x03\x04" + b"\x00" * 26 + b"PK\x05\x06" + b"\x00" * 18
HTML = b"<html><script>alert(document.cookie)</script></html>"
