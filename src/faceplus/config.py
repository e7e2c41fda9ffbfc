"""Settings with Face++ defaults, each overridable by a ``FACEPLUS_*`` environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from platformdirs import user_data_dir


def _env(name: str, default: str) -> str:
    return os.environ.get(f"FACEPLUS_{name.upper()}", default)


@dataclass(frozen=True)
class ImageLimits:
    """Face++ accepts 48x48 to 4096x4096 pixel images of at most 2 MB."""

    min_side: int = 48
    max_side: int = 4096
    max_bytes: int = 2 * 1024 * 1024

    @classmethod
    def from_env(cls) -> ImageLimits:
        return cls(
            **{f.name: int(_env(f"image_{f.name}", str(f.default))) for f in fields(cls)}  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class DetectionSettings:
    """How hard the engine looks for faces.

    ``min_face`` (pixels) is below Face++'s 48 px so group photos keep their small faces; set
    ``FACEPLUS_MIN_FACE=48`` for Face++'s behaviour. ``hog_threshold`` drops the weak HOG false
    positives dlib reports at low scores.

    The fallback steps of the chain (after BlazeFace finds nothing) are bounded per image, so a photo
    without a face costs about what one with a face does (docs/ENGINE.md, "Cost bound"):
    ``max_pixels`` is how many pixels they may scan in all (each step's image is scaled down to what is
    left), ``mmod_max_pixels`` is MMOD's share of it (at most half; 0, the default, leaves MMOD out: seconds a photo on
    CPU, and it found no lfw-dev or group-photo face the other steps miss), and the chain answers "no face"
    once ``budget_s`` seconds are spent.
    """

    detector: str = "blazeface"
    min_face: int = 20
    hog_upsample: int = 1
    hog_threshold: float = -0.2
    fallback: bool = True
    blazeface_threshold: float = 0.5
    max_pixels: int = 300_000
    mmod_max_pixels: int = 0
    budget_s: float = 2.0

    @classmethod
    def from_env(cls) -> DetectionSettings:
        return cls(
            detector=_env("detector", cls.detector),
            min_face=int(_env("min_face", str(cls.min_face))),
            hog_upsample=int(_env("hog_upsample", str(cls.hog_upsample))),
            hog_threshold=float(_env("hog_threshold", str(cls.hog_threshold))),
            fallback=_env("detect_fallback", "1") not in ("0", "false", "no"),
            blazeface_threshold=float(_env("blazeface_threshold", str(cls.blazeface_threshold))),
            max_pixels=int(_env("detect_max_pixels", str(cls.max_pixels))),
            mmod_max_pixels=int(_env("detect_mmod_max_pixels", str(cls.mmod_max_pixels))),
            budget_s=float(_env("detect_budget_s", str(cls.budget_s))),
        )


def data_dir() -> Path:
    """The server's data folder: ``FACEPLUS_DATA_DIR`` or a per-user folder."""
    return Path(_env("data_dir", user_data_dir("faceplus")))


@dataclass(frozen=True)
class Settings:
    limits: ImageLimits = field(default_factory=ImageLimits)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    flip_tta: bool = True
    alignment: int = 68  # landmarks the chip is aligned on: 68 or 5

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            limits=ImageLimits.from_env(),
            detection=DetectionSettings.from_env(),
            flip_tta=_env("flip_tta", "1") not in ("0", "false", "no"),
            alignment=int(_env("alignment", "68")),
        )
