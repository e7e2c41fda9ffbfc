"""Face detection as a chain: the primary detector, then stronger or finer ones only when it finds nothing.

Detectors (chosen by measurement, see docs/ENGINE.md "Detection" and ``benchmarks/detectors.py``):
- ``retinaface`` (default): RetinaFace-MobileNet0.25 on onnxruntime, on the photo shrunk to at most
  ``retinaface_max_side`` px; it also gives the five points an ArcFace-style alignment needs
  (``Detection.keypoints``). Its boxes, like BlazeFace's, are re-boxed by HOG or mapped to dlib's convention.
- ``blazeface``: MediaPipe BlazeFace full range on onnxruntime, ~4 ms a photo. Its boxes are mapped to
  dlib's box convention (fitted on fairface-dev, ``benchmarks/box_mapping.py``) so that dlib's landmark
  predictors see what they were trained on.
- ``hog1``/``hog2``: dlib's HOG at upsampling 1 and 2 (~25 ms and ~100 ms on a 250x250 photo).
- ``blazeface-short``: BlazeFace short range (128x128 input), for close-up faces the full-range model
  misses (all 13 lfw-dev images the full-range model misses; ~2 ms).
- ``hog``: dlib's HOG, on the image scaled so the smallest face it must find just fills its 80 px window.
- ``mmod``: dlib's CNN (seconds a photo on CPU), off unless ``FACEPLUS_DETECT_MMOD_MAX_PIXELS`` lets it in.
A hit is kept only if its box is at least ``min_face`` pixels on its short side.

Cost bound (docs/ENGINE.md): the primary detector sees a bounded view of the photo (RetinaFace at most
``retinaface_max_side`` px a side, BlazeFace its 192 px letterbox); the fallback steps run only while it has
found nothing; together they scan at most ``max_pixels`` pixels (each one's image is scaled down to fit what
is left, boxes are mapped back), and the chain answers "no face" once ``budget_s`` has passed. So a 4096x4096
photo without a face costs about what a photo with one does, instead of minutes and gigabytes (HOG used to
upsample it to 8192).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import cv2
import numpy as np

from faceplus.models.dlib_models import DlibModels
from faceplus.results import Box, BoxStyle, Detection
from faceplus.settings import DETECTORS, DetectionSettings

#: Side (px) of the smallest face dlib's HOG (80x80 window) and MMOD (~80 px window) find at scale 1.
HOG_WINDOW = 80
MMOD_WINDOW = 80

#: HOG as the primary detector may scan this many times ``max_pixels`` (see :meth:`DetectorChain.primary_hog`).
PRIMARY_HOG_PIXELS = 4

#: BlazeFace sees a photo longer than twice this reduced by a whole factor first (its input is 128-192 px).
_BLAZE_VIEW_SIDE = 384

#: BlazeFace box -> dlib (HOG-style) box, as fractions of the BlazeFace box: left/top shift, width/height
#: scale (HOG boxes are slightly smaller and lower). Mean over the 1,120 faces BlazeFace full range and dlib's
#: HOG (whole image, upsampling 0) both found in the first 1,500 fairface-dev crops (FairFace, Kärkkäinen and Joo,
#: CC BY 4.0), each padded by half its side (its faces fill the frame) and scaled by a factor in [1, 6/5) so
#: HOG's pyramid steps average out; docs/ENGINE.md "Box mappings":
#: ``OMP_NUM_THREADS=1 uv run python benchmarks/box_mapping.py --fit fairface --fit-images 1500 --test-images 1000``.
#: The HOG re-box places its crop from the mapped box too, so these also set where HOG looks.
_BLAZE_TO_DLIB = (0.041, 0.055, 0.927, 0.927)

#: RetinaFace box -> dlib (HOG-style) box, in the same terms, fitted the same way on the 1,143 faces both found in
#: those crops (RetinaFace's box is taller: it reaches the hairline and below the chin).
_RETINA_TO_DLIB = (-0.038, 0.168, 1.073, 0.793)


def to_dlib_box(
    left: float, top: float, width: float, height: float, mapping: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """A detector's box (left, top, width, height) mapped to dlib's HOG convention by ``mapping`` (left/top shift,
    width/height scale, as fractions of the box): the mapped (left, top, right, bottom)."""
    dx, dy, sw, sh = mapping
    x0, y0 = left + dx * width, top + dy * height
    return x0, y0, x0 + sw * width, y0 + sh * height


#: Face width (px) at which HOG (upsampling 0, 80 px window) re-boxes a BlazeFace face, the crop's side as
#: a multiple of the face's, and the overlap its box must have with BlazeFace's to count as the same face.
#: HOG's pyramid steps by 5/6, so 130 px x (5/6)^2 keeps the scales and cell grid it found boxes on at 130 px
#: and skips its two largest levels (benchmarks/rebox_crop.py, lfw-dev 4,319 faces: corners move a median 1%
#: of the box, 6 faces lost and 6 gained of 4,222; re-box 6.0 -> 3.3 ms per face; LFW 98.90% either way).
_HOG_FACE_PX = 130.0 * (5 / 6) ** 2
_HOG_CROP = 2.0
_HOG_CONFIRM_IOU = 0.4
#: The overlap a RetinaFace box must have with a given ``face_rectangle`` to lend it its five points.
_GIVEN_BOX_IOU = 0.3
#: The same for MMOD re-boxing a short-range face HOG did not confirm (MMOD's window is ~80 px too).
_MMOD_FACE_PX = 130.0
_MMOD_CROP = 2.0

if TYPE_CHECKING:
    from faceplus.models.blazeface import BlazeFaceDetector
    from faceplus.models.retinaface import RetinaFaceDetector


@dataclass
class Budget:
    """What the fallback steps of one image may still spend (pixels to scan, a deadline), and its reductions."""

    pixels: int
    deadline: float
    _reduced: dict[int, np.ndarray] = field(default_factory=dict)

    def spent(self) -> bool:
        return self.pixels <= 0 or time.perf_counter() >= self.deadline

    def reduced(self, rgb: np.ndarray, factor: int) -> np.ndarray:
        """``rgb`` shrunk by a whole ``factor`` (area mean), cached for the image's other steps.

        The image is first cropped to a multiple of ``factor`` (at most factor - 1 pixels off its right and
        bottom edges) so OpenCV takes its fast integer path: ~4x faster than an arbitrary area resize,
        which on a 4096 px photo took longer than BlazeFace and HOG together. Coordinates in the
        result times ``factor`` are coordinates in ``rgb``.
        """
        if factor <= 1:
            return rgb
        if factor not in self._reduced:
            h, w = rgb.shape[0] // factor, rgb.shape[1] // factor
            crop = rgb[: h * factor, : w * factor]
            self._reduced[factor] = np.ascontiguousarray(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))
        return self._reduced[factor]

    def scaled(self, rgb: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
        """``rgb`` at about ``scale`` (<= 1) and the exact scale it is at: a whole reduction, then a small resize."""
        factor = max(1, int(1 / scale))
        image = self.reduced(rgb, factor)
        rest = scale * factor
        if rest < 0.999:
            image = _resize(image, rest)
            return image, image.shape[1] / rgb.shape[1]
        return image, 1 / factor


def fit_scale(shape: tuple[int, ...], window: int, min_face: int, max_scale: float, max_pixels: int) -> float:
    """The scale at which a detector with a ``window`` px window sees faces of ``min_face`` px, within limits.

    Never more than ``max_scale``, and never so large that the scaled image exceeds ``max_pixels``.
    """
    h, w = shape[:2]
    want = window / max(min_face, 1)
    return min(want, max_scale, math.sqrt(max(max_pixels, 0) / max(h * w, 1)))


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(1, int(w * scale)), max(1, int(h * scale)))  # rounded down: never past the pixel cap
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR))


def _unscale(hits: list[Detection], scale: float) -> list[Detection]:
    if scale == 1:
        return hits
    return [h.unscaled(scale) for h in hits]


#: A box that overlaps a HOG-confirmed one by more than this is dropped (see _drop_straddling).
_STRADDLE_IOU = 0.3


def _drop_straddling(hits: list[Detection]) -> list[Detection]:
    """``hits`` without the boxes that overlap a HOG-confirmed one: unconfirmed (foreign-style) boxes, and of two
    confirmed ones overlapping each other, the one with the lower detector score.

    RetinaFace sometimes boxes a "face" made of parts of two neighbours (lfw-dev Ali_Naimi_0003: score 0.97,
    one eye on each man). HOG usually does not confirm such a box, and it overlaps the neighbour HOG did confirm;
    where HOG's re-box finds the neighbour instead (its crop is placed from the straddling box), the two confirmed
    boxes are the same face. Real neighbours in the group photos overlap far less.
    """
    kept: list[Detection] = []
    for hit in sorted((h for h in hits if h.style is BoxStyle.HOG), key=lambda h: -h.score):
        if all(hit.box().iou(k.box()) <= _STRADDLE_IOU for k in kept):
            kept.append(hit)
    confirmed = [k.box() for k in kept]
    kept_ids = {id(k) for k in kept}
    return [
        h
        for h in hits
        if id(h) in kept_ids
        or (h.style is not BoxStyle.HOG and all(h.box().iou(c) <= _STRADDLE_IOU for c in confirmed))
    ]


#: A chain step: (image, smallest face to find, the image's remaining budget) -> hits in image pixels.
Step = Callable[[np.ndarray, int, Budget], list[Detection]]


class DetectorChain:
    """Runs the configured detector, falling back to the others where it finds no face, within a budget."""

    def __init__(self, settings: DetectionSettings, dlib: DlibModels) -> None:
        if settings.detector not in DETECTORS:
            raise ValueError(f"unknown detector {settings.detector!r}; choose one of {DETECTORS}")
        self.settings = settings
        self.dlib = dlib

    @cached_property
    def _blazeface(self) -> BlazeFaceDetector:
        from faceplus.models.blazeface import BlazeFaceDetector

        return BlazeFaceDetector("full", score_threshold=self.settings.blazeface_threshold)

    @cached_property
    def _blazeface_short(self) -> BlazeFaceDetector:
        from faceplus.models.blazeface import BlazeFaceDetector

        return BlazeFaceDetector("short", score_threshold=self.settings.blazeface_threshold)

    @cached_property
    def _retinaface(self) -> RetinaFaceDetector:
        from faceplus.models.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(
            score_threshold=self.settings.retinaface_threshold, max_side=self.settings.retinaface_max_side
        )

    def retinaface_step(self, rgb: np.ndarray, _min_face: int, budget: Budget) -> list[Detection]:
        """RetinaFace on the photo shrunk to at most ``retinaface_max_side`` a side: a whole-factor reduction
        (OpenCV's fast path, shared with the fallbacks) that stays at least that long, then the detector's own
        small resize. The network's cost grows with the pixels it sees, so this bounds it for any photo (boxes
        are mapped back); an 800 px photo is seen at 640 px, not halved.
        """
        factor = max(1, max(rgb.shape[:2]) // max(self.settings.retinaface_max_side, 1))
        return self.retinaface(rgb, budget.reduced(rgb, factor), factor)

    def retinaface(self, rgb: np.ndarray, view: np.ndarray | None = None, factor: int = 1) -> list[Detection]:
        """RetinaFace's faces with their five points, each boxed the way dlib's HOG boxes it where HOG confirms it.

        As for BlazeFace (:meth:`blazeface`): dlib's landmark predictors need HOG-style boxes, so a face HOG does
        not confirm keeps RetinaFace's box mapped to dlib's convention (``retinaface-box``, re-fitted by the engine).
        With ``retinaface_rebox`` off every face keeps that mapped box (no HOG pass: ~3 ms a face less).
        """
        mapped_hits = self.retinaface_hits(rgb if view is None else view, factor)
        if not self.settings.retinaface_rebox:
            return mapped_hits
        hits = []
        for mapped in mapped_hits:
            found = self.hog_box(rgb, mapped, "retinaface")
            hits.append(mapped if found is None else replace(found, keypoints=mapped.keypoints))
        return _drop_straddling(hits)

    def retinaface_hits(self, view: np.ndarray, factor: int) -> list[Detection]:
        """RetinaFace's faces in ``view`` (the image reduced by ``factor``) as detections in image pixels, each box
        mapped to dlib's convention (``retinaface-box``) and carrying its five points."""
        hits = []
        for det in self._retinaface.detect(view):
            x0, y0, x1, y1 = (v * factor for v in det.box)
            box = to_dlib_box(x0, y0, x1 - x0, y1 - y0, _RETINA_TO_DLIB)
            hits.append(Detection(*box, det.score, "retinaface-box", BoxStyle.FOREIGN, det.keypoints * factor))
        return hits

    def keypoints_at(self, rgb: np.ndarray, box: Box) -> np.ndarray | None:
        """RetinaFace's five points for the face in a given box (Face++ ``face_rectangle``), or None.

        A client passing back a box detect returned should get the embedding detect gave: so RetinaFace runs on the
        very view its chain step sees (one network pass, no re-boxing), and the face whose box overlaps the given one
        most (IoU >= ``_GIVEN_BOX_IOU``) lends its points. None under another primary detector or where no face
        overlaps: the engine then derives the points from the landmarks.
        """
        if self.settings.detector != "retinaface":
            return None
        factor = max(1, max(rgb.shape[:2]) // max(self.settings.retinaface_max_side, 1))
        view = Budget(0, 0.0).reduced(rgb, factor)
        best, best_iou = None, _GIVEN_BOX_IOU
        for hit in self.retinaface_hits(view, factor):
            iou = hit.box().iou(box)
            if iou >= best_iou:
                best, best_iou = hit.keypoints, iou
        return best

    def blazeface_step(self, model: str) -> Step:
        """A chain step running BlazeFace on a whole-factor reduction of a large image (its input is 192 px)."""

        def step(rgb: np.ndarray, _min_face: int, budget: Budget) -> list[Detection]:
            factor = max(1, max(rgb.shape[:2]) // _BLAZE_VIEW_SIDE)
            return self.blazeface(rgb, model, budget.reduced(rgb, factor), factor)

        step.__name__ = f"blazeface_{model}"
        return step

    def blazeface(
        self, rgb: np.ndarray, model: str = "full", view: np.ndarray | None = None, factor: int = 1
    ) -> list[Detection]:
        """BlazeFace's faces, each boxed the way dlib's HOG boxes it where HOG confirms it (see :meth:`hog_box`).

        Both models letterbox the image into their small input, so their cost hardly grows with its size.
        A face HOG does not confirm keeps BlazeFace's (mapped) box as ``blazeface-box``, for the engine
        to re-fit from landmarks. ``view`` is ``rgb`` reduced by ``factor`` (boxes are mapped back).
        """
        detector = self._blazeface if model == "full" else self._blazeface_short
        name = "blazeface" if model == "full" else "blazeface-short"
        hits = []
        for det in detector.detect(rgb if view is None else view):
            x, y, w, h = (v * factor for v in det.box)
            box = to_dlib_box(x, y, w, h, _BLAZE_TO_DLIB)
            mapped = Detection(*box, float(det.score), "blazeface-box", BoxStyle.FOREIGN)
            found = self.hog_box(rgb, mapped, name)
            if found is None and model == "short":
                found = self.mmod_box(rgb, mapped)
            hits.append(found or mapped)
        return hits

    def mmod_box(self, rgb: np.ndarray, hit: Detection) -> Detection | None:
        """MMOD's box for a short-range BlazeFace face HOG did not confirm, from a small crop around it.

        These are the hard faces (lfw-dev: the 2 that only MMOD found before the cost bound); aligning them from
        MMOD's box scored better than from BlazeFace's mapped one. The crop is scaled so the face is ~130 px
        wide (MMOD's window is 80 px), so this costs tens of milliseconds and runs only where a face is likely.
        """
        return self._rebox(rgb, hit, lambda crop: self.dlib.detect_mmod(crop, 0), "mmod", _MMOD_FACE_PX, _MMOD_CROP)

    def hog_box(self, rgb: np.ndarray, hit: Detection, name: str = "blazeface") -> Detection | None:
        """HOG's own box for a face found by another detector, from a small crop around it.

        dlib's landmark predictors were trained on HOG boxes, and chips aligned from them match best
        (lfw-dev 99.0% against 98.8% from mapped BlazeFace boxes). The crop, twice the face's side, is scaled
        so the face is ~90 px wide, so this costs ~3 ms whatever the photo's size.
        """
        return self._rebox(
            rgb,
            hit,
            lambda crop: self.dlib.detect_hog(crop, 0, self.settings.hog_threshold),
            name,
            _HOG_FACE_PX,
            _HOG_CROP,
        )

    def _rebox(
        self,
        rgb: np.ndarray,
        hit: Detection,
        detect: Callable[[np.ndarray], list[Detection]],
        name: str,
        face_px: float,
        crop_sides: float,
    ) -> Detection | None:
        """The box ``detect`` draws around ``hit`` in a crop ``crop_sides`` times the face's side, scaled so
        the face is ``face_px`` wide; None when it finds no box overlapping ``hit`` by ``_HOG_CONFIRM_IOU``."""
        side = hit.right - hit.left
        scale = face_px / max(side, 1.0)
        cx, cy = (hit.left + hit.right) / 2, (hit.top + hit.bottom) / 2
        half = side * crop_sides / 2
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(rgb.shape[1], int(cx + half)), min(rgb.shape[0], int(cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = cv2.resize(
            rgb[y0:y1, x0:x1],
            (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        best, best_iou, style = None, _HOG_CONFIRM_IOU, BoxStyle.FOREIGN
        target = hit.box()
        for h in detect(np.ascontiguousarray(crop)):
            box = Box.from_corners(x0 + h.left / scale, y0 + h.top / scale, x0 + h.right / scale, y0 + h.bottom / scale)
            iou = box.iou(target)
            if iou > best_iou:
                best, best_iou, style = box, iou, h.style
        if best is None:
            return None
        return Detection(best.left, best.top, best.right, best.bottom, hit.score, name, style)

    def hog(self, rgb: np.ndarray, upsample: int) -> list[Detection]:
        """dlib's HOG on the whole image at a given upsampling, unbounded (for benchmarks; the chain scales)."""
        return self.dlib.detect_hog(rgb, upsample, self.settings.hog_threshold)

    def mmod(self, rgb: np.ndarray) -> list[Detection]:
        """dlib's CNN on the whole image, unbounded (for benchmarks; the chain uses :meth:`scaled_mmod`)."""
        return self.dlib.detect_mmod(rgb, 1 if max(rgb.shape[:2]) <= 400 else 0)

    def primary_hog(self, rgb: np.ndarray, min_face: int, budget: Budget) -> list[Detection]:
        """HOG as the primary detector: it runs on photos with a face too, so it gets its own, larger cap.

        ``PRIMARY_HOG_PIXELS`` times ``max_pixels`` (1.2 Mpx by default: a 640x480 photo at upsampling 1, as
        before the cost bound); the fallbacks after it keep their whole budget.
        """
        own = Budget(self.settings.max_pixels * PRIMARY_HOG_PIXELS, budget.deadline, budget._reduced)
        return self.scaled_hog(rgb, min_face, own, reserve=0)

    def scaled_hog(self, rgb: np.ndarray, min_face: int, budget: Budget, reserve: int | None = None) -> list[Detection]:
        """HOG on the image scaled so a ``min_face`` face fills its window, within the pixel budget.

        Upscaling goes through dlib's own upsampling (whole doublings, at most ``hog_upsample + 1`` of them,
        as the chain always allowed); downscaling through an area resize. MMOD's share of the budget
        (``mmod_max_pixels``, at most half) is left for it.
        """
        if reserve is None:  # MMOD's share
            reserve = min(max(self.settings.mmod_max_pixels, 0), self.settings.max_pixels // 2)
        max_scale = 2.0 ** (self.settings.hog_upsample + 1)
        scale = fit_scale(rgb.shape, HOG_WINDOW, min_face, max_scale, budget.pixels - reserve)
        image, upsample = rgb, 0
        if scale >= 2:
            upsample = int(math.log2(scale))
            scale = 2.0**upsample
        elif scale < 1:
            image, scale = budget.scaled(rgb, scale)
        else:
            scale = 1.0
        seen = image.shape[0] * image.shape[1] * 4**upsample
        if min(image.shape[:2]) * 2**upsample < HOG_WINDOW:
            return []  # no face of a window's size fits: nothing to find
        budget.pixels -= seen
        hits = self.dlib.detect_hog(image, upsample, self.settings.hog_threshold)
        return hits if image is rgb else _unscale(hits, scale)

    def scaled_mmod(self, rgb: np.ndarray, min_face: int, budget: Budget) -> list[Detection]:
        """MMOD on the image scaled like :meth:`scaled_hog`, within ``mmod_max_pixels`` (0: not run)."""
        cap = min(self.settings.mmod_max_pixels, budget.pixels)
        if cap <= 0:
            return []
        scale = fit_scale(rgb.shape, MMOD_WINDOW, min_face, 2.0, cap)
        if scale < 1:
            image, scale = budget.scaled(rgb, scale)
        else:
            image = rgb if scale == 1 else _resize(rgb, scale)
        if min(image.shape[:2]) < MMOD_WINDOW:
            return []
        budget.pixels -= image.shape[0] * image.shape[1]
        return _unscale(self.dlib.detect_mmod(image, 0), scale)

    def steps(self) -> list[Step]:
        """The chain in order: the primary detector first, then the fallbacks, cheapest first."""
        full, short = self.blazeface_step("full"), self.blazeface_step("short")
        if self.settings.detector == "retinaface":
            # No HOG step: after RetinaFace it found no face on lfw-dev, the group photos, fairface-dev's first
            # 1,500 or UTKFace, and cost ~35 ms on every photo without one. Short-range BlazeFace found 2 of
            # the 5 fairface-dev faces RetinaFace missed (and 1 box on 12 crops without faces).
            return [self.retinaface_step, short, self.scaled_mmod]
        if self.settings.detector == "blazeface":
            # Bounded HOG before short-range BlazeFace, as before the cost bound: close-up faces full range misses
            # (UTKFace's chips) get HOG's own box, which the landmark and age/gender models were trained on.
            return [full, self.scaled_hog, short, self.scaled_mmod]
        return [self.primary_hog, full, short, self.scaled_mmod]

    def find(self, rgb: np.ndarray, min_face: int | None = None) -> list[Detection]:
        """Face boxes from the first detector in the chain that finds any big enough; [] once the budget is spent."""
        min_face = self.settings.min_face if min_face is None else min_face
        budget = Budget(self.settings.max_pixels, time.perf_counter() + self.settings.budget_s)
        steps = self.steps()
        for i, step in enumerate(steps if self.settings.fallback else steps[:1]):
            if i > 0 and budget.spent():
                break
            hits = [h for h in step(rgb, min_face, budget) if min(h.right - h.left, h.bottom - h.top) >= min_face]
            if hits:
                return hits
        return []
