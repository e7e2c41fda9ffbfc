"""``faceplus cluster``: group faces by person without labels (Face++'s face album, Azure's Group).

Faces are linked by the calibrated L2 distance between their unit-length embeddings: two faces
closer than the distance of a chosen false-accept rate (:func:`link_calibration`'s ``threshold_distances``)
are "the same person" by the engine's own 1:1 rule. Three ways to turn those links into groups:

* ``average`` (default): average-linkage agglomerative clustering (nearest-neighbour chain, exact,
  O(N^2) memory: up to :data:`AVERAGE_MAX` faces), cut at the threshold. Two groups join when their
  faces are close *on average*, so one look-alike pair cannot chain two people together.
* ``components``: connected components of the link graph (single linkage: chains easily).
* ``whispers``: Chinese whispers on the link graph (what dlib's examples use); scales to any size.

Which rule and threshold to default to was measured on lfw-dev (docs/TOOLS.md).
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceplus.calibration import Calibration, shipped_calibration_for

#: Largest N for exact average linkage (an N x N float32 matrix: 10,000 faces = 400 MB).
AVERAGE_MAX = 10_000
#: Default rule and false-accept rate, chosen on lfw-dev (docs/TOOLS.md).
DEFAULT_METHOD = "average"
DEFAULT_FAR = "1e-3"


# -- clustering ----------------------------------------------------------------------------------
def link_calibration(compare: Calibration) -> Calibration:
    """The calibration whose raw L2 distances grouping cuts at (``faceplus cluster``, FaceAlbum grouping and search).

    ``compare`` is the calibration compare scores with (``FACEPLUS_COMPARE_CALIBRATION``): an operator's own raw
    recalibration (``faceplus calibrate --out``) moves the cut with compare's thresholds. A cohort-normalised
    calibration's thresholds are on the normalised scale, not raw distances, so grouping keeps the shipped
    lfw-dev calibration of the model it was fit for then (docs/TOOLS.md).
    """
    return shipped_calibration_for(compare) if compare.normalization is not None else compare


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def _labels_from_unions(n: int, pairs: Sequence[tuple[int, int]] | np.ndarray) -> np.ndarray:
    """Cluster labels 0..k-1 (largest cluster first) from the pairs that must share a cluster."""
    parent = np.arange(n)
    for a, b in pairs:
        ra, rb = _find(parent, int(a)), _find(parent, int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([_find(parent, i) for i in range(n)])
    return _relabel(roots)


def _relabel(raw: np.ndarray) -> np.ndarray:
    """Labels renumbered by decreasing cluster size (ties: first appearance)."""
    counts = Counter(raw.tolist())
    first: dict[int, int] = {}
    for i, r in enumerate(raw.tolist()):
        first.setdefault(r, i)
    order = sorted(counts, key=lambda r: (-counts[r], first[r]))
    mapping = {r: k for k, r in enumerate(order)}
    return np.array([mapping[r] for r in raw.tolist()], dtype=np.int64)


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Full L2 distance matrix of row vectors (float32)."""
    x = np.asarray(x, np.float32)
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * (x @ x.T)
    np.maximum(d2, 0, out=d2)
    return np.asarray(np.sqrt(d2, out=d2))


def average_linkage(x: np.ndarray) -> list[tuple[int, int, float]]:
    """The full average-linkage dendrogram as merges ``(slot a, slot b, height)`` (nearest-neighbour chain).

    Slot ``a`` holds the merged cluster afterwards. Average linkage has no inversions, so cutting the
    dendrogram at ``t`` = applying the merges with height <= t.
    """
    n = len(x)
    if n > AVERAGE_MAX:
        raise ValueError(f"average linkage is limited to {AVERAGE_MAX} faces (use --method whispers)")
    d = pairwise_distances(x).astype(np.float64)
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    active = np.ones(n, bool)
    merges: list[tuple[int, int, float]] = []
    chain: list[int] = []
    remaining = n
    while remaining > 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        row = d[a]
        b = int(np.argmin(row))
        if len(chain) > 1 and row[chain[-2]] <= row[b]:
            b = chain[-2]
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            height = float(d[a, b])
            merged = (size[a] * d[a] + size[b] * d[b]) / (size[a] + size[b])
            d[a], d[:, a] = merged, merged
            d[b], d[:, b] = np.inf, np.inf
            d[a, a] = np.inf
            size[a] += size[b]
            active[b] = False
            remaining -= 1
            merges.append((a, b, height))
        else:
            chain.append(b)
    return merges


