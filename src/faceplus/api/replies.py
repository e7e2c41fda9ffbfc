"""Reply models of every Face++ route, written from Face++'s documented fields and types (Face++ v3 docs,
FaceID/FaceAlbum/Dense Landmark docs as mirrored in FaceppSwift's Codable structs; docs/API.md and docs/LANDMARKS.md
for what faceplus adds).

Why pydantic in strict mode: a number must be a JSON number (an int where Face++ gives an int, never a bool or a
string), a string a string. ``extra="allow"`` lets faceplus's documented extra fields through (unmeasured_attributes,
thresholds' calibration, ...). ``Optional`` only where Face++ documents a field as sometimes absent, and then
:class:`FaceppModel` insists it is ABSENT rather than ``null``, ``""`` or ``[]`` (``next`` on the last page).

Two uses, so the documentation cannot drift from the replies: ``/openapi.json`` (and ``/docs``) types each route's
reply with its model here (:mod:`faceplus.api.openapi_doc`), and the conformance test
(tests/api/test_api_schema.py) validates every reply a real server sends against the same model.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, model_validator

Number = StrictInt | StrictFloat


class FaceppModel(BaseModel):
    """Typed, strict, extra fields allowed; optional fields are absent, never null or empty."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    #: optional fields Face++ documents as present but possibly empty: "an empty array when nothing was found",
    #: or outer_id "" when the FaceSet has none
    EMPTY_OK: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _optional_absent_not_empty(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if field.is_required() or key not in data:
                continue
            value = data[key]
            if value is None or (value in ("", []) and key not in cls.EMPTY_OK):
                raise ValueError(f"{key!r} is documented as absent when there is nothing to send, got {value!r}")
        return data


class Reply(FaceppModel):
    """Every reply, success or error: a non-empty ``request_id`` and ``time_used`` in whole milliseconds."""

    request_id: StrictStr = Field(min_length=1)
    time_used: StrictInt = Field(ge=0)

    @model_validator(mode="after")
    def _success_has_no_error(self) -> Reply:
        if type(self) is not ErrorReply and "error_message" in (self.model_extra or {}):
            raise ValueError("a successful reply carries no error_message")
        return self


class ErrorReply(Reply):
    error_message: StrictStr = Field(min_length=1)


# -- detect / analyze / compare / search -------------------------------------------------------------------------


class FaceRectangle(FaceppModel):
    top: StrictInt = Field(ge=0)
    left: StrictInt = Field(ge=0)
    width: StrictInt = Field(ge=0)
    height: StrictInt = Field(ge=0)


class Point(FaceppModel):
    x: StrictInt
    y: StrictInt


class Value(FaceppModel):
    value: Number


class ValueThreshold(FaceppModel):
    value: Number
    threshold: Number


class Gender(FaceppModel):
    value: Literal["Male", "Female"]


class Age(FaceppModel):
    value: StrictInt = Field(ge=0)


class HeadPose(FaceppModel):
    pitch_angle: Number
    roll_angle: Number
    yaw_angle: Number


class Blur(FaceppModel):
    blurness: ValueThreshold
    motionblur: ValueThreshold
    gaussianblur: ValueThreshold


def _percent() -> Any:
    return Field(ge=0, le=100)


class EyeStatus(FaceppModel):
    no_glass_eye_open: Number = _percent()
    no_glass_eye_close: Number = _percent()
    normal_glass_eye_open: Number = _percent()
    normal_glass_eye_close: Number = _percent()
    dark_glasses: Number = _percent()
    occlusion: Number = _percent()


class EyesStatus(FaceppModel):
    left_eye_status: EyeStatus
    right_eye_status: EyeStatus


class Emotion(FaceppModel):
    anger: Number = _percent()
    disgust: Number = _percent()
    fear: Number = _percent()
    happiness: Number = _percent()
    neutral: Number = _percent()
    sadness: Number = _percent()
    surprise: Number = _percent()


class MouthStatus(FaceppModel):
    surgical_mask_or_respirator: Number = _percent()
    other_occlusion: Number = _percent()
    close: Number = _percent()
    open: Number = _percent()


class EyeGaze(FaceppModel):
    position_x_coordinate: Number
    position_y_coordinate: Number
    vector_x_component: Number
    vector_y_component: Number
    vector_z_component: Number


class EyesGaze(FaceppModel):
    left_eye_gaze: EyeGaze
    right_eye_gaze: EyeGaze


class Beauty(FaceppModel):
    male_score: Number
    female_score: Number


class SkinStatus(FaceppModel):
    health: Number
    stain: Number
    dark_circle: Number
    acne: Number


class Attributes(FaceppModel):
    """Each attribute is present only when asked for (``smiling`` is answered as ``smile``)."""

    gender: Gender | None = None
    age: Age | None = None
    smile: ValueThreshold | None = None
    headpose: HeadPose | None = None
    facequality: ValueThreshold | None = None
    blur: Blur | None = None
    eyestatus: EyesStatus | None = None
    emotion: Emotion | None = None
    ethnicity: Value | None = None
    beauty: Beauty | None = None
    mouthstatus: MouthStatus | None = None
    eyegaze: EyesGaze | None = None
    skinstatus: SkinStatus | None = None


class Face(FaceppModel):
    """A face of detect/analyze: ``landmark``/``attributes`` only when asked for."""

    face_token: StrictStr = Field(min_length=1)
    face_rectangle: FaceRectangle
    landmark: dict[str, Point] | None = None
    attributes: Attributes | None = None


class UnmeasuredMixin(FaceppModel):
    """faceplus's documented extra fields (docs/API.md "Attributes no model measures"): absent when empty."""

    unmeasured_attributes: list[StrictStr] | None = None
    unmeasured_fields: list[StrictStr] | None = None


class Detect(Reply, UnmeasuredMixin):
    image_id: StrictStr = Field(min_length=1)
    faces: list[Face]
    face_num: StrictInt = Field(ge=0)

    @model_validator(mode="after")
    def _count(self) -> Detect:
        if self.face_num != len(self.faces):
            raise ValueError("face_num != len(faces)")
        return self


class Analyze(Reply, UnmeasuredMixin):
    faces: list[Face]


class Thresholds(FaceppModel):
    e3: Number = Field(alias="1e-3")
    e4: Number = Field(alias="1e-4")
    e5: Number = Field(alias="1e-5")


class FoundFace(FaceppModel):
    face_token: StrictStr = Field(min_length=1)
    face_rectangle: FaceRectangle


class Compare(Reply):
    """``confidence``/``thresholds`` absent when either side has no face; image fields only for images."""

    EMPTY_OK = frozenset({"faces1", "faces2"})

    confidence: Number | None = Field(default=None, ge=0, le=100)
    thresholds: Thresholds | None = None
    image_id1: StrictStr | None = None
    image_id2: StrictStr | None = None
    faces1: list[FoundFace] | None = None
    faces2: list[FoundFace] | None = None


class SearchResult(FaceppModel):
    face_token: StrictStr = Field(min_length=1)
    confidence: Number = Field(ge=0, le=100)
    user_id: StrictStr  # "" when none was set (Face++)


class Search(Reply):
    EMPTY_OK = frozenset({"faces"})

    results: list[SearchResult] | None = None
    thresholds: Thresholds | None = None
    image_id: StrictStr | None = None
    faces: list[FoundFace] | None = None


# -- faceset/* and face/* ----------------------------------------------------------------------------------------


class Failure(FaceppModel):
    face_token: StrictStr
    reason: StrictStr = Field(min_length=1)


class FaceSetRef(Reply):
    """update and delete."""

    faceset_token: StrictStr = Field(min_length=1)
    outer_id: StrictStr  # "" when the FaceSet has none


class FaceSetAdd(FaceSetRef):
    """create and addface."""

    face_added: StrictInt = Field(ge=0)
    face_count: StrictInt = Field(ge=0)
    failure_detail: list[Failure]


class FaceSetRemove(FaceSetRef):
    face_removed: StrictInt = Field(ge=0)
    face_count: StrictInt = Field(ge=0)
    failure_detail: list[Failure]


class TaskId(Reply):
    task_id: StrictStr = Field(min_length=1)


class TaskStatus(Reply):
    """-1 failed (``task_failure_detail``), 0 running, 1 done (with the sync reply's fields)."""

    EMPTY_OK = frozenset({"outer_id", "failure_detail"})

    status: Literal[-1, 0, 1]
    faceset_token: StrictStr | None = None
    outer_id: StrictStr | None = None
    face_added: StrictInt | None = None
    face_removed: StrictInt | None = None
    face_count: StrictInt | None = None
    failure_detail: list[Failure] | None = None
    task_failure_detail: StrictStr | None = None

    @model_validator(mode="after")
    def _by_status(self) -> TaskStatus:
        if self.status == 1 and (
            self.faceset_token is None
            or self.face_count is None
            or (self.face_added is None) == (self.face_removed is None)
        ):
            raise ValueError("a finished task carries faceset_token, face_count and face_added or face_removed")
        if (self.status == -1) != (self.task_failure_detail is not None):
            raise ValueError("task_failure_detail exactly when status is -1")
        return self


class FaceSetSummary(FaceppModel):
    faceset_token: StrictStr = Field(min_length=1)
    outer_id: StrictStr
    display_name: StrictStr
    tags: StrictStr  # comma-separated, "" when none


class FaceSetDetail(Reply):
    faceset_token: StrictStr = Field(min_length=1)
    outer_id: StrictStr
    display_name: StrictStr
    user_data: StrictStr
    tags: StrictStr
    face_count: StrictInt = Field(ge=0)
    face_tokens: list[StrictStr]
    next: StrictStr | None = Field(default=None, pattern=r"^[1-9][0-9]*$")


class FaceSets(Reply):
    facesets: list[FaceSetSummary]
    next: StrictStr | None = Field(default=None, pattern=r"^[1-9][0-9]*$")


class FaceDetail(Reply):
    face_token: StrictStr = Field(min_length=1)
    user_id: StrictStr
    image_id: StrictStr
    face_rectangle: FaceRectangle
    facesets: list[FaceSetSummary]


class SetUserId(Reply):
    face_token: StrictStr = Field(min_length=1)
    user_id: StrictStr


class ErasedFaceSet(FaceppModel):
    faceset_token: StrictStr = Field(min_length=1)
    face_count: StrictInt = Field(ge=0)


class Erase(Reply):
    """faceplus extension (docs/SECURITY.md, routes_erasure.py): no Face++ counterpart."""

    face_erased: StrictInt = Field(ge=0)
    erased_face_tokens: list[StrictStr]
    facesets: list[ErasedFaceSet]
    failure_detail: list[Failure]


# -- dense landmarks ----------------------------------------------------------------------------------------------


class DenseFace(FaceppModel):
    """``landmark``: {part: {point name: {x, y}}}; the eyes also carry ``*_pupil_radius`` as an int."""

    landmark: dict[str, dict[str, Point | StrictInt]]
    face_rectangle: FaceRectangle

    @model_validator(mode="after")
    def _ints_only_for_radius(self) -> DenseFace:
        for part, points in self.landmark.items():
            for name, value in points.items():
                if isinstance(value, int) != name.endswith("_pupil_radius"):
                    raise ValueError(f"{part}.{name}: only the pupil radius is a bare int")
        return self


class ThousandLandmark(Reply):
    face: DenseFace | None = None  # absent when the image has no face


# -- FaceAlbum ----------------------------------------------------------------------------------------------------


GroupId = StrictStr


class AlbumToken(Reply):
    """createalbum, deletealbum."""

    facealbum_token: StrictStr = Field(min_length=1)


class AlbumTask(AlbumToken):
    """addimageasync, groupface, searchimage."""

    task_id: StrictStr = Field(min_length=1)


class AlbumRef(FaceppModel):
    facealbum_token: StrictStr = Field(min_length=1)


class FaceAlbums(Reply):
    facealbums: list[AlbumRef]
    next: StrictStr | None = Field(default=None, pattern=r"^[1-9][0-9]*$")


class AlbumFace(FaceppModel):
    face_token: StrictStr = Field(min_length=1)
    group_id: GroupId = Field(pattern=r"^(-1|0|[1-9][0-9]*)$")
    image_id: StrictStr = Field(min_length=1)
    face_rectangle: FaceRectangle


class AlbumDetail(AlbumToken):
    faces: list[AlbumFace]
    next_token: StrictStr | None = None


class AlbumFaceDetail(AlbumToken, AlbumFace):
    ungrouped_reason: StrictInt | None = Field(default=None, ge=0, le=5)

    @model_validator(mode="after")
    def _reason_only_when_ungrouped(self) -> AlbumFaceDetail:
        if (self.ungrouped_reason is not None) != (self.group_id == "0"):
            raise ValueError("ungrouped_reason exactly when group_id is '0'")
        return self


class AlbumImageDetail(AlbumToken):
    image_id: StrictStr = Field(min_length=1)
    face_tokens: StrictStr = Field(min_length=1)  # comma-separated


class AddedFace(FaceppModel):
    face_token: StrictStr = Field(min_length=1)
    face_rectangle: FaceRectangle


class AddImage(AlbumToken):
    image_id: StrictStr = Field(min_length=1)
    faces: list[AddedFace]


class GroupResult(FaceppModel):
    group_id: GroupId = Field(pattern=r"^(-1|0|[1-9][0-9]*)$")
    face_token: StrictStr = Field(min_length=1)
    ungrouped_reason: StrictInt | None = Field(default=None, ge=0, le=5)


class AlbumSearchResult(FaceppModel):
    face_rectangle: FaceRectangle
    image_id_set: StrictStr  # comma-separated image ids, "" when nothing matches (documented)
    group_id: GroupId | None = None


class AlbumTaskQuery(AlbumToken):
    """The three task queries: status, then the task's result fields, or task_failure_message on -1."""

    EMPTY_OK = frozenset({"faces", "group_result", "search_result"})

    task_id: StrictStr = Field(min_length=1)
    status: Literal[-1, 0, 1]
    image_id: StrictStr | None = None
    faces: list[AddedFace] | None = None
    group_result: list[GroupResult] | None = None
    search_result: list[AlbumSearchResult] | None = None
    task_failure_message: StrictStr | None = None

    @model_validator(mode="after")
    def _failure_by_status(self) -> AlbumTaskQuery:
        if (self.status == -1) != (self.task_failure_message is not None):
            raise ValueError("task_failure_message exactly when status is -1")
        return self


class CandidateGroup(FaceppModel):
    group_id: GroupId = Field(pattern=r"^[1-9][0-9]*$")
    similarity: Number = Field(ge=0, le=100)


class FindCandidate(AlbumToken):
    candidate_groups: list[CandidateGroup]


class UpdateFace(AlbumToken):
    face_tokens_success: StrictStr  # comma-separated, "" when none changed
    failure_detail: list[Failure]
    group_id: GroupId | None = None  # only with new_group_id=CreateNewGroup


class DeleteFace(AlbumToken):
    face_removed_count: StrictInt = Field(ge=0)
    face_removed_detail: list[StrictStr]
    face_failure_detail: list[Failure]


# -- FaceID liveness (faceplus's open variant, docs/LIVENESS.md) ---------------------------------------------------


class BizToken(Reply):
    biz_token: StrictStr = Field(min_length=1)
    actions: list[Literal["blink", "mouth", "turn_left", "turn_right", "nod"]] = Field(min_length=1)
    expire_time: StrictInt


class LivenessVerify(Reply):
    biz_token: StrictStr = Field(min_length=1)
    result: Literal["PASS", "FAIL"]
    result_message: StrictStr = Field(min_length=1)
    liveness: dict[str, Any]
    images: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None


#: route -> model of its successful reply
SCHEMAS: dict[str, type[Reply]] = {
    "/facepp/v3/detect": Detect,
    "/facepp/v3/compare": Compare,
    "/facepp/v3/search": Search,
    "/facepp/v3/faceset/create": FaceSetAdd,
    "/facepp/v3/faceset/addface": FaceSetAdd,
    "/facepp/v3/faceset/removeface": FaceSetRemove,
    "/facepp/v3/faceset/async/addface": TaskId,
    "/facepp/v3/faceset/async/removeface": TaskId,
    "/facepp/v3/faceset/async/task_status": TaskStatus,
    "/facepp/v3/faceset/update": FaceSetRef,
    "/facepp/v3/faceset/getdetail": FaceSetDetail,
    "/facepp/v3/faceset/delete": FaceSetRef,
    "/facepp/v3/faceset/getfacesets": FaceSets,
    "/facepp/v3/face/analyze": Analyze,
    "/facepp/v3/face/getdetail": FaceDetail,
    "/facepp/v3/face/setuserid": SetUserId,
    "/facepp/v3/face/erase": Erase,
    "/facepp/v1/face/thousandlandmark": ThousandLandmark,
    "/imagepp/v1/facealbum/createalbum": AlbumToken,
    "/imagepp/v1/facealbum/deletealbum": AlbumToken,
    "/imagepp/v1/facealbum/getfacealbums": FaceAlbums,
    "/imagepp/v1/facealbum/getalbumdetail": AlbumDetail,
    "/imagepp/v1/facealbum/getfacedetail": AlbumFaceDetail,
    "/imagepp/v1/facealbum/getimagedetail": AlbumImageDetail,
    "/imagepp/v1/facealbum/addimage": AddImage,
    "/imagepp/v1/facealbum/addimageasync": AlbumTask,
    "/imagepp/v1/facealbum/groupface": AlbumTask,
    "/imagepp/v1/facealbum/searchimage": AlbumTask,
    "/imagepp/v1/facealbum/addimagetaskquery": AlbumTaskQuery,
    "/imagepp/v1/facealbum/groupfacetaskquery": AlbumTaskQuery,
    "/imagepp/v1/facealbum/searchimagetaskquery": AlbumTaskQuery,
    "/imagepp/v1/facealbum/findcandidate": FindCandidate,
    "/imagepp/v1/facealbum/updateface": UpdateFace,
    "/imagepp/v1/facealbum/deleteface": DeleteFace,
    "/faceid/v3/sdk/get_biz_token": BizToken,
    "/faceid/v3/sdk/verify": LivenessVerify,
}


def nulls(value: Any, path: str = "") -> list[str]:
    """Paths of every JSON null in a reply (Face++ never sends one; a strictly typed client fails on each)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []
