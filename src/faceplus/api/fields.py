"""Form fields, each declared once as a :class:`Field`: a route's :class:`faceplus.api.forms.Form` lists the Field
objects (its OpenAPI entry is written from them) and the handler reads the same objects
(:class:`faceplus.api.forms.Params` takes a Field, never a bare name, so mypy refuses a read by a spelled-out name).

The fields several modules read are here; a field one route reads is declared beside that route. What a field means
is in :mod:`faceplus.api.field_docs`, by name. No web framework: image intake and the services' helpers use these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a field is sent and documented: text, an integer (sent as text), or an uploaded file.
Kind = Literal["string", "integer", "binary"]


@dataclass(frozen=True)
class Field:
    """One form field: its name on the wire and its kind."""

    name: str
    kind: Kind = "string"

    def numbered(self, suffix: str) -> Field:
        """The same field for one side of compare: ``face_token1``, ``face_rectangle2``."""
        return Field(f"{self.name}{suffix}", self.kind)


API_KEY = Field("api_key")
API_SECRET = Field("api_secret")
#: The sign-in fields: one value each per request, wherever they are sent (query string or body).
CREDENTIALS = (API_KEY, API_SECRET)

FACE_TOKEN = Field("face_token")
FACE_TOKENS = Field("face_tokens")
FACE_RECTANGLE = Field("face_rectangle")
FACESET_TOKEN = Field("faceset_token")
OUTER_ID = Field("outer_id")
USER_ID = Field("user_id")
DISPLAY_NAME = Field("display_name")
USER_DATA = Field("user_data")
TAGS = Field("tags")
TASK_ID = Field("task_id")
START = Field("start", "integer")
CHECK_EMPTY = Field("check_empty", "integer")
IMAGE_ID = Field("image_id")
CALLBACK_URL = Field("callback_url")
