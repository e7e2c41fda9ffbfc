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
    # compare and search score in the serving process: an engine with the chosen calibration (models load lazily)
    chosen = Engine(replace(engine.settings, compare_calibration=request.param))
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
            assert hit["confidence"] == pytest.approx(pair["confidence"], abs=1e-3)
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
    shipped = Engine(replace(api.ctx.engine.settings, compare_calibration="lfw")).match_calibration
    assert (body["thresholds"] == shipped.thresholds) == (chosen == "lfw")
    assert body["calibration"] == api.ctx.engine.match_calibration.calibrated_on
