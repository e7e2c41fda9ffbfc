"""Image intake: decode, apply EXIF orientation, enforce limits, and raise one typed error per kind of bad input.

Every entry point (library, CLI, server) goes through :func:`load_image`, so a truncated file, a
non-image or a decompression bomb fails the same way everywhere. Dimensions are checked from the
header *before* pixels are decoded, so a bomb never allocates its pixels.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from faceplus.errors import ImageFileTooLarge, InvalidImageSize, UnsupportedImageFormat
from faceplus.settings import ImageLimits

ImageSource = str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray

#: Formats we decode. MPO is the multi-picture JPEG many cameras write.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF"})


@dataclass(frozen=True)
class DecodedImage:
    """An RGB uint8 array (H, W, 3), upright, plus where it came from."""

    rgb: np.ndarray
    format: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _check_side(width: int, height: int, limits: ImageLimits, param: str | None) -> None:
    if min(width, height) < limits.min_side or max(width, height) > limits.max_side:
        raise InvalidImageSize(
            f"image is {width}x{height} px; accepted sides are {limits.min_side}..{limits.max_side} px",
            param=param,
        )


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned by its EXIF orientation; the same object (no pixel copy) when it needs no turn."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) in (0, 1):
        return image
    return ImageOps.exif_transpose(image) or image


def _writable(image: Image.Image) -> np.ndarray:
    """The pixels as a writable array, copied once (``np.asarray`` of a PIL image is read-only)."""
    array = np.asarray(image, dtype=np.uint8)
    return array if array.flags.writeable else array.copy()


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode == "RGB":
        return _writable(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return _writable(background)
    if image.mode.startswith("I;16") or image.mode == "I":
        array = np.asarray(image, dtype=np.float64)
        peak = max(float(array.max()), 1.0)
        gray = (array * (255.0 / (65535.0 if peak > 255 else 255.0))).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return _writable(image.convert("RGB"))


def _decode_encoded(data: bytes, limits: ImageLimits, param: str | None) -> DecodedImage:
    if len(data) > limits.max_bytes:
        raise ImageFileTooLarge(f"file is {len(data)} bytes; the limit is {limits.max_bytes}", param=param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "UNKNOWN"
            if fmt not in ACCEPTED_FORMATS:
                raise UnsupportedImageFormat(f"format {fmt} is not accepted", param=param)
            # Header dimensions, before any pixel is decoded: this is what stops a bomb.
            _check_side(*image.size, limits, param)
            if fmt == "GIF":
                image.seek(0)
            image.load()
            upright = _upright(image)
            rgb = _to_rgb(upright)
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise UnsupportedImageFormat("not an image, or a format we do not read", param=param) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageSize(f"decompression bomb refused: {exc}", param=param) from exc
    except (OSError, ValueError, EOFError) as exc:
        raise UnsupportedImageFormat(f"image data is damaged or truncated: {exc}", param=param) from exc
    _check_side(rgb.shape[1], rgb.shape[0], limits, param)
    return DecodedImage(rgb=rgb, format=fmt)


def _from_array(array: np.ndarray, limits: ImageLimits, param: str | None) -> DecodedImage:
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise UnsupportedImageFormat(f"array of shape {array.shape} is not an RGB(A) image", param=param)
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0
        array = np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)
    _check_side(array.shape[1], array.shape[0], limits, param)
    return DecodedImage(rgb=np.ascontiguousarray(array[..., :3]), format="ARRAY")


def load_image(source: ImageSource, limits: ImageLimits | None = None, *, param: str | None = None) -> DecodedImage:
    """Decode ``source`` (path, encoded bytes, PIL image, or RGB/RGBA/gray numpy array) into upright RGB.

    ``param`` names the request field the image came from, for the Face++ error string.
    Raises :class:`~faceplus.errors.ImageError` subclasses for every kind of bad input.
    """
    limits = limits or ImageLimits()
    if isinstance(source, DecodedImage):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, limits, param)
    if isinstance(source, Image.Image):
        _check_side(*source.size, limits, param)
        return DecodedImage(rgb=_to_rgb(ImageOps.exif_transpose(source) or source), format=source.format or "PIL")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_encoded(bytes(source), limits, param)
    path = Path(source)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsupportedImageFormat(f"cannot read {path}: {exc.strerror}", param=param) from exc
    if size > limits.max_bytes:
        raise ImageFileTooLarge(f"{path} is {size} bytes; the limit is {limits.max_bytes}", param=param)
    return _decode_encoded(path.read_bytes(), limits, param)
