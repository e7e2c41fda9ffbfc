"""Image intake: every accepted format decodes upright; every kind of bad input raises its own typed error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceplus.errors import ImageFileTooLarge, InvalidImageSize, UnsupportedImageFormat
from faceplus.imaging import load_image
from faceplus.settings import ImageLimits


def _gradient(width: int = 120, height: int = 80) -> np.ndarray:
    """A non-symmetric test picture: red grows left to right, green top to bottom."""
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return np.stack([x, y, np.full_like(x, 40)], axis=2)


def _encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    picture = _gradient()
    decoded = load_image(_encode(picture, fmt))
    assert decoded.rgb.shape == (80, 120, 3) and decoded.rgb.dtype == np.uint8
    assert decoded.format == fmt
    # Lossy formats differ a little, but the gradient's direction must survive.
    assert decoded.rgb[40, 110, 0] > decoded.rgb[40, 10, 0] + 150
    assert decoded.rgb[75, 60, 1] > decoded.rgb[5, 60, 1] + 150


def test_gif_takes_the_first_frame() -> None:
    frames = [Image.fromarray(np.full((60, 60, 3), value, np.uint8)) for value in (200, 20)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert load_image(buffer.getvalue()).rgb.mean() > 150


def test_exif_orientation_is_applied() -> None:
    picture = _gradient(120, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = load_image(_encode(picture, "JPEG", exif=exif.tobytes()))
    assert decoded.rgb.shape == (120, 80, 3)
    # After a clockwise turn the image's left column (low red) is at the top.
    assert decoded.rgb[5, 40, 0] < decoded.rgb[115, 40, 0]


def test_alpha_is_composited_on_white() -> None:
    rgba = np.zeros((60, 60, 4), np.uint8)
    decoded = load_image(_encode(rgba, "PNG"))
    assert decoded.rgb.min() == 255


@pytest.mark.parametrize(
    "source",
    [np.zeros((60, 70), np.uint8), np.zeros((60, 70, 4), np.uint8), np.zeros((60, 70, 3), np.float32)],
    ids=["gray", "rgba", "float"],
)
def test_arrays_are_accepted(source: np.ndarray) -> None:
    assert load_image(source).rgb.shape == (60, 70, 3)


def test_pil_image_and_path_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    Image.fromarray(_gradient()).save(path)
    assert load_image(path).rgb.shape == load_image(Image.open(path)).rgb.shape == (80, 120, 3)
    assert load_image(str(path)).format == "PNG"


def test_non_image_bytes() -> None:
    with pytest.raises(UnsupportedImageFormat) as info:
        load_image(b"this is not an image at all", param="image_file")
    assert info.value.error_message == "IMAGE_ERROR_UNSUPPORTED_FORMAT: image_file"


def test_unaccepted_format() -> None:
    with pytest.raises(UnsupportedImageFormat):
        load_image(_encode(_gradient(), "TIFF"))


def test_truncated_jpeg() -> None:
    data = _encode(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8), "JPEG")
    with pytest.raises(UnsupportedImageFormat, match="truncated|damaged"):
        load_image(data[: len(data) // 2])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImageFormat):
        load_image(tmp_path / "nope.jpg")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's signature."""
    real = bytearray(_encode(np.zeros((50, 50, 3), np.uint8), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(real[24:29])
    real[16:29] = ihdr
    real[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(real)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidImageSize):
        load_image(_png_claiming(100_000, 100_000))


def test_bomb_refused_even_with_lifted_side_limit() -> None:
    with pytest.raises(InvalidImageSize, match="bomb"):
        load_image(_png_claiming(60_000, 60_000), ImageLimits(max_side=100_000, max_bytes=1 << 30))


def test_too_small_and_too_large_sides() -> None:
    with pytest.raises(InvalidImageSize):
        load_image(_encode(np.zeros((20, 100, 3), np.uint8), "PNG"))
    with pytest.raises(InvalidImageSize):
        load_image(np.zeros((50, 5000, 3), np.uint8))


def test_byte_limit() -> None:
    data = _encode(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8), "PNG")
    with pytest.raises(ImageFileTooLarge) as info:
        load_image(data, ImageLimits(max_bytes=10_000), param="image_base64")
    assert info.value.code == "IMAGE_FILE_TOO_LARGE"
    assert load_image(data, ImageLimits(max_bytes=len(data))).rgb.shape == (200, 200, 3)
