"""FaceAlbum grouping quality through the Face++ API on lfw-dev: pairwise and BCubed F1 against the folder names.

The subset is the one ``faceplus cluster --eval`` scores (every photo of the people with two or more photos;
the largest face of each photo), cut to the first ``--people`` such people in name order to fit a time budget.
Two runs through ``/imagepp/v1/facealbum``:

* one-shot: addimage every photo, one ``groupface``;
* incremental: addimage the first half of each person's photos, ``groupface``, then the rest and
  ``groupface`` again (operation_type=incremental): existing groups are kept and new faces join them.

A face the album leaves ungrouped ("0") counts as a cluster of its own. Next to them, the clustering the
``faceplus cluster --eval`` command runs (:func:`faceplus.tools.clustering.run_clustering`, average linkage at
FAR 1e-3) on the same faces' embeddings, read back from the album.

    uv run python benchmarks/facealbum_lfw.py [--data ../shared/data] [--people 60]

Runs the whole API in-process (FastAPI TestClient, a temporary data folder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.api.auth import new_key
from faceplus.calibration import default_calibration
from faceplus.settings import ServerSettings
from faceplus.tools.clustering import DEFAULT_FAR, FaceItem, run_clustering, score_clusters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--people", type=int, default=60, help="first N people with 2+ photos (0: all 561)")
    args = parser.parse_args()
    root = args.data / "lfw-dev"
    photos = {p.name: sorted(p.glob("*.jpg")) for p in sorted(root.iterdir()) if p.is_dir()}
    people = [name for name, files in photos.items() if len(files) >= 2]
    if args.people:
        people = people[: args.people]
    print(f"lfw-dev: {len(people)} people with 2+ photos, {sum(len(photos[n]) for n in people)} photos")

    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(data_dir=Path(tmp), rate_limit=0.0)
        with TestClient(create_app(settings)) as client:
            ctx = client.app.state.ctx  # type: ignore[attr-defined]
            record, secret = new_key("bench")
            ctx.store.keys.add(record)
            auth = {"api_key": record.api_key, "api_secret": secret}

            def post(route: str, files: dict | None = None, **fields: str) -> dict[str, Any]:
                r = client.post(f"/imagepp/v1/facealbum/{route}", data={**auth, **fields}, files=files)
                assert r.status_code == 200, (route, r.text)
                return r.json()

            def add(album: str, batch: list[tuple[str, Path]], main: dict[str, str]) -> int:
                missed = 0
                for name, photo in batch:
                    faces = post("addimage", files={"image_file": photo.read_bytes()}, facealbum_token=album)["faces"]
                    if faces:
                        main[faces[0]["face_token"]] = name  # largest face first
                    else:
                        missed += 1
                return missed

            def group(album: str, mode: str) -> tuple[dict[str, str], float]:
                start = time.perf_counter()
                task = post("groupface", facealbum_token=album, operation_type=mode)["task_id"]
                ctx.tasks.wait_idle()
                body = post("groupfacetaskquery", task_id=task)
                assert body["status"] == 1, body
                return {g["face_token"]: g["group_id"] for g in body["group_result"]}, time.perf_counter() - start

            def score(main: dict[str, str], groups: dict[str, str]) -> Any:
                tokens = list(main)
                labels = [groups[t] if groups[t] not in ("0", "-1") else f"alone-{t}" for t in tokens]
                return score_clusters(labels, [main[t] for t in tokens])

            everything = [(name, photo) for name in people for photo in photos[name]]
            # one-shot
            album = post("createalbum")["facealbum_token"]
            main: dict[str, str] = {}
            start = time.perf_counter()
            missed = add(album, everything, main)
            added_s = time.perf_counter() - start
            groups, group_s = group(album, "incremental")
            one_shot = score(main, groups)
            print(f"\naddimage: {len(everything)} photos in {added_s:.0f} s ({missed} without a face)")
            print(f"one-shot groupface ({group_s:.1f} s):")
            for line in one_shot.lines():
                print("  " + line)

            # the cluster command's rule on the same faces
            faces = {f.face_token: f for f in ctx.store.albums.faces(record.api_key, album, embeddings=True)}
            items = [FaceItem("", {}, faces[t].embedding, face_token=t, truth=n) for t, n in main.items()]
            direct = run_clustering(items, default_calibration(), DEFAULT_FAR, "average")
            reference = score_clusters(direct.labels.tolist(), [it.truth for it in items])
            print("faceplus cluster --eval's clustering (average linkage, FAR 1e-3) on the same faces:")
            for line in reference.lines():
                print("  " + line)

            # incremental: half, group, the rest, group again
            album2 = post("createalbum")["facealbum_token"]
            first = [(n, p) for n in people for p in photos[n][: (len(photos[n]) + 1) // 2]]
            rest = [(n, p) for n in people for p in photos[n][(len(photos[n]) + 1) // 2 :]]
            main2: dict[str, str] = {}
            add(album2, first, main2)
            before, _ = group(album2, "incremental")
            add(album2, rest, main2)
            after, _ = group(album2, "incremental")
            kept = sum(after[t] == g for t, g in before.items() if g not in ("0", "-1"))
            grouped_before = sum(g not in ("0", "-1") for g in before.values())
            incremental = score(main2, after)
            print(f"incremental ({len(first)} photos, groupface, {len(rest)} more, groupface):")
            print(f"  grouped faces keeping their group id: {kept}/{grouped_before}")
            for line in incremental.lines():
                print("  " + line)
            print(
                f"\npairwise F1: one-shot {one_shot.pairwise_f1:.4f}, incremental {incremental.pairwise_f1:.4f}, "
                f"cluster rule on the same faces {reference.pairwise_f1:.4f}"
            )


if __name__ == "__main__":
    main()
