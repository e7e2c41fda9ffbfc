"""The liveness page in Chromium with a fake camera: Chromium plays a Y4M file made from a bona fide capture built
from real LFW photos (docs/LIVENESS.md) as its webcam; the page prompts each action, records, and calls verify.

The server issues random challenges, so the test asks for tokens until one needs only the actions the photos can
show, builds the file for that challenge on the page's prompt schedule, and hands the token to the page as a
client app's server would (``liveness.html#biz_token=...&actions=...``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from .conftest import fake_camera, screenshot

PERSON = "Vladimir_Putin"
FPS = 10
LEAD_MS, PROMPT_MS = 800, 2600  # liveness.js's schedule
SIZE = (320, 240)


def _frame(rgb: np.ndarray) -> np.ndarray:
    """A 320x240 BGR camera frame of a 250x250 LFW photo (scaled to the height, padded at the sides)."""
    side = SIZE[1]
    face = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (side, side), interpolation=cv2.INTER_AREA)
    pad = (SIZE[0] - side) // 2
    return cv2.copyMakeBorder(face, 0, 0, pad, SIZE[0] - side - pad, cv2.BORDER_REPLICATE)


def write_y4m(path: Path, neutral: np.ndarray, peaks: dict[str, np.ndarray], actions: list[str]) -> None:
    """Neutral, then each action 400 ms into its prompt (blink 300 ms, others 500 ms), and a neutral tail."""
    timeline: list[np.ndarray] = []
    step = 1000 // FPS
    total = LEAD_MS + PROMPT_MS * len(actions) + 4000
    for t in range(0, total, step):
        shown = neutral
        k = (t - LEAD_MS) // PROMPT_MS
        if t >= LEAD_MS and k < len(actions):
            into = (t - LEAD_MS) % PROMPT_MS
            hold = 300 if actions[k] == "blink" else 500
            if 400 <= into < 400 + hold:
                shown = peaks[actions[k]]
        timeline.append(_frame(shown))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{SIZE[0]} H{SIZE[1]} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for bgr in timeline:
            out.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())


def test_liveness_page_with_a_fake_camera(browser, console_server, shared_data: Path, tmp_path: Path) -> None:
    from faceplus.engine import Engine
    from faceplus.evaluation.liveness import person_photos

    engine = Engine()
    photos = sorted((shared_data / "lfw-dev" / PERSON).glob("*.jpg"))[:12]
    person = person_photos(engine, PERSON, photos)
    assert person is not None
    keys = {"api_key": console_server["api_key"], "api_secret": console_server["api_secret"]}
    ok, ref = cv2.imencode(".jpg", cv2.cvtColor(person.neutral, cv2.COLOR_RGB2BGR))
    assert ok
    detected = httpx.post(
        console_server["base"] + "/facepp/v3/detect", data=keys, files={"image_file": ref.tobytes()}, timeout=120
    )
    reference = detected.json()["faces"][0]["face_token"]
    token = None
    for _ in range(80):  # 54 challenges; those of blink/turn_left/turn_right alone: 6 of them
        issued = httpx.post(
            console_server["base"] + "/faceid/v3/sdk/get_biz_token",
            data={**keys, "face_token_ref1": reference},
            timeout=60,
        ).json()
        if all(a in person.peaks for a in issued["actions"]):
            token = issued
            break
    if token is None:
        pytest.fail("no challenge the photos can perform in 80 tokens")
    y4m = tmp_path / "camera.y4m"
    write_y4m(y4m, person.neutral, person.peaks, token["actions"])

    with fake_camera(browser, y4m) as camera:
        tab = camera.new_context(viewport={"width": 1280, "height": 900}).new_page()
        tab.set_default_timeout(120_000)
        tab.goto(console_server["base"] + "/")
        tab.fill("#api-key", console_server["api_key"])
        tab.fill("#api-secret", console_server["api_secret"])
        tab.click("#signin-form button[type=submit]")
        tab.wait_for_selector("#page-detect:not([hidden])")
        tab.click("#nav a[href='liveness.html']")
        tab.wait_for_selector("#liveness-start")
        actions = ",".join(token["actions"])
        tab.goto(f"{console_server['base']}/liveness.html#biz_token={token['biz_token']}&actions={actions}")
        tab.click("#liveness-go")
        for action in token["actions"]:  # each prompt is shown in turn
            tab.wait_for_selector(f"#liveness-prompt[data-action='{action}']")
        tab.wait_for_selector("#liveness-result:not([data-result=''])")
        screenshot(tab, "liveness")
        result = tab.get_attribute("#liveness-result", "data-result")
        details = tab.text_content("#liveness-details")
        assert result == "PASS", (details, tab.text_content("#liveness-status"))
        reasons = [tab.get_attribute(f"#liveness-steps > li:nth-child({i + 1})", "data-reason") for i in range(3)]
        assert reasons == ["ok", "ok", "ok"]
        assert "same person as the reference" in details and "yes" in details