def link_edges(x: np.ndarray, threshold: float, k: int = 40) -> np.ndarray:
    """Pairs ``(i, j, distance)`` with i < j closer than ``threshold``: exact in blocks, or HNSW k-NN when large."""
    x = np.asarray(x, np.float32)
    n = len(x)
    rows: list[np.ndarray] = []
    if n <= AVERAGE_MAX:
        for start in range(0, n, 2048):
            block = pairwise_distances_block(x[start : start + 2048], x)
            i, j = np.nonzero(block < threshold)
            i = i + start
            keep = i < j
            rows.append(np.stack([i[keep], j[keep], block[i[keep] - start, j[keep]]], 1))
    else:
        import faiss

        index = faiss.IndexHNSWFlat(x.shape[1], 32)
        index.hnsw.efSearch = max(64, k)
        index.add(x)
        dist2, nbr = index.search(x, k + 1)
        i = np.repeat(np.arange(n), k + 1)
        j, dist = nbr.reshape(-1), np.sqrt(np.maximum(dist2.reshape(-1), 0))
        keep = (j >= 0) & (i != j) & (dist < threshold)
        a, b = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
        pairs = np.unique(np.stack([a, b], 1), axis=0)
        dd = np.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1)
        rows.append(np.concatenate([pairs.astype(np.float64), dd[:, None]], 1))
    return np.concatenate(rows) if rows else np.zeros((0, 3))


def pairwise_distances_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return np.asarray(np.sqrt(np.maximum(d2, 0)))


def chinese_whispers(n: int, edges: np.ndarray, threshold: float, iterations: int = 30, seed: int = 0) -> np.ndarray:
    """Chinese whispers: each face repeatedly takes the label most of its (closer = heavier) links carry."""
    neighbours: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, dist in edges:
        w = 1.0 - float(dist) / threshold + 1e-6
        neighbours[int(i)].append((int(j), w))
        neighbours[int(j)].append((int(i), w))
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = 0
        for i in rng.permutation(n):
            if not neighbours[i]:
                continue
            votes: dict[int, float] = defaultdict(float)
            for j, w in neighbours[i]:
                votes[int(labels[j])] += w
            best = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if not changed:
            break
    return _relabel(labels)


