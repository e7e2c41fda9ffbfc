"""``faceplus reembed`` speed: faces re-embedded per second, from stored landmarks and with ``--redetect``.

    OMP_NUM_THREADS=1 uv run python benchmarks/reembed_speed.py [--faces 60] [--data ../shared/data]

Builds a temporary data folder (embedded SQLite store) of ``--faces`` faces of lfw-dev photos (the first photo
of each person folder, name order) detected and embedded with dlib's ResNet fp32 (crops kept, as detect keeps
them), then re-embeds it to the int8 ResNet (``resnet-int8``: another model id), once aligned on the stored
landmarks (the default) and once with ``--redetect``, each on a fresh copy of the folder. Models are loaded
before the clock starts. Prints faces/s for each and their ratio (same machine, same run), and the largest
distance between a face's vector re-embedded from its crop and the int8 model's vector of the whole photo.
The machine may be loaded by other work: compare the ratio, not raw rates, across runs.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceplus.crops import make_crop
from faceplus.engine import Engine
from faceplus.settings import EngineSettings
from faceplus.store import FaceRecord
from faceplus.store.sqlite import SQLiteStore
from faceplus.tools.reembed import Reembedder


def build(folder: Path, engine: Engine, photos: list[Path]) -> None:
    store = SQLiteStore.in_folder(folder)
    records = []
    for n, photo in enumerate(photos):
        image = engine.load(str(photo))
        faces = engine.detect(image)
        if faces:
            face = faces[0]
            crop = make_crop(image, face)
            records.append(
                FaceRecord(
                    "t",
                    f"f{n:05d}",
                    face.embedding,
                    face.box.to_facepp(),
                    "img",
                    time.time(),
                    crop=crop,
                    model=engine.model_id,
                )
            )
    store.faces.add(records)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=60)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    folders = sorted(p for p in (args.data / "lfw-dev").iterdir() if p.is_dir())
    photos = [sorted(f.glob("*.jpg"))[0] for f in folders[: args.faces]]
    settings = EngineSettings.from_env()
    old = Engine(replace(settings, embedder="resnet"))
    new = Engine(replace(settings, embedder="resnet-int8"))
    new.main_face(str(photos[0]))  # load the models before timing
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        build(base, old, photos)
        rates = {}
        for label, redetect in (("stored landmarks", False), ("--redetect", True)):
            folder = Path(tmp) / label.strip("-").replace(" ", "_")
            shutil.copytree(base, folder)
            store = SQLiteStore.in_folder(folder)
            report = Reembedder(store, new, progress=False, redetect=redetect).run()
            rates[label] = report.rate
            worst = 0.0
            if not redetect:
                faces = {f.face_token: f for batch in store.faces.iter_all() for f in batch}
                for n, photo in enumerate(photos[:20]):
                    face = faces.get(f"f{n:05d}")
                    if face is not None:
                        whole = new.main_face(str(photo)).embedding
                        worst = max(worst, float(np.linalg.norm(face.embedding - whole)))
            store.close()
            extra = f"; largest distance to the whole photo's vector (20 faces): {worst:.6f}" if not redetect else ""
            print(
                f"{label:>17}: {report.reembedded} faces in {report.seconds:.2f} s = {report.rate:.1f} faces/s{extra}"
            )
        print(f"ratio stored landmarks / --redetect: {rates['stored landmarks'] / rates['--redetect']:.2f}x")


if __name__ == "__main__":
    main()
