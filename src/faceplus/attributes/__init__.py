"""Face++ attributes and named landmarks for detected faces: one analysis layer over the engine.

:class:`FaceAnalyzer` fills ``face.attributes`` (Face++ shapes) and ``face.landmarks`` (83 or 106 named points)
for a :class:`~faceplus.results.Face` found by :class:`~faceplus.engine.Engine`. Each attribute is one module of
this package: its measurement and the function registered under its Face++ name (:mod:`faceplus.attributes.registry`).
The measurements several attributes share (mesh, iris, emotion probabilities, the age/gender estimate, and the
pose and blur their modules define) are computed once per face (:mod:`faceplus.attributes.measurements`). Models
load lazily, and only those the requested attributes need run:

==================  ==========================================================================
module              attributes, computed from
==================  ==========================================================================
``age_gender``      gender, age: Cydral's networks on dlib chips (:class:`AgeGenderModel`)
``expression``      emotion, smiling: fer's mini-Xception with flip TTA; smile = P(happy)
``headpose``        headpose: the 468-point mesh fitted to a symmetric mean face, mirror-averaged
``blur``            blur: the re-blur metric on the aligned chip, per direction
``quality``         facequality: predicted same-person distance, fitted on lfw-dev
``eyes``            eyestatus, eyegaze: the iris model's eyelid contour and iris centre
``mouth``           mouthstatus: the inner-lip gap on the mesh
==================  ==========================================================================

The named landmarks live here too: Face++'s 83/106 points (``facepp_landmarks``), the dense landmark parts
(``dense_landmarks``) and the 68 iBUG points read off the mesh (``ibug68``).

To add an attribute: a new module here with a function decorated ``@attribute("name", order=...)``, and its
name in :data:`_MODULES`. ``beauty``, ``skinstatus`` and ``ethnicity`` have no model: :func:`parse_attributes`
(the library's entry) raises :class:`~faceplus.errors.UnsupportedAttribute` for them; :func:`split_attributes`
(what the HTTP API uses) sets them apart so the reply can list them as unmeasured and still answer everything
else. Fields of a supported attribute that nothing measures (glasses and occlusion in ``eyestatus``, masks in
``mouthstatus``) are ``None``, an explicit "not measured", never a made-up 0.
"""

from __future__ import annotations

from importlib import import_module

from faceplus.attributes.analyzer import LANDMARK_POINTS, FaceAnalyzer
from faceplus.attributes.registry import REGISTRY, WHY_UNSUPPORTED, parse_attributes, split_attributes, supported

#: The modules that register attributes (imported here, so the registry is complete once the package is).
_MODULES = ("age_gender", "expression", "headpose", "blur", "quality", "eyes", "mouth")
for _module in _MODULES:
    import_module(f"faceplus.attributes.{_module}")

#: Face++ ``return_attributes`` names this engine computes, in Face++'s order.
SUPPORTED_ATTRIBUTES: tuple[str, ...] = supported()
#: Face++ attribute names no bundled model predicts: never an invented value.
UNSUPPORTED_ATTRIBUTES: frozenset[str] = frozenset(WHY_UNSUPPORTED)
#: Request name -> the key of ``face.attributes`` it fills.
RESPONSE_KEY = {name: item.response_key for name, item in REGISTRY.items()}

__all__ = [
    "LANDMARK_POINTS",
    "RESPONSE_KEY",
    "SUPPORTED_ATTRIBUTES",
    "UNSUPPORTED_ATTRIBUTES",
    "FaceAnalyzer",
    "parse_attributes",
    "split_attributes",
]