def cluster_embeddings(x: np.ndarray, threshold: float, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Cluster labels (0 = largest cluster) for unit-length embeddings, linking at ``threshold`` (L2)."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    if method == "average" and n > AVERAGE_MAX:
        method = "whispers"
    if method == "average":
        merges = average_linkage(x)
        return _labels_from_unions(n, [(a, b) for a, b, h in merges if h <= threshold])
    edges = link_edges(x, threshold)
    if method == "components":
        return _labels_from_unions(n, edges[:, :2].astype(np.int64))
    if method == "whispers":
        return chinese_whispers(n, edges, threshold)
    raise ValueError(f"unknown clustering method {method!r}")


# -- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterScores:
    """Pairwise and BCubed precision/recall/F1 of predicted clusters against true identities."""

    pairwise_p: float
    pairwise_r: float
    pairwise_f1: float
    bcubed_p: float
    bcubed_r: float
    bcubed_f1: float
    items: int
    identities: int
    clusters: int

    def lines(self) -> list[str]:
        return [
            f"faces: {self.items}, true identities: {self.identities}, clusters found: {self.clusters}",
            f"pairwise  precision {self.pairwise_p:.4f}  recall {self.pairwise_r:.4f}  F1 {self.pairwise_f1:.4f}",
            f"BCubed    precision {self.bcubed_p:.4f}  recall {self.bcubed_r:.4f}  F1 {self.bcubed_f1:.4f}",
        ]


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_clusters(predicted: Sequence[int], truth: Sequence[Any]) -> ClusterScores:
    """Pairwise P/R/F1 (over all pairs of faces) and BCubed P/R/F1 (averaged over faces)."""
    pred = list(predicted)
    true = list(truth)
    joint = Counter(zip(pred, true, strict=True))
    by_pred, by_true = Counter(pred), Counter(true)

    def pairs(c: Counter[Any]) -> int:
        return sum(v * (v - 1) // 2 for v in c.values())

    same_both, same_pred, same_true = pairs(joint), pairs(by_pred), pairs(by_true)
    pp = same_both / same_pred if same_pred else 1.0
    pr = same_both / same_true if same_true else 1.0
    n = len(pred)
    bp = sum(joint[(p, t)] / by_pred[p] for p, t in zip(pred, true, strict=True)) / n if n else 0.0
    br = sum(joint[(p, t)] / by_true[t] for p, t in zip(pred, true, strict=True)) / n if n else 0.0
    return ClusterScores(pp, pr, _f1(pp, pr), bp, br, _f1(bp, br), n, len(by_true), len(by_pred))


# -- the faces to cluster ------------------------------------------------------------------------
@dataclass
class FaceItem:
    """One face to cluster: where it came from (for crops and truth) and its embedding."""

    image: str  # path ("" when unknown)
    rectangle: dict[str, int]
    embedding: np.ndarray
    face_token: str = ""
    truth: str = ""  # folder name or user_id
    number: int = 0  # 0 = the largest face of its image


@dataclass
class ClusterResult:
    items: list[FaceItem]
    labels: np.ndarray
    method: str
    far: str
    threshold: float
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def groups(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(int(self.labels.max()) + 1 if len(self.labels) else 0)]
        for i, label in enumerate(self.labels.tolist()):
            out[label].append(i)
        return out


def faces_from_folder(root: Path, engine: Any, workers: int = 1, progress: bool = True) -> list[FaceItem]:
    """Detect and embed every face of every image under ``root``; truth = the image's folder name."""
    from faceplus.errors import FaceplusError
    from faceplus.tools.indexing import image_files, user_id_for

    paths = image_files(root)
    items: list[FaceItem] = []
    for image, result in engine.detect_many(
        [str(p) for p in paths], workers=workers, progress=progress, landmarks=False
    ):
        if isinstance(result, FaceplusError):
            print(f"{image}: {result.error_message}", file=sys.stderr)
            continue
        for n, face in enumerate(result):
            if face.embedding is None:
                continue
            truth = user_id_for(root, Path(image))
            items.append(FaceItem(str(image), face.box.to_facepp(), face.embedding, truth=truth, number=n))
    return items


def faces_from_faceset(
    store: Any, ledger: Any, tenant: str, outer_id: str, model: str | None = None
) -> tuple[list[FaceItem], str]:
    """The FaceSet's faces with their user_ids (truth) and, where ``faceplus index`` put them there, their image.

    ``model``: the engine's identity model, whose calibration links the faces; a FaceSet of another is refused."""
    faceset = store.facesets.get(tenant, outer_id=outer_id)
    if faceset is None:
        raise SystemExit(f"no FaceSet with outer_id {outer_id!r} for tenant {tenant}")
    vectors = store.facesets.vectors(tenant, faceset.faceset_token)
    if model is not None and vectors.model != model:
        raise SystemExit(
            f"FaceSet {outer_id!r} holds embeddings of {vectors.model}, this engine runs {model}: "
            "run `faceplus reembed` first"
        )
    sources = ledger.sources(tenant, faceset.faceset_token)
    records: dict[str, Any] = {}
    for start in range(0, len(vectors.tokens), 500):
        records.update(store.faces.get(tenant, vectors.tokens[start : start + 500], 0.0))
    items = []
    for token, vector in zip(vectors.tokens, vectors.vectors, strict=True):
        record = records.get(token)
        path, number = sources.get(token, ("", 0))
        items.append(
            FaceItem(
                image=path,
                rectangle=record.face_rectangle if record else {},
                embedding=vector,
                face_token=token,
                truth=record.user_id if record else "",
                number=number,
            )
        )
    return items, faceset.faceset_token


def eval_subset(items: list[FaceItem], min_per_person: int = 2) -> list[FaceItem]:
    """For scoring: the largest face of each image, of people (truth) with ``min_per_person``+ images."""
    main = [it for it in items if it.number == 0 and it.truth]
    counts = Counter(it.truth for it in main)
    return [it for it in main if counts[it.truth] >= min_per_person]


def run_clustering(items: list[FaceItem], engine_calibration: Any, far: str, method: str) -> ClusterResult:
    threshold = float(engine_calibration.threshold_distances[far])
    start = time.perf_counter()
    x = np.stack([it.embedding for it in items]).astype(np.float32) if items else np.zeros((0, 128), np.float32)
    labels = cluster_embeddings(x, threshold, method)
    return ClusterResult(items, labels, method, far, threshold, time.perf_counter() - start)


# -- the report ----------------------------------------------------------------------------------
def crop_data_uri(image: str, rect: dict[str, int], side: int = 72) -> str:
    """A small JPEG of the face (with a margin) as a data: URI, or "" when the image cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(image) as im:
            rgb = ImageOps.exif_transpose(im).convert("RGB")
            left, top, w, h = rect["left"], rect["top"], rect["width"], rect["height"]
            m = 0.25 * max(w, h)
            box = (max(0, left - m), max(0, top - m), min(rgb.width, left + w + m), min(rgb.height, top + h + m))
            crop = rgb.crop((round(box[0]), round(box[1]), round(box[2]), round(box[3])))
            crop.thumbnail((side, side))
            buf = io.BytesIO()
            crop.save(buf, "JPEG", quality=80)
    except (OSError, KeyError, ValueError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def cluster_names(result: ClusterResult) -> list[str]:
    width = max(4, len(str(len(result.groups()))))
    return [f"person-{k + 1:0{width}d}" for k in range(len(result.groups()))]


def write_report(result: ClusterResult, out: Path, min_size: int = 1, max_faces_shown: int = 40) -> None:
    """``clusters.json`` (every face) and ``index.html`` (a contact sheet of face crops per cluster)."""
    out.mkdir(parents=True, exist_ok=True)
    clusters = _cluster_records(result)
    summary = _summary(result, clusters)
    (out / "clusters.json").write_text(json.dumps({**summary, "groups": clusters}, indent=1))
    (out / "index.html").write_text(_contact_sheet(result, clusters, summary, min_size, max_faces_shown))


def _cluster_records(result: ClusterResult) -> list[dict[str, Any]]:
    """Each cluster's name, size and faces (token, image, rectangle, label where known), as ``clusters.json``."""
    names = cluster_names(result)
    clusters: list[dict[str, Any]] = []
    for k, members in enumerate(result.groups()):
        clusters.append(
            {
                "cluster": names[k],
                "size": len(members),
                "faces": [
                    {
                        k2: v
                        for k2, v in (
                            ("face_token", result.items[i].face_token),
                            ("image", result.items[i].image),
                            ("face_rectangle", result.items[i].rectangle),
                            ("label", result.items[i].truth),
                        )
                        if v
                    }
                    for i in members
                ],
            }
        )
    return clusters


def _summary(result: ClusterResult, clusters: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's figures: method, threshold, counts and time."""
    return {
        "method": result.method,
        "far": result.far,
        "threshold_distance": round(result.threshold, 4),
        "faces": len(result.items),
        "clusters": len(clusters),
        "clusters_with_2_or_more": sum(1 for c in clusters if c["size"] >= 2),
        "seconds": round(result.seconds, 2),
        **result.extra,
    }


def _contact_sheet(
    result: ClusterResult,
    clusters: list[dict[str, Any]],
    summary: dict[str, Any],
    min_size: int,
    max_faces_shown: int,
) -> str:
    """``index.html``: the summary, then a row of face crops per cluster of at least ``min_size`` faces."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>faceplus clusters</title><style>",
        "body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa}h2{font-size:15px;margin:1.2em 0 .3em}",
        ".row{display:flex;flex-wrap:wrap;gap:4px}.row img,.row span{width:72px;height:72px;object-fit:cover;"
        "border-radius:4px;background:#ddd;font-size:10px;overflow:hidden}small{color:#666}",
        "</style></head><body>",
        f"<h1>{len(clusters)} people among {len(result.items)} faces</h1>",
        f"<p><small>{html.escape(json.dumps(summary))}</small></p>",
    ]
    for c, members in zip(clusters, result.groups(), strict=True):
        if c["size"] < min_size:
            continue
        labels = Counter(result.items[i].truth for i in members if result.items[i].truth)
        note = f" <small>labels: {html.escape(', '.join(f'{k} ({v})' for k, v in labels.most_common(3)))}</small>"
        parts.append(f"<h2>{c['cluster']} &middot; {c['size']} face(s){note if labels else ''}</h2><div class='row'>")
        parts.extend(_face_tile(result.items[i]) for i in members[:max_faces_shown])
        if len(members) > max_faces_shown:
            parts.append(f"<span>+{len(members) - max_faces_shown}</span>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _face_tile(item: FaceItem) -> str:
    """One face of the contact sheet: its crop, or its token's start where the image or rectangle is unknown."""
    title = html.escape(f"{item.image} {item.face_token}".strip())
    uri = crop_data_uri(item.image, item.rectangle) if item.image and item.rectangle else ""
    if uri:
        return f"<img src='{uri}' title='{title}' alt='face'>"
    return f"<span title='{title}'>{html.escape(item.face_token[:8])}</span>"


def set_user_ids(store: Any, tenant: str, result: ClusterResult) -> int:
    """Name each face's user_id after its cluster (clusters of one face keep theirs); returns how many."""
    names = cluster_names(result)
    changed = 0
    for k, members in enumerate(result.groups()):
        if len(members) < 2:
            continue
        for i in members:
            if result.items[i].face_token:
                store.faces.set_user_id(tenant, result.items[i].face_token, names[k])
                changed += 1
    return changed
