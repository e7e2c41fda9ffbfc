"""Landmarks and attributes for detect / face/analyze: the Face++ rules of what is asked and of the reply.

The measuring runs in a job (:mod:`faceplus.jobs.detect`, :mod:`faceplus.jobs.analyze`). Two things keep a
Face++ client working where no model measures what it asks for, without inventing a measurement
(:func:`declare_unmeasured` puts them in the reply):

- ``return_attributes`` names Face++ has but no bundled model computes (``beauty``, ``skinstatus``,
  ``ethnicity``) do not fail the call: every face gets every attribute that is measured, and the reply lists
  the others once, in ``unmeasured_attributes``. Names Face++ does not have stay 400
  ``BAD_ARGUMENTS: return_attributes``.
- Fields inside ``eyestatus`` and ``mouthstatus`` that nothing measures (glasses, occlusion, masks) are
  sent as the number ``0`` so clients that type them as numbers decode the reply, and every such field is
  named in the reply's ``unmeasured_fields`` (dotted paths, e.g. ``eyestatus.left_eye_status.dark_glasses``):
  there ``0`` means "not measured", not "measured absent".
"""

from __future__ import annotations

from typing import Any

#: Attributes whose unmeasured (``None``) fields go on the wire as 0 and are declared in ``unmeasured_fields``.
_FIELDS_DECLARED = ("eyestatus", "mouthstatus")
#: What an unmeasured field is sent as: a number in Face++'s 0-100 range that leaves the measured fields
#: summing to 100, as Face++'s do; the reply's ``unmeasured_fields`` says it is not a measurement.
UNMEASURED_VALUE = 0


def _fill_unmeasured(value: Any, path: str, found: dict[str, None]) -> Any:
    """A copy of ``value`` with every ``None`` replaced by :data:`UNMEASURED_VALUE`; their paths go to ``found``."""
    if isinstance(value, dict):
        return {key: _fill_unmeasured(item, f"{path}.{key}", found) for key, item in value.items()}
    if value is None:
        found[path] = None
        return UNMEASURED_VALUE
    return value


def declare_unmeasured(
    unmeasured: tuple[str, ...], body: dict[str, Any], described: int | None = None
) -> dict[str, Any]:
    """The detect / face/analyze reply ``body`` in its wire form: what no model measures is declared.

    Adds ``unmeasured_attributes`` (``unmeasured``: the requested Face++ names no model computes, in request order,
    :func:`faceplus.api.parsing.parse_analysis_params`) and
    ``unmeasured_fields`` (the dotted paths, once per reply, of the fields sent as 0 because nothing measures
    them); each key is absent when it would be empty. When attributes were asked for, each described face (the
    first ``described``, or all) has an ``attributes`` object, empty when no name asked for is measured: Face++
    clients (python-facepp) read ``face["attributes"]`` whenever they asked for any.
    """
    found: dict[str, None] = {}
    faces = []
    for index, face in enumerate(body.get("faces", [])):
        if unmeasured and "attributes" not in face and (described is None or index < described):
            face = {**face, "attributes": {}}
        attributes = face.get("attributes")
        if attributes and any(name in attributes for name in _FIELDS_DECLARED):
            attributes = {
                name: _fill_unmeasured(value, name, found) if name in _FIELDS_DECLARED else value
                for name, value in attributes.items()
            }
            face = {**face, "attributes": attributes}
        faces.append(face)
    out = {**body, "faces": faces} if "faces" in body else dict(body)
    if unmeasured:
        out["unmeasured_attributes"] = list(unmeasured)
    if found:
        out["unmeasured_fields"] = list(found)
    return out
