"""An image refused by a size limit: ``error_message`` stays Face++'s exact ``CODE: param`` (clients parse it), and
a separate ``error_detail`` says the limit, the image's own size and what to do."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from faceplus.api.replies import ErrorReply

from .conftest import Api

GROUP_PHOTO = "group-photos/images/2008_007676.jpg"


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> Image.Image:
    return Image.open(shared_data / GROUP_PHOTO).convert("RGB")


def encoded(image: Image.Image, size: tuple[int, int], fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.resize(size).save(out, fmt, **options)
    return out.getvalue()


def test_file_too_large_names_the_limit(api: Api, photo: Image.Image) -> None:
    data = encoded(photo, (2400, 1800), "PNG")  # a real photo, enlarged: over 2 MB as PNG
    assert len(data) > api.settings.engine.limits.max_bytes
    r = api.post("detect", files={"image_file": data})
    assert r.status_code == 400
    body = r.json()
    ErrorReply.model_validate(body)
    assert body["error_message"] == "IMAGE_FILE_TOO_LARGE: image_file"  # exactly Face++'s
    detail = body["error_detail"]
    assert f"The image is {len(data) / 2**20:.1f} MB" in detail and "at most 2.0 MB" in detail
    assert "FACEPLUS_IMAGE_MAX_BYTES" in detail and "Shrink" in detail


def test_invalid_size_names_the_limit(api: Api, photo: Image.Image) -> None:
    data = encoded(photo, (4200, 3000), "JPEG", quality=60)  # a phone-sized side, under 2 MB
    assert len(data) < api.settings.engine.limits.max_bytes
    r = api.post("compare", files={"image_file1": data}, face_token2="0" * 32)
    assert r.status_code == 400
    body = r.json()
    assert body["error_message"] == "INVALID_IMAGE_SIZE: image_file1"
    detail = body["error_detail"]
    assert "The image is 4200x3000 px" in detail and "48 to 4096 px" in detail and "Resize" in detail


def test_other_errors_carry_no_detail(api: Api) -> None:
    r = api.post("detect", image_url="")
    assert r.json()["error_message"].startswith("MISSING_ARGUMENTS") and "error_detail" not in r.json()
