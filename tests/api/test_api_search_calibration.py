"""Search and compare score a pair of faces the same way, under whichever calibration the operator chose.

``FACEPLUS_COMPARE_CALIBRATION`` picks the thresholds compare uses (shipped LFW, cohort-normalised, or a file from
``faceplus calibrate``); search must report the same thresholds, the same ``calibration`` and, for a hit, the
confidence compare gives that same pair, or a bank's one policy would mean two things.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from faceplus.engine import Engine

from .conftest import Api


@pytest.fixture(scope="module", params=["lfw", "cohort"])
def calibrated_api(request: pytest.FixtureRequest, make_api, engine: Engine, backend: str) -> Api:  # noqa: ANN001
    # compare and search score in the serving process: an engine with the chosen calibration (models load lazily);
    # the shipped cohort calibration is fit for dlib's ResNet, so it runs with that model
    embedder = "resnet" if request.param == "cohort" else engine.settings.embedder
    chosen = Engine(replace(engine.settings, compare_calibration=request.param, embedder=embedder))
    api = make_api()
    api.ctx.engine = chosen
    api.add_key("a")
    return api


def test_search_and_compare_agree(calibrated_api: Api, lfw_people) -> None:
    api = calibrated_api
    people = lfw_people[20:25]  # faceset/create takes at most 5 tokens
    enrolled = [api.detect_token(photos[0]) for _, photos in people]
    api.ok("faceset/create", outer_id="cal", face_tokens=",".join(enrolled))
    for _, photos in people[:3]:
        probe = api.detect_token(photos[1])
        body = api.ok("search", outer_id="cal", face_token=probe, return_result_count=3)
        for hit in body["results"]:
            pair = api.ok("compare", face_token1=probe, face_token2=hit["face_token"])
            assert hit["confidence"] == pair["confidence"]  # one scoring path (Engine.confidences): equal
            assert body["thresholds"] == pair["thresholds"]
            assert body["calibration"] == pair["calibration"]
        assert [r["confidence"] for r in body["results"]] == sorted(
            (r["confidence"] for r in body["results"]), reverse=True
        )


def test_the_cohort_calibration_is_the_one_reported(calibrated_api: Api, lfw_people) -> None:
    api = calibrated_api
    chosen = api.ctx.engine.settings.compare_calibration
    photos = lfw_people[30][1]
    api.ok("faceset/create", outer_id="which", face_tokens=api.detect_token(photos[0]))
    body = api.ok("search", outer_id="which", face_token=api.detect_token(photos[1]))
    shipped = Engine(replace(api.ctx.engine.settings, compare_calibration="lfw")).calibration
    assert (body["thresholds"] == shipped.thresholds) == (chosen == "lfw")
    assert body["calibration"] == api.ctx.engine.calibration.calibrated_on


def _album_ok(api: Api, route: str, files: dict | None = None, **fields: str) -> dict:
    r = api.client.post(f"/imagepp/v1/facealbum/{route}", data={**fields, **api.keys["a"]}, files=files)
    assert r.status_code == 200, (route, r.text)
    return r.json()


def test_facealbum_groups_at_the_operators_calibration(make_api, engine: Engine, lfw_people, tmp_path) -> None:  # noqa: ANN001
    """An operator's raw recalibration moves FaceAlbum's link distance with compare's thresholds; a cohort-normalised
    one (thresholds on another scale) leaves grouping at the shipped raw calibration."""
    from faceplus.calibration import Calibration, default_calibration
    from faceplus.tools.clustering import DEFAULT_FAR, link_calibration

    shipped = default_calibration()
    strict = Calibration(  # an operator whose "1e-3" sits far below any two photos of one person
        shipped.midpoint, shipped.scale, {far: 0.05 for far in shipped.threshold_distances}, {"calibrated_on": "test"}
    )
    strict.save(tmp_path / "strict.json")
    resnet_cohort = Engine(replace(engine.settings, embedder="resnet", compare_calibration="cohort"))
    assert link_calibration(resnet_cohort.calibration) == default_calibration("resnet")
    photos = next(photos for _, photos in lfw_people if len(photos) >= 2)[:2]
    grouped = {}
    for setting in ("lfw", str(tmp_path / "strict.json")):
        api = make_api()
        api.ctx.engine = Engine(replace(engine.settings, compare_calibration=setting))
        api.add_key("a")
        assert link_calibration(api.ctx.engine.calibration).threshold_distances[DEFAULT_FAR] == (
            0.05 if setting != "lfw" else shipped.threshold_distances[DEFAULT_FAR]
        )
        album = _album_ok(api, "createalbum")["facealbum_token"]
        for photo in photos:
            _album_ok(api, "addimage", files={"image_file": photo.read_bytes()}, facealbum_token=album)
        task = _album_ok(api, "groupface", facealbum_token=album)["task_id"]
        assert api.ctx.tasks.wait_idle(120)
        result = _album_ok(api, "groupfacetaskquery", task_id=task)["group_result"]
        grouped[setting] = len({r["group_id"] for r in result}) == 1 and result[0]["group_id"] != "0"
    assert grouped == {"lfw": True, str(tmp_path / "strict.json"): False}
