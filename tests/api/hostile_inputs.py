"""A corpus of hostile inputs, generated in code (no binary files in the repo): broken and odd images, hostile
text and numbers, garbage rectangles and base64, and malformed request bodies.

Every builder is deterministic (seeded), cheap, and returns ``(name, value)`` pairs so a failing reply names the
input that caused it. ``tests/api/test_api_hostile.py`` sends each to every route field that takes it.
"""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageDraw

MB = 1024 * 1024


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20000) -> bytes:
    """A ``side`` x ``side`` one-colour 1-bit PNG: a few tens of KB on disk, ``side``² pixels once decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _scene(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A small picture with shapes (so orientation and decoding are not trivially uniform)."""
    image = Image.new("RGB", (width, height), (200, 170, 140))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 6, 3 * width // 4, 5 * height // 6), fill=(230, 190, 160))
    draw.rectangle((0, 0, width // 5, height // 5), fill=(20, 40, 200))
    return image.convert(mode) if mode != "RGB" else image


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def images(photo: bytes | None = None) -> list[tuple[str, bytes]]:
    """Hostile and unusual image files. ``photo`` (a real face photo's JPEG bytes) is truncated and re-tagged too."""
    rng = random.Random(13)
    base = photo or _encode(_scene(160, 120), "JPEG", quality=90)
    scene = _scene(96, 64)
    out: list[tuple[str, bytes]] = [
        ("zero-bytes", b""),
        ("one-byte", b"\xff"),
        ("jpeg-truncated-half", base[: len(base) // 2]),
        ("jpeg-truncated-header", base[:20]),
        ("jpeg-magic-only", b"\xff\xd8\xff\xe0"),
        ("png-magic-only", b"\x89PNG\r\n\x1a\n"),
        ("random-bytes-1k", rng.randbytes(1024)),
        ("random-bytes-64k", rng.randbytes(65536)),
        ("jpeg-header-random-body", base[:200] + rng.randbytes(4000)),
        ("bomb-png-20000x20000", png_bomb(20000)),
        ("png-1x1", _encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")),
        ("jpeg-4096x4096", _encode(Image.new("RGB", (4096, 4096), (120, 130, 140)), "JPEG", quality=50)),
        ("png-5000x100", _encode(Image.new("RGB", (5000, 100), (10, 200, 10)), "PNG")),
        ("png-100x5000", _encode(Image.new("RGB", (100, 5000), (10, 200, 10)), "PNG")),
        ("jpeg-cmyk", _encode(scene.convert("CMYK"), "JPEG")),
        ("png-16bit", _encode(Image.fromarray(np.full((64, 96), 40000, np.uint16)), "PNG")),
        ("png-palette-alpha", _encode(scene.convert("P"), "PNG", transparency=0)),
        ("png-rgba", _encode(scene.convert("RGBA"), "PNG")),
        ("png-la", _encode(scene.convert("LA"), "PNG")),
        ("bmp", _encode(scene, "BMP")),
        ("jpeg-progressive", _encode(scene, "JPEG", progressive=True)),
        ("jpeg-grayscale", _encode(scene.convert("L"), "JPEG")),
        ("tiff", _encode(scene, "TIFF")),
        ("gif-animated", _encode(scene.convert("P"), "GIF", save_all=True, append_images=[_scene(96, 64, "P")] * 2)),
        ("webp-animated", _encode(scene, "WEBP", save_all=True, append_images=[scene.rotate(90)], duration=50)),
        ("webp", _encode(scene, "WEBP")),
        ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><circle r="9"/></svg>'),
        ("svg-entity-bomb", b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">]><svg>&a;&a;&a;</svg>'),
        ("heic-like", struct.pack(">I", 24) + b"ftypheic\x00\x00\x00\x00mif1heic" + rng.randbytes(512)),
        ("avif-like", struct.pack(">I", 24) + b"ftypavif\x00\x00\x00\x00mif1avif" + rng.randbytes(512)),
        ("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
        ("html", b"<html><script>alert(1)</script></html>"),
        ("jpeg-garbage-exif", _jpeg_with_raw_exif(scene, b"Exif\x00\x00" + rng.randbytes(300))),
        ("jpeg-exif-bad-orientation", _encode(scene, "JPEG", exif=_exif(99))),
    ]
    for orientation in range(1, 9):
        out.append((f"jpeg-exif-orientation-{orientation}", _encode(scene, "JPEG", exif=_exif(orientation))))
    if photo is not None:
        photo_image = Image.open(io.BytesIO(photo))
        out.append(("photo-exif-orientation-6", _encode(photo_image, "JPEG", exif=_exif(6))))
        out.append(("photo-cmyk", _encode(photo_image.convert("CMYK"), "JPEG")))
    return out


def _jpeg_with_raw_exif(image: Image.Image, app1_payload: bytes) -> bytes:
    """A JPEG whose APP1 segment carries ``app1_payload`` verbatim (garbage EXIF that PIL would not write)."""
    jpeg = _encode(image, "JPEG")
    segment = b"\xff\xe1" + struct.pack(">H", len(app1_payload) + 2) + app1_payload
    return jpeg[:2] + segment + jpeg[2:]


def base64_values(photo: bytes | None = None) -> list[tuple[str, str]]:
    """Garbage for ``image_base64*`` fields (plus hostile images, encoded)."""
    rng = random.Random(14)
    values = [
        ("not-base64", "!!!not base64!!!"),
        ("bad-padding", "QUJD="),
        ("data-url-empty", "data:,"),
        ("data-url-garbage", "data:image/png;base64,@@@"),
        ("whitespace-only", " \n\t "),
        ("base64-of-random", base64.b64encode(rng.randbytes(3000)).decode()),
        ("base64-urlsafe", base64.urlsafe_b64encode(rng.randbytes(300) + b"\xfb\xff").decode()),
        ("base64-of-bomb", base64.b64encode(png_bomb(20000)).decode()),
        ("base64-3mb", base64.b64encode(b"\x00" * (3 * MB)).decode()[: 3 * MB]),
        ("unicode", "ÿØÿà" * 100),
    ]
    if photo is not None:
        values.append(("base64-truncated-photo", base64.b64encode(photo).decode()[: len(photo) // 2]))
    return values


def rectangles() -> list[tuple[str, str]]:
    """Garbage for ``face_rectangle*`` fields."""
    return [
        ("letters", "a,b,c,d"),
        ("three-values", "1,2,3"),
        ("five-values", "1,2,3,4,5"),
        ("negative", "-10,-10,100,100"),
        ("zero-size", "0,0,0,0"),
        ("huge", "1000000000,1000000000,1000000000,1000000000"),
        ("overflow", ",".join(["9" * 400] * 4)),
        ("floats", "1.5,2.5,100.5,100.5"),
        ("nan", "nan,nan,nan,nan"),
        ("inf", "inf,inf,inf,inf"),
        ("outside-image", "5000,5000,100,100"),
        ("empty-items", ",,,"),
        ("spaces", " 1 , 2 , 100 , 100 "),
        ("megabyte", "1," * (MB // 2)),
    ]


def numbers() -> list[tuple[str, str]]:
    """Hostile values for integer fields."""
    return [
        ("negative", "-1"),
        ("big-negative", str(-(2**63))),
        ("huge", str(2**64)),
        ("digits-5000", "9" * 5000),
        ("float", "1.5"),
        ("exp", "1e3"),
        ("nan", "NaN"),
        ("inf", "Infinity"),
        ("hex", "0x10"),
        ("letters", "abc"),
        ("spaces", "   "),
        ("unicode-digits", "١٢"),  # Arabic-Indic digits: int() accepts them
        ("plus", "+1"),
        ("underscore", "1_0"),
    ]


def texts() -> list[tuple[str, str]]:
    """Hostile values for text fields (tokens, ids, names, lists, URLs)."""
    return [
        ("megabyte", "x" * MB),
        ("megabyte-commas", "," * MB),
        ("megabyte-unicode", "é" * (MB // 2)),
        ("nul", "a\x00b"),
        ("control", "\x01\x02\x1b[31m"),
        ("only-commas", ",,,,"),
        ("many-tokens", ",".join(f"{i:032x}" for i in range(2000))),
        ("sql", "' OR 1=1; DROP TABLE faces; --"),
        ("percent", "%s%n%x%%"),
        ("bom-and-replacement", "\ufeff\ufffd"),
        ("emoji", "😀" * 300),
        ("rtl", "\u202eabc"),
        ("path", "../../../../etc/passwd"),
        ("url-file", "file:///etc/passwd"),
        ("url-loopback", "http://127.0.0.1:1/x.jpg"),
        ("url-garbage", "http://[::1"),
        ("number-like", "NaN"),
    ]


def multipart(body_fields: dict[str, str], boundary: str = "hostileB0undary") -> bytes:
    """A well-formed multipart body of text fields (the base the malformed variants below start from)."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in body_fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def raw_bodies(auth: dict[str, str], max_body_bytes: int) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """Malformed or odd request bodies as ``(name, headers, body)``: the client sends them verbatim."""
    b = "hostileB0undary"
    good = multipart(auth, b)
    mp = f"multipart/form-data; boundary={b}"
    yield "multipart-no-boundary-param", {"content-type": "multipart/form-data"}, good
    yield "multipart-wrong-boundary", {"content-type": "multipart/form-data; boundary=other"}, good
    yield "multipart-empty-boundary", {"content-type": "multipart/form-data; boundary="}, good
    yield "multipart-huge-boundary", {"content-type": "multipart/form-data; boundary=" + "b" * 5000}, good
    yield "multipart-no-closing", {"content-type": mp}, good[: -len(f"--{b}--\r\n")]
    yield "multipart-cut-mid-header", {"content-type": mp}, good[:30]
    yield "multipart-empty-body", {"content-type": mp}, b""
    yield "multipart-garbage", {"content-type": mp}, random.Random(15).randbytes(4000)
    no_disposition = f"--{b}\r\nX-Other: 1\r\n\r\nvalue\r\n--{b}--\r\n".encode()
    yield "multipart-part-without-disposition", {"content-type": mp}, no_disposition
    no_name = f'--{b}\r\nContent-Disposition: form-data; filename="x.jpg"\r\n\r\nvalue\r\n--{b}--\r\n'.encode()
    yield "multipart-part-without-name", {"content-type": mp}, good[: -len(f"--{b}--\r\n")] + no_name
    dup = multipart({**auth, "outer_id": "one"}, b)[: -len(f"--{b}--\r\n")] + multipart({"outer_id": "two"}, b)
    yield "multipart-duplicated-fields", {"content-type": mp}, dup
    dup_auth = multipart({"api_key": "wrong", "api_secret": "wrong"}, b)[: -len(f"--{b}--\r\n")] + good
    yield "multipart-duplicated-auth-first-wrong", {"content-type": mp}, dup_auth
    over = multipart({**auth, "outer_id": "z" * (max_body_bytes + 1024)}, b)
    yield "multipart-field-over-body-limit", {"content-type": mp}, over
    field_2mb = multipart({**auth, "display_name": "z" * (2 * MB)}, b)
    yield "multipart-field-2mb", {"content-type": mp}, field_2mb
    many = multipart({**auth, **{f"f{i}": "v" for i in range(5000)}}, b)
    yield "multipart-5000-fields", {"content-type": mp}, many
    many_files = good[: -len(f"--{b}--\r\n")] + b"".join(
        f'--{b}\r\nContent-Disposition: form-data; name="image_file"; filename="{i}.jpg"\r\n\r\nx\r\n'.encode()
        for i in range(500)
    )
    yield "multipart-500-files", {"content-type": mp}, many_files + f"--{b}--\r\n".encode()
    latin = multipart(auth, b)[: -len(f"--{b}--\r\n")] + (
        f'--{b}\r\nContent-Disposition: form-data; name="outer_id"\r\n\r\n'.encode() + b"\xff\xfe\xc3(\r\n"
    )
    yield "multipart-non-utf8-field", {"content-type": mp}, latin + f"--{b}--\r\n".encode()
    charset = multipart(auth, b)[: -len(f"--{b}--\r\n")] + (
        f'--{b}\r\nContent-Disposition: form-data; name="display_name"\r\n'
        "Content-Type: text/plain; charset=utf-16\r\n\r\n".encode()
        + "hi".encode("utf-16")
        + b"\r\n"
    )
    yield "multipart-utf16-field", {"content-type": mp}, charset + f"--{b}--\r\n".encode()
    name_nonutf8 = good[: -len(f"--{b}--\r\n")] + (
        f'--{b}\r\nContent-Disposition: form-data; name="'.encode() + b"\xff\xfe" + b'"\r\n\r\nv\r\n'
    )
    yield "multipart-non-utf8-name", {"content-type": mp}, name_nonutf8 + f"--{b}--\r\n".encode()
    form = "&".join(f"{k}={v}" for k, v in auth.items())
    urlenc = "application/x-www-form-urlencoded"
    yield "urlencoded-non-utf8", {"content-type": urlenc}, (form + "&outer_id=%FF%FE%C3%28").encode()
    yield "urlencoded-raw-high-bytes", {"content-type": urlenc}, form.encode() + b"&display_name=\xff\xfe"
    yield "urlencoded-bad-percent", {"content-type": urlenc}, (form + "&outer_id=%zz%&&&=&=x").encode()
    yield "urlencoded-5000-fields", {"content-type": urlenc}, (form + "".join(f"&f{i}=v" for i in range(5000))).encode()
    yield "urlencoded-megabyte-field", {"content-type": urlenc}, (form + "&display_name=" + "y" * MB).encode()
    yield "json-body", {"content-type": "application/json"}, b'{"api_key": "x", "api_secret": "y"}'
    yield "text-plain", {"content-type": "text/plain"}, form.encode()
    yield "octet-stream", {"content-type": "application/octet-stream"}, random.Random(16).randbytes(2000)
    yield "xml", {"content-type": "application/xml"}, b"<a>" * 1000
    yield "no-content-type", {}, form.encode()
    yield "content-type-garbage", {"content-type": "\x7f;;;=="}, form.encode()
    yield "multipart-with-charset-junk", {"content-type": mp + "; charset=nonexistent-9"}, good
