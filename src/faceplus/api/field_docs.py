"""What each form field means, in one place: the OpenAPI schema served at ``/docs`` reads it.

Each field is declared once, as a :class:`faceplus.api.fields.Field` (its name and kind), and each route lists
its fields in a :class:`faceplus.api.forms.Form` that both writes the route's OpenAPI entry and gates what the
route may parse (``IMAGE`` beside ``read_image``, ``ANALYSIS_FIELDS`` beside ``parse_analysis_params`` in
:mod:`faceplus.api.parsing`: declared by the code that reads them); the words come from here, so one field reads
the same on every route. A name without words here is an error when the route is declared (:func:`describe`
raises), so a new field cannot reach ``/docs`` undocumented.
"""

from __future__ import annotations

import re

#: The words of every form field, by name (numbered variants such as ``image_file1`` are described from their base).
FIELD_DOCS: dict[str, str] = {
    "api_key": "Your API key (faceplus keys create, or the console's Keys page). Query string or body.",
    "api_secret": "The API key's secret. Query string or body.",
    "image_file": "The photo, uploaded as a file (JPEG, PNG, BMP, GIF or WebP; at most the server's image_max_bytes, "
    "2 MB and 4096 px a side by default: shrink larger photos first). One of image_file, image_base64 or image_url.",
    "image_base64": "The photo as base64 text (the same limits as image_file).",
    "image_url": "A public http(s) address of the photo; private and loopback addresses are refused.",
    "return_landmark": "0 (default): no landmarks; 1: 83 points; 2: 106 points.",
    "return_attributes": "Comma-separated attribute names (gender, age, smiling, headpose, facequality, blur, "
    "eyestatus, emotion, mouthstatus, eyegaze, ...), or none (default). Names no model measures are listed in "
    "unmeasured_attributes.",
    "beauty_score_min": "Face++'s beauty range (0-100), accepted for compatibility; no model scores beauty.",
    "beauty_score_max": "Face++'s beauty range (0-100), accepted for compatibility; no model scores beauty.",
    "calculate_all": "1: landmarks and attributes for every face, not just the 5 largest (default 0).",
    "face_rectangle": "Use this box instead of detecting: top,left,width,height in pixels.",
    "face_token": "A face token from detect (valid 72 hours unless it belongs to a FaceSet).",
    "face_tokens": "Comma-separated face tokens.",
    "faceset_token": "The FaceSet's token (or give outer_id).",
    "outer_id": "Your own id of the FaceSet, at most 255 characters (or give faceset_token).",
    "new_outer_id": "The FaceSet's new outer_id.",
    "display_name": "A name to show (at most 256 characters, none of ^@,&=*'\").",
    "tags": "Comma-separated tags.",
    "user_data": "Your own data kept with the FaceSet (at most 16 KB).",
    "user_id": "Your own id of the person (at most 255 characters, none of ^@,&=*'\").",
    "force_merge": "1: add the face tokens to an existing FaceSet of the same outer_id instead of failing (default 0).",
    "return_result_count": "How many matches to return, 1-5 (default 1).",
    "check_empty": "1: refuse to delete a non-empty set; 0: delete it with its faces (FaceSet default 1, FaceAlbum "
    "default 0).",
    "start": "Paging: the position to start from (the previous reply's next).",
    "start_token": "Paging: the token to start from (the previous reply's next_token).",
    "task_id": "A task id from an asynchronous call.",
    "facealbum_token": "The FaceAlbum's token.",
    "image_id": "An image id from a previous reply.",
    "Image_id": "The same as image_id (the spelling FaceppSwift sends); image_id wins when both are given.",
    "callback_url": "Optional: an address told when the task has finished.",
    "operation_type": "groupface: incremental (new faces only) or refreshAll.",
    "group_id": "A group (person) id of the FaceAlbum.",
    "new_group_id": "The group the faces move to (a new id makes a new group).",
    "liveness_type": "meglive (the default): the user performs actions in front of the camera.",
    "comparison_type": "0 (the default): compare with the reference face given here.",
    "image_ref1": "The reference photo, uploaded as a file.",
    "image_base64_ref1": "The reference photo as base64 text.",
    "image_url_ref1": "A public address of the reference photo.",
    "face_token_ref1": "The reference face as a face token.",
    "action_count": "How many actions to ask for (default 3).",
    "expire_seconds": "How long the biz_token stays usable, 60-86400 s.",
    "biz_no": "Your own reference, echoed back.",
    "biz_token": "The biz_token from get_biz_token (used up by this call).",
    "video_file": "The capture as a video file (or frame_0 ... with timestamps).",
    "timestamps": "The frames' times in ms, comma-separated (with frame_0 ...).",
    "frame_0": "The first frame of the capture (then frame_1, ...), as image files.",
    "size": "The thumbnail's side in pixels.",
}

_NUMBERED = re.compile(r"^(?P<base>.+?)_?(?P<n>[12])$")
_WHICH = {"1": "first", "2": "second"}


def describe(name: str) -> str:
    """The words of field ``name``; ``image_file1`` / ``image_base64_2`` say which of the two faces."""
    if name in FIELD_DOCS:
        return FIELD_DOCS[name]
    numbered = _NUMBERED.match(name)
    if numbered and numbered["base"] in FIELD_DOCS:
        return f"The {_WHICH[numbered['n']]} face: {FIELD_DOCS[numbered['base']]}"
    raise KeyError(f"form field {name!r} has no description in faceplus.api.field_docs.FIELD_DOCS")
