"""An acknowledged async FaceAlbum task finishes even when its first run is cut short (kill -9), on both stores.

The first run of addimageasync is cut (a BaseException the task runner does not catch, as a killed process
records nothing) either while the engine reads the image or after the faces were added but before the outcome
was recorded. Its lease lapses and a worker takes the task over, as after a restart. Before, the first run had
already deleted the upload, so the rerun reported ``IMAGE_ERROR_UNSUPPORTED_FORMAT`` for a valid photo; now the
upload goes with the recorded outcome, the rerun succeeds, a face added by the cut run is not added twice, and
the upload is gone once the task is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import faceplus.api.services.facealbums.images as album_images
import faceplus.api.services.tasks as tasks

from .conftest import Api
from .test_api_facealbum import ok

LEASE_S = 0.5


class Cut(BaseException):
    """The process dying mid-task: nothing after this point runs or is recorded."""


@pytest.fixture(scope="module")
def album_api(make_api: Callable[..., Api]) -> Api:
    built = make_api(maintain_interval_s=3600)  # the test takes lapsed tasks over itself
    built.add_key("a")
    return built


def take_over(api: Api, task_id: str) -> dict:
    """Wait for the cut run's lease to lapse, take the task over as a restarted worker does, wait for it."""
    assert api.ctx.tasks.wait_idle(60)
    time.sleep(LEASE_S + 0.2)
    assert api.ctx.tasks.reclaim() == 1
    assert api.ctx.tasks.wait_idle(120)
    return ok(api, "addimagetaskquery", task_id=task_id)


@pytest.mark.parametrize("cut_at", ["detect", "finish"])
def test_cut_async_addimage_finishes_when_taken_over(
    album_api: Api, lfw_people, monkeypatch: pytest.MonkeyPatch, cut_at: str
) -> None:
    api = album_api
    album = ok(api, "createalbum")["facealbum_token"]
    photo = lfw_people[5][1][0].read_bytes()
    monkeypatch.setattr(tasks, "TASK_LEASE_S", LEASE_S)
    if cut_at == "detect":

        def cut_detect(*args: object, **kwargs: object) -> None:
            raise Cut

        monkeypatch.setattr(album_images, "detect_faces", cut_detect)
    else:
        real_finish = api.ctx.store.tasks.finish

        def cut_finish(*args: object, **kwargs: object) -> None:
            raise Cut

        monkeypatch.setattr(api.ctx.store.tasks, "finish", cut_finish)
    task_id = ok(api, "addimageasync", files={"image_file": photo}, facealbum_token=album)["task_id"]
    assert api.ctx.tasks.wait_idle(120)
    assert ok(api, "addimagetaskquery", task_id=task_id)["status"] == 0  # acknowledged, not finished
    cut_faces = ok(api, "getalbumdetail", facealbum_token=album)["faces"]
    assert len(cut_faces) == (1 if cut_at == "finish" else 0)
    monkeypatch.undo()
    monkeypatch.setattr(tasks, "TASK_LEASE_S", LEASE_S)
    if cut_at == "finish":
        assert api.ctx.store.tasks.finish == real_finish

    done = take_over(api, task_id)
    assert done["status"] == 1, done
    assert len(done["faces"]) == 1
    faces = ok(api, "getalbumdetail", facealbum_token=album)["faces"]
    assert [f["face_token"] for f in faces] == [done["faces"][0]["face_token"]]  # once, not twice
    if cut_at == "finish":
        assert faces[0]["face_token"] == cut_faces[0]["face_token"]
    upload_id = api.ctx.store.tasks.get(api.keys["a"]["api_key"], task_id).params["upload_id"]
    assert api.ctx.store.albums.get_upload(api.keys["a"]["api_key"], upload_id) is None  # gone with the outcome
