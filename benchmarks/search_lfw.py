"""1:N search through the Face++ API on lfw-dev: top-1 accuracy of ``search`` over a FaceSet.

Every lfw-dev person with two or more photos (561) is enrolled with their first photo (detect ->
faceset/addface, the largest face); each person's second photo is then searched against the FaceSet.
A search is correct when the top result is that person's enrolled face. A person whose enrolment or
probe photo has no detected face counts as a miss. ``--distractors`` also enrols the first photo of
every single-photo person (1,347 more identities) to make the gallery harder.

    uv run python benchmarks/search_lfw.py [--data ../shared/data] [--distractors]

Runs the whole API in-process (FastAPI TestClient, a temporary data folder); ~1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.api.auth import new_key
from faceplus.settings import ServerSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--distractors", action="store_true", help="also enrol the single-photo people")
    args = parser.parse_args()
    root = args.data / "lfw-dev"
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    people = [name for name, files in photos.items() if len(files) >= 2]
    distractors = [name for name, files in photos.items() if len(files) == 1] if args.distractors else []

    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(data_dir=Path(tmp), rate_limit=0.0)
        with TestClient(create_app(settings)) as client:
            record, secret = new_key("bench")
            client.app.state.ctx.store.keys.add(record)  # type: ignore[attr-defined]
            auth = {"api_key": record.api_key, "api_secret": secret}

            def post(route: str, files: dict | None = None, **fields: str) -> dict:
                r = client.post(f"/facepp/v3/{route}", data={**auth, **fields}, files=files)
                assert r.status_code == 200, (route, r.text)
                return r.json()

            post("faceset/create", outer_id="lfw", display_name="lfw-dev")
            start = time.perf_counter()
            enrolled: dict[str, str] = {}  # face_token -> person
            batch: list[str] = []
            no_face_enrol = 0
            for name in people + distractors:
                faces = post("detect", files={"image_file": photos[name][0].read_bytes()})["faces"]
                if not faces:
                    no_face_enrol += 1
                    continue
                enrolled[faces[0]["face_token"]] = name
                batch.append(faces[0]["face_token"])
                if len(batch) == 5:
                    post("faceset/addface", outer_id="lfw", face_tokens=",".join(batch))
                    batch = []
            if batch:
                post("faceset/addface", outer_id="lfw", face_tokens=",".join(batch))
            enrol_s = time.perf_counter() - start
            count = post("faceset/getdetail", outer_id="lfw")["face_count"]

            start = time.perf_counter()
            correct = no_face_probe = above_1e4 = 0
            for name in people:
                found = post("search", files={"image_file": photos[name][1].read_bytes()}, outer_id="lfw")
                if "results" not in found:
                    no_face_probe += 1
                    continue
                top = found["results"][0]
                if enrolled.get(top["face_token"]) == name:
                    correct += 1
                    above_1e4 += top["confidence"] >= found["thresholds"]["1e-4"]
            search_s = time.perf_counter() - start

    print(f"FaceSet: {count} faces ({len(people)} people with 2+ photos, {len(distractors)} distractors)")
    print(f"no face found: {no_face_enrol} enrolment photos, {no_face_probe} probe photos (counted as misses)")
    print(f"enrolment {enrol_s:.0f} s, {len(people)} searches {search_s:.0f} s")
    print(f"top-1 accuracy: {correct}/{len(people)} = {100 * correct / len(people):.2f}%")
    print(f"correct and above the 1e-4 threshold: {above_1e4}/{len(people)} = {100 * above_1e4 / len(people):.2f}%")


if __name__ == "__main__":
    main()
