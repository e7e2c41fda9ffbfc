"""Evaluation commands: ``eval lfw|attributes|far``, ``calibrate`` (each prints measured figures)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceplus.settings import DETECTORS, DetectionSettings, EngineSettings

#: The parts of ``eval liveness`` (faceplus.evaluation.liveness.run).
LIVENESS_PARTS = ("nuaa", "bona-fide", "per-action", "closed-eyes")

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    from faceplus.calibration import Calibration
    from faceplus.evaluation.calibrate import CalibrationRun
    from faceplus.evaluation.folder_embeddings import FolderEmbeddings
    from faceplus.evaluation.lfw import Pair

    #: What ``add_subparsers`` returns: the commands are added to it.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def embedder_note() -> str:
    """What a calibration file records as its embedder: the ``FACEPLUS_*`` engine settings the fit embedded with
    (model, chip alignment, flip TTA), the ones serving must use for the thresholds to hold."""
    settings = EngineSettings.from_env()
    if settings.embedder in ("sface", "sface-int8"):
        variant = "int8" if settings.embedder == "sface-int8" else "fp32"
        return f"sface-2021dec (onnx {variant}), 5-pt ArcFace chip, one pass, unit length"
    model = {"resnet": "onnx", "resnet-int8": "onnx int8"}.get(settings.embedder, "onnx")
    flip = "flip TTA" if settings.flip_tta else "one pass"
    return f"dlib-resnet-v1 ({model}), {settings.alignment}-pt chip, {flip}, unit length"


def embedder_model_id() -> str:
    """The id of the identity model a calibration is fit for (``info.embedder_model``): the engine refuses to score
    another model's embeddings with it."""
    from faceplus.embedders import embedding_model

    return embedding_model(EngineSettings.from_env().embedder).id


def engine_vectors(embeddings: FolderEmbeddings) -> np.ndarray:
    """Unit embeddings as the serving engine makes them (its model's chip and flip TTA: ``FACEPLUS_ALIGNMENT`` and
    ``FACEPLUS_FLIP_TTA`` for dlib's ResNet; one pass for SFace)."""
    from faceplus.embedders import identity_family

    settings = EngineSettings.from_env()
    return embeddings.vectors(alignment=settings.alignment, flip_tta=identity_family(settings).flip_tta)


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    from faceplus.calibration import default_calibration
    from faceplus.evaluation.lfw import evaluate, read_pairs

    pairs = read_pairs(args.pairs)
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    start = time.perf_counter()
    embeddings = _embed_folder(Path(args.root), images, args)
    print(f"embedded {len(images)} images in {time.perf_counter() - start:.0f} s")
    print(f"identity model: {embedder_model_id()} ({embedder_note()})")
    # only ranks pairs: accuracy and TAR do not depend on its curve
    calibration = default_calibration(EngineSettings.from_env().embedder)
    detectors: dict[str, int] = {}
    for d in embeddings.detector:
        detectors[d or "none"] = detectors.get(d or "none", 0) + 1
    print("faces found by detector:", ", ".join(f"{k}: {v}" for k, v in sorted(detectors.items())))
    index = embeddings.index()
    # Each step adds one thing to the one before; the last is the engine's default pipeline.
    primary = "hog1" if args.detector == "hog" else args.detector
    if "arcface" in embeddings.raw:
        return _eval_lfw_sface(args, pairs, images, embeddings, calibration, primary)
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            f"{primary} only, 5-pt chip, no TTA",
            dict(alignment=5, flip_tta=False, normalize=False, fallback=False, primary=primary),
        ),
        ("+ detection fallback (other detectors)", dict(alignment=5, flip_tta=False, normalize=False)),
        ("+ flip TTA (mean of chip and mirrored chip)", dict(alignment=5, normalize=False)),
        ("+ unit-length embeddings", dict(alignment=5)),
        ("+ chip aligned on 68 points (engine default)", dict()),
    ]
    for n, (label, options) in enumerate(steps):
        vectors = embeddings.vectors(**options)
        by_path = {p: vectors[index[p]] for p in images}
        last = n == len(steps) - 1
        result = evaluate(pairs, by_path, calibration, scores_out=args.scores if last else None)
        print(f"{label}: {result.summary()}")
        if last and args.report:
            page = _lfw_report(args, pairs, by_path, calibration, f"{label}: {result.summary()}")
            print(f"report: {page}")
    return 0


def _lfw_report(
    args: argparse.Namespace, pairs: list[Pair], by_path: dict[str, np.ndarray], calibration: Calibration, result: str
) -> Path:
    """``--report``: the engine pipeline's pair confidences as ROC/DET curves with the shipped thresholds."""
    import numpy as np

    from faceplus.evaluation.lfw import pair_scores
    from faceplus.evaluation.report import Report, Scores, write_report

    scores = pair_scores(pairs, by_path, calibration)
    same = np.array([p.same for p in pairs])
    marked = Scores(scores[same], scores[~same], calibration.thresholds, higher_is_same=True, unit="confidence")
    where = calibration.info.get("data", "?")
    notes = [
        f"faceplus eval lfw --root {args.root} --pairs {args.pairs}",
        result,
        f"Thresholds: the shipped calibration (fit on {where}). Pairs whose image has no face score 0.",
    ]
    return write_report(Path(args.report), Report(f"LFW verification: {Path(args.pairs).name}", marked, notes))


def _eval_lfw_sface(
    args: argparse.Namespace,
    pairs: list[Pair],
    images: list[str],
    embeddings: FolderEmbeddings,
    calibration: Calibration,
    primary: str,
) -> int:
    """SFace's rows: its chip has one geometry (ArcFace, 5 key points) and it is always unit length. The first row
    shows what mirroring would add (the engine runs one pass); the last is the engine's default pipeline."""
    from faceplus.evaluation.lfw import evaluate

    index = embeddings.index()
    steps: list[tuple[str, dict[str, Any], bool]] = [
        ("flip TTA, detection fallback (not the engine's: for comparison)", dict(flip_tta=True), False),
        (f"{primary} only, one pass", dict(flip_tta=False, fallback=False, primary=primary), False),
        ("+ detection fallback (engine default)", dict(flip_tta=False), True),
    ]
    for label, options, default in steps:
        vectors = embeddings.vectors(**options)
        by_path = {p: vectors[index[p]] for p in images}
        result = evaluate(pairs, by_path, calibration, args.scores if default else None)
        print(f"{label}: {result.summary()}")
        if default and args.report:
            print(f"report: {_lfw_report(args, pairs, by_path, calibration, f'{label}: {result.summary()}')}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the FAR thresholds on a labelled photo folder (``--root``) or a FaceSet's user_ids (``--faceset``)."""
    from faceplus.calibration import FAR_LEVELS
    from faceplus.evaluation.calibrate import DEFAULT_MIN_FALSE_ACCEPTS, NotEnoughPairs

    args.far = args.far or list(FAR_LEVELS)
    if not set(args.far) <= set(FAR_LEVELS):
        print(f"--far takes {' '.join(FAR_LEVELS)}", file=sys.stderr)
        return 2
    args.far = [far for far in FAR_LEVELS if far in args.far]
    if args.min_false_accepts is None:
        args.min_false_accepts = DEFAULT_MIN_FALSE_ACCEPTS
    if args.min_false_accepts < 1:
        print("--min-false-accepts must be at least 1", file=sys.stderr)
        return 2
    if args.out and not Path(args.out).parent.is_dir():
        print(f"--out {args.out}: no folder {Path(args.out).parent}", file=sys.stderr)
        return 2
    if any(v is not None and v < 1 for v in (args.cohort_k, args.cohort_size)):
        print("--cohort-k and --cohort-size must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.faceset:
            return _calibrate_faceset(args)
        if args.groups:
            return _calibrate_groups(args)
        return _calibrate_folder(args)
    except NotEnoughPairs as exc:
        print(f"cannot calibrate: {exc}", file=sys.stderr)
        return 1


def _recorded_command(args: argparse.Namespace) -> str:
    """The command as the calibration file records it (from the parsed options, so also when called from
    Python), without the api key: it is a tenant's credential."""
    parts = ["faceplus calibrate"]
    form: tuple[str, ...] = (
        ("faceset", "api_key", "data_dir", "max_faces") if args.faceset else ("root", "cache", "detector")
    )
    if getattr(args, "groups", None):
        form = ("groups", "min_age", "half", "cache", "detector")
    for option in (*form, *(() if getattr(args, "groups", None) else ("splits",))):
        value = getattr(args, option, None)
        if value is not None:
            parts.append(f"--{option.replace('_', '-')} {'***' if option == 'api_key' else value}")
    if getattr(args, "cohort", False):
        parts.append("--cohort")
        for option in ("cohort_k", "cohort_size"):
            if getattr(args, option) is not None:
                parts.append(f"--{option.replace('_', '-')} {getattr(args, option)}")
    parts.append(f"--far {' '.join(args.far)}")
    if not getattr(args, "groups", None):  # --groups models each group's tail: it counts no false accepts
        parts.append(f"--min-false-accepts {args.min_false_accepts}")
    return " ".join(parts)


def _calibrate_folder(args: argparse.Namespace) -> int:
    from faceplus.evaluation.calibrate import folder_identities, image_list
    from faceplus.evaluation.folder_embeddings import model_id_of

    root = Path(args.root)
    images = image_list(root)
    embeddings = _embed_folder(root, images, args)
    info = {
        "command": _recorded_command(args),
        "data": root.name,
        "embedder": embedder_note(),
        "model_id": model_id_of(EngineSettings.from_env().embedder),  # the vectors embed_folder made
        "date": time.strftime("%Y-%m-%d"),
    }
    labels = folder_identities(embeddings.paths)
    run = _run(labels, engine_vectors(embeddings), info, args)
    if run.cohort is not None:
        run = _described(run, root.name)
    out = _out(args)
    _write_and_report(run, out)
    print(_how_to_serve(args, out))
    return 0


def _calibrate_groups(args: argparse.Namespace) -> int:
    """``--groups``: thresholds from the impostor pairs of a race x gender labelled folder without identities
    (each group weighing the same), the curve anchored on them; the other half's per-group rates when fit on one."""
    from faceplus.evaluation.far import load_population
    from faceplus.evaluation.impostor_fit import (
        calibrated_on,
        group_pairs,
        half_rows,
        held_out_table,
        other_half,
    )
    from faceplus.evaluation.populations import TERMS

    settings = _with_detector(args.detector)
    population = load_population(Path(args.groups), args.min_age, None, args.cache, args.workers, settings)
    rows = half_rows(population, args.half)
    groups = group_pairs(population, rows)
    date = time.strftime("%Y-%m-%d")
    info = {
        "command": _recorded_command(args),
        "data": population.name,
        "calibrated_on": calibrated_on(population, args.half, len(rows), date),
        "licence": TERMS[population.kind],  # of the data the thresholds are derived from
        "half": args.half,
        "min_age": args.min_age,
        "images": int(len(rows)),
        "embedder": embedder_note(),
        "model_id": population.model_id,
        "date": date,
    }
    cal = _fit_groups_or_explain(groups, info, args.far)
    if cal is None:
        return 1
    out = _out(args)
    cal.save(out)
    print(
        f"{population.name}, {args.half} half: {len(rows)} faces, {cal.info['impostor_pairs']:,} impostor pairs "
        f"within {len(groups)} race x gender groups (each weighing the same)"
    )
    print(f"curve anchored on the thresholds: midpoint {cal.midpoint:.4f}, scale {cal.scale:.4f}")
    print(f"{'FAR':>6} {'distance':>9} {'confidence':>11}")
    for far, distance in cal.threshold_distances.items():
        print(f"{far:>6} {distance:9.4f} {cal.thresholds[far]:11.3f}")
    unseen = other_half(args.half)
    if unseen and len(half_rows(population, unseen)):
        print()
        print(held_out_table(cal, population, unseen))
    print(f"wrote {out}")
    print(f"calibrated_on (compare replies' calibration field): {cal.calibrated_on}")
    print(_how_to_serve(args, out))
    return 0


def _fit_groups_or_explain(
    groups: dict[str, np.ndarray], info: dict[str, Any], levels: list[str]
) -> Calibration | None:
    """:func:`~faceplus.evaluation.impostor_fit.fit_groups`, or None after saying which group is too small."""
    from faceplus.evaluation.impostor_fit import fit_groups

    try:
        return fit_groups(groups, info, levels)
    except ValueError as exc:
        sizes = ", ".join(f"{name} {len(d):,}" for name, d in groups.items())
        print(f"cannot calibrate: {exc} (impostor pairs per group: {sizes})", file=sys.stderr)
        return None


def _how_to_serve(args: argparse.Namespace, out: Path) -> str:
    """How the server comes to use ``out``: by itself from the data folder, or named in the setting."""
    from faceplus.settings import ServerSettings

    settings = ServerSettings.from_env(data_dir=args.data_dir)
    if settings.with_calibration_resolved().engine.compare_calibration == str(out):
        flag = f" --data-dir {settings.data_dir}" if args.data_dir else ""
        return (
            f"faceplus serve{flag} uses it from its next start (it prints the calibration it uses; "
            "FACEPLUS_COMPARE_CALIBRATION=shipped goes back to the shipped thresholds)"
        )
    return f"to serve with it: FACEPLUS_COMPARE_CALIBRATION={out.resolve()} (compare; docs/ENGINE.md)"


def _out(args: argparse.Namespace) -> Path:
    """``--out``, else the data folder's calibration for FACEPLUS_EMBEDDER, the one ``faceplus serve`` (on that
    folder) and the engine then use; never a file of the package, whose shipped thresholds stay as released."""
    from faceplus.settings import ServerSettings, operator_calibration_file

    if args.out:
        return Path(args.out)
    folder = ServerSettings.from_env(data_dir=args.data_dir).data_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return operator_calibration_file(folder, EngineSettings.from_env().embedder)


def _run(labels: list[str], vectors: np.ndarray, info: dict[str, Any], args: argparse.Namespace) -> CalibrationRun:
    """The raw fit, or with ``--cohort`` the cohort-normalised one, with the options given."""
    from faceplus.evaluation.calibrate import calibrate, calibrate_cohort

    if args.cohort:
        return calibrate_cohort(
            labels, vectors, info, args.splits, args.far, args.min_false_accepts, args.cohort_k, args.cohort_size
        )
    return calibrate(labels, vectors, info, args.splits, args.far, args.min_false_accepts)


def _described(run: CalibrationRun, what: str) -> CalibrationRun:
    """``run`` whose ``calibrated_on`` (every compare reply's ``calibration``) says it is cohort-normalised on whom."""
    from dataclasses import replace

    cal = run.calibration
    cohort = cal.info["cohort_identities"]
    on = (
        f"{what}, cohort-normalised: thresholds on {cal.info['identities']} people ({cal.info['images']} faces), "
        f"cohort: one face each of {cohort} other people of it ({cal.info['date']})"
    )
    return replace(run, calibration=replace(cal, info={**cal.info, "calibrated_on": on}))


def _calibrate_faceset(args: argparse.Namespace) -> int:
    from faceplus.cli.server import where
    from faceplus.cli.tools import _tenant
    from faceplus.evaluation.calibrate import faceset_sample
    from faceplus.evaluation.folder_embeddings import model_id_of
    from faceplus.settings import ServerSettings
    from faceplus.store.factory import open_store

    settings = ServerSettings.from_env(data_dir=args.data_dir)
    store = open_store(settings)  # as serve opens it: PostgreSQL when $FACEPLUS_DATABASE_URL is set
    try:
        tenant = _tenant(store, args.api_key)
        faceset = store.facesets.get(tenant, outer_id=args.faceset) or store.facesets.get(
            tenant, faceset_token=args.faceset
        )
        if faceset is None:
            print(f"no FaceSet with outer_id or faceset_token {args.faceset!r} for this api key", file=sys.stderr)
            return 1
        sample = faceset_sample(store, tenant, faceset.faceset_token, max_faces=args.max_faces)
    finally:
        store.close()
    name = faceset.outer_id or faceset.faceset_token
    print(f"FaceSet {name} (faceset_token {faceset.faceset_token}); {where(settings)}")
    print(
        f"{sample.members} faces: {len(sample.labels)} used ({len(set(sample.labels))} user ids), "
        f"{sample.unlabelled} without a user_id left out, {sample.beside_largest} beside the largest face of an "
        f"indexed photo left out, {sample.sampled_out} left out to stay within --max-faces {args.max_faces}"
    )
    if not sample.labels:
        print(
            f"cannot calibrate: no face of FaceSet {name} has a user_id; give each person's faces the same user_id "
            "(face/setuserid, or faceplus index --user-id-from-folder) and run this again",
            file=sys.stderr,
        )
        return 1
    date = time.strftime("%Y-%m-%d")
    people = len(set(sample.labels))
    info = {
        "command": _recorded_command(args),
        "source": "faceset",
        "data": f"FaceSet {name}",
        "outer_id": faceset.outer_id,
        "faceset_token": faceset.faceset_token,
        # What compare replies show every client: no outer_id (another tenant's name), only what it measured.
        "calibrated_on": f"an operator FaceSet's user_ids ({people} people, {len(sample.labels)} faces, {date})",
        "embedder": embedder_note(),
        "model_id": model_id_of(EngineSettings.from_env().embedder),  # the engine's, whose vectors the FaceSet holds
        "date": date,
    }
    run = _run(sample.labels, sample.vectors, info, args)
    if run.cohort is not None:
        run = _described(run, f"an operator FaceSet's user_ids ({people} people, {len(sample.labels)} faces)")
    out = _out(args)
    _write_and_report(run, out)
    print(_how_to_serve(args, out))
    return 0


def _write_and_report(run: CalibrationRun, out: Path) -> None:
    """Write the calibration (and its cohort) to ``out`` and print what was fit and how it held out."""
    from faceplus.calibration import FAR_LEVELS

    cal = _write_cohort(run, out)
    cal.save(out)
    _print_fit(run, cal)
    fars = list(cal.threshold_distances)
    _print_heldout_far(run, fars)
    _print_heldout_tar(run, fars)
    if run.skipped:
        print(f"held-out check: {run.skipped} identity halves too small to fit the rates asked, not checked")
    print(f"wrote {out}")
    missing = [far for far in FAR_LEVELS if far not in cal.threshold_distances]
    if missing:
        print(f"note: not fit at {', '.join(missing)}; replies scored with this file carry no threshold for them")
    if run.cohort is not None:
        print(f"calibrated_on (compare replies' calibration field): {cal.calibrated_on}")


def _write_cohort(run: CalibrationRun, out: Path) -> Calibration:
    """Write ``run``'s cohort beside ``out`` (if it has one): the calibration to save, naming that cohort file."""
    from dataclasses import replace

    cal = run.calibration
    if run.cohort is not None:
        # The cohort first, so the calibration file never names a cohort that is not there yet.
        cohort_file = out.with_name(f"{out.stem}.cohort.npz")
        run.cohort.save(cohort_file)
        assert cal.normalization is not None
        cal = replace(cal, normalization={**cal.normalization, "cohort": cohort_file.name})
        print(
            f"cohort: one face each of {len(run.cohort.vectors)} identities, kept out of the pairs "
            f"(k {run.cohort.k}, reference {run.cohort.reference:.4f}); wrote {cohort_file} "
            f"({cohort_file.stat().st_size:,} bytes, mode 600: your people's embeddings, biometric data)"
        )
    return cal


def _print_fit(run: CalibrationRun, cal: Calibration) -> None:
    """The pairs fit on, the curve and the thresholds per FAR."""
    units = " (normalised distances)" if run.cohort is not None else ""
    print(
        f"fit on {cal.info['genuine_pairs']:,} same-person and {cal.info['impostor_pairs']:,} impostor pairs "
        f"({cal.info['identities']} identities, {cal.info['images']} faces); "
        f"curve midpoint {cal.midpoint:.4f}, scale {cal.scale:.4f}{units}"
    )
    print(f"{'FAR':>6} {'distance':>9} {'confidence':>11}")
    for far, distance in cal.threshold_distances.items():
        print(f"{far:>6} {distance:9.4f} {cal.thresholds[far]:11.3f}")


def _print_heldout_far(run: CalibrationRun, fars: list[str]) -> None:
    """The held-out false-accept rates per split (raw | normalised with a cohort)."""
    from faceplus.evaluation.calibrate import pooled_ratio

    if run.checks and run.cohort is None:
        print("held-out check: fit on one half of the identities, false-accept rate / nominal on the other half")
        print(f"{'split':>7} {'pairs':>9} " + " ".join(f"{far:>6}" for far in fars))
        for check in run.checks:
            ratios = " ".join(f"{check.ratio(far):6.2f}" for far in fars)
            print(f"{check.split:>7} {check.impostor_pairs:9d} {ratios}")
        pooled = " ".join(f"{run.pooled_ratio(far):6.2f}" for far in fars)
        print(f"{'pooled':>7} {sum(c.impostor_pairs for c in run.checks):9d} {pooled}")
    elif run.checks:
        print(
            "held-out check: fit on one half of the identities not in the cohort, measured on the other half "
            "(the cohort is in neither); false-accept rate / nominal, raw distances | cohort-normalised"
        )
        header = " ".join(f"{far:>6}" for far in fars)
        print(f"{'split':>7} {'pairs':>9} {header} | {header}")
        for raw, norm in zip(run.raw_checks, run.checks, strict=True):
            ratios = " ".join(f"{raw.ratio(far):6.2f}" for far in fars)
            normalised = " ".join(f"{norm.ratio(far):6.2f}" for far in fars)
            print(f"{norm.split:>7} {norm.impostor_pairs:9d} {ratios} | {normalised}")
        pooled = " ".join(f"{pooled_ratio(run.raw_checks, far):6.2f}" for far in fars)
        normalised = " ".join(f"{run.pooled_ratio(far):6.2f}" for far in fars)
        print(f"{'pooled':>7} {sum(c.impostor_pairs for c in run.checks):9d} {pooled} | {normalised}")


def _print_heldout_tar(run: CalibrationRun, fars: list[str]) -> None:
    """The held-out true-accept rates (raw and normalised with a cohort), and whether the cohort helped."""
    from faceplus.evaluation.calibrate import pooled_tar

    if run.checks:
        genuine = sum(c.genuine_pairs for c in run.checks)
        print(f"held-out TAR (same-person pairs of the other half accepted, pooled over {genuine:,} pairs):")
        rows = [("raw", run.raw_checks), ("normalised", run.checks)] if run.cohort is not None else [("", run.checks)]
        for label, checks in rows:
            rates = "  ".join(f"{far} {pooled_tar(checks, far) * 100:6.2f}%" for far in fars)
            print(f"{label:>10}  {rates}" if label else f"  {rates}")
        worse = [far for far in fars if pooled_tar(run.checks, far) < pooled_tar(run.raw_checks, far)]
        if run.cohort is not None and worse:
            print(
                f"note: normalised held-out TAR is below raw at {', '.join(worse)}: on this population the cohort "
                "does not help; the raw calibration (without --cohort) may serve better"
            )
    elif run.cohort is not None:
        print("note: no identity half could be checked, so raw and normalised were not compared held out")


def cmd_eval_attributes(args: argparse.Namespace) -> int:
    from faceplus.evaluation.attributes import evaluate_attributes, format_report

    if not args.utkface and not args.fer:
        print("give --utkface DIR and/or --fer DIR", file=sys.stderr)
        return 2
    print(format_report(evaluate_attributes(args.utkface, args.fer, limit=args.limit)))
    return 0


def _embed_folder(root: Path, images: list[str], args: argparse.Namespace) -> FolderEmbeddings:
    """``embed_folder`` with the command's detector, cache and workers, and the identity model and landmark
    source serving uses (``FACEPLUS_EMBEDDER``, ``FACEPLUS_LANDMARKS``)."""
    from faceplus.evaluation.folder_embeddings import embed_folder

    settings = EngineSettings.from_env()
    return embed_folder(
        root,
        images,
        workers=args.workers,
        cache=args.cache,
        detector=args.detector,
        embedder=settings.embedder,
        landmarks=settings.landmarks,
    )


def _with_detector(detector: str) -> EngineSettings:
    """The engine settings (``FACEPLUS_*``) with ``detector`` as the primary detector."""
    settings = EngineSettings.from_env()
    return replace(settings, detection=replace(settings.detection, detector=detector))


def _eval_far(args: argparse.Namespace) -> int:
    from faceplus.evaluation.far import FarOptions, evaluate_far

    options = FarOptions(
        root=args.root,
        settings=_with_detector(args.detector),
        min_age=args.min_age,
        limit=args.limit,
        cache=args.cache,
        workers=args.workers,
        half=args.half,
        also=args.also,
        also_cache=args.also_cache,
        lfw=args.lfw,
        lfw_cache=args.lfw_cache,
        heldout=args.heldout,
        k=args.k,
        per_group=args.per_group,
        save_cohort=args.save_cohort,
        strength=tuple(args.strength or ()),
        pairs=args.pairs,
        cohort=tuple(args.cohort),
        report=args.report,
    )
    return evaluate_far(options)


def _eval_liveness(args: argparse.Namespace) -> int:
    from faceplus.evaluation.liveness import LivenessOptions, run

    options = LivenessOptions(
        nuaa=args.nuaa,
        lfw=args.lfw,
        people=args.people,
        min_photos=args.min_photos,
        max_photos=args.max_photos,
        seed=args.seed,
        parts=tuple(args.parts),
        verbose=args.verbose,
    )
    return run(options, EngineSettings.from_env())


def add_commands(sub: Subparsers) -> None:
    primary = DetectionSettings.from_env().detector  # FACEPLUS_DETECTOR, as the engine itself reads it
    ev = sub.add_parser("eval", help="evaluate on a benchmark").add_subparsers(dest="benchmark", required=True)
    _add_eval_lfw(ev, primary)
    _add_eval_attributes(ev)
    _add_eval_far(ev, primary)
    _add_eval_liveness(ev)
    _add_calibrate(sub, primary)


def _add_eval_lfw(ev: Subparsers, primary: str) -> None:
    p = ev.add_parser("lfw", help="LFW 10-fold verification")
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--pairs", required=True, type=Path)
    p.add_argument("--scores", type=Path, help="write fold,same,confidence per pair to this CSV")
    p.add_argument("--report", type=Path, metavar="FOLDER", help="write an HTML report (ROC, DET) to this folder")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--cache", type=Path, help="reuse/store embeddings in this .npz")
    p.add_argument("--detector", choices=DETECTORS, default=primary, help="primary detector (default: %(default)s)")
    p.set_defaults(func=cmd_eval_lfw)


def _add_eval_attributes(ev: Subparsers) -> None:
    p = ev.add_parser("attributes", help="age/gender on UTKFace, emotion on FER2013")
    p.add_argument("--utkface", type=Path, help="UTKFace folder with labels.csv")
    p.add_argument("--fer", type=Path, help="FER2013 folder with labels.csv")
    p.add_argument("--limit", type=int, help="evaluate only this many images of each set (spread evenly)")
    p.set_defaults(func=cmd_eval_attributes)


def _add_eval_far(ev: Subparsers, primary: str) -> None:
    p = ev.add_parser(
        "far", help="false-accept rates at the serving thresholds per group (UTKFace or FairFace labels) and source"
    )
    p.add_argument(
        "--root",
        required=True,
        type=Path,
        help="folder of UTKFace-named images (age_gender_race_*.jpg) or FairFace's (labels.csv: "
        "file,age_group,gender,race); with --heldout the cohort comes from it",
    )
    p.add_argument(
        "--min-age", type=int, default=0, help="only faces at least this old (e.g. 18; FairFace: age group's youngest)"
    )
    p.add_argument("--cache", type=Path, help="reuse/store the folder's embeddings in this .npz (one per model)")
    p.add_argument(
        "--half",
        choices=("all", "first", "second"),
        default="all",
        help="count only this half of --root (the split calibrate --groups --half fits on)",
    )
    p.add_argument("--also", type=Path, help="another labelled folder to count on (e.g. utkface-more), never fit on")
    p.add_argument("--also-cache", type=Path, help="reuse/store the --also folder's embeddings in this .npz")
    p.add_argument(
        "--limit", type=int, help="at most this many images of each folder (spread evenly; lfw-dev: whole identities)"
    )
    p.add_argument("--lfw", type=Path, help="also an LFW-style <name>/<image>.jpg folder (e.g. lfw-dev)")
    p.add_argument("--lfw-cache", type=Path, help="reuse/store the LFW embeddings in this .npz")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--detector", choices=DETECTORS, default=primary, help="primary detector (default: %(default)s)")
    p.add_argument("--heldout", action="store_true", help="with --lfw: fit on one half, report on the other")
    p.add_argument("--k", type=int, default=25, help="cohort neighbours for the normalised step")
    p.add_argument("--per-group", type=int, default=100, help="cohort faces per race x gender")
    p.add_argument("--save-cohort", type=Path, help="with --heldout: write the normalised calibration here")
    p.add_argument(
        "--strength",
        type=float,
        nargs="+",
        help="with --heldout: also sweep the cohort shift scaled by these factors (1 = step 4) and print the trade",
    )
    p.add_argument("--pairs", type=Path, help="with --heldout: LFW 10-fold accuracy on these pairs, raw and normalised")
    p.add_argument(
        "--cohort",
        nargs="+",
        choices=("root", "utkface", "lfw"),
        default=["root"],
        help="held-out cohort: the --root folder's fit half (utkface: its old name) and/or lfw-dev's",
    )
    p.add_argument(
        "--report", type=Path, metavar="FOLDER", help="write an HTML report (per-group FAR bars; ROC/DET with --lfw)"
    )
    p.set_defaults(func=_eval_far)


def _add_eval_liveness(ev: Subparsers) -> None:
    p = ev.add_parser("liveness", help="APCER on NUAA photo attacks, BPCER on bona fide captures built from LFW photos")
    p.add_argument("--nuaa", type=Path, default=Path("../shared/data/nuaa-dev"))
    p.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw-dev"))
    p.add_argument("--people", type=int, default=40, help="bona fide captures to build (one per person)")
    p.add_argument("--min-photos", type=int, default=3, help="only LFW people with at least this many photos")
    p.add_argument("--max-photos", type=int, default=12, help="photos looked at per person")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--parts", nargs="+", choices=LIVENESS_PARTS, default=list(LIVENESS_PARTS))
    p.add_argument("--verbose", action="store_true", help="one line per bona fide capture (frames of refused ones)")
    p.set_defaults(func=_eval_liveness)


def _add_calibrate(sub: Subparsers, primary: str) -> None:
    p = sub.add_parser(
        "calibrate", help="measure FAR thresholds on all cross-identity pairs of a folder or of a FaceSet's user_ids"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", type=Path, help="folder of <identity>/<image>.jpg (e.g. lfw-dev)")
    src.add_argument("--faceset", help="outer_id or faceset_token of a FaceSet whose faces carry user_ids")
    _add_calibrate_groups(src, p)
    p.add_argument(
        "--out",
        type=Path,
        help="calibration file (default: calibration-<FACEPLUS_EMBEDDER>.json in the data folder, which faceplus "
        "serve on that folder uses from its next start; the package's shipped files are never written)",
    )
    p.add_argument("--far", nargs="+", metavar="RATE", help="rates to fit: 1e-3 1e-4 1e-5 (default: all three)")
    p.add_argument(
        "--min-false-accepts",
        type=int,
        default=None,
        help="impostor pairs at or below each threshold the data must give (default: 10)",
    )
    p.add_argument("--splits", type=int, default=6, help="identity splits for the held-out check")
    p.add_argument("--workers", type=int, default=None, help="--root: embedding processes")
    p.add_argument("--cache", type=Path, help="--root, --groups: reuse/store embeddings in this .npz")
    p.add_argument(
        "--detector", choices=DETECTORS, default=primary, help="--root, --groups: primary detector (%(default)s)"
    )
    p.add_argument("--api-key", default=os.environ.get("FACEPLUS_API_KEY"), help="--faceset: the FaceSet's api key")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder: the FaceSet's, and where the calibration goes without --out (default: as serve)",
    )
    p.add_argument("--max-faces", type=int, default=10_000, help="--faceset: at most this many faces (all pairs)")
    p.add_argument(
        "--cohort",
        action="store_true",
        help="cohort-normalised: the cohort is one face each of some of these identities (written beside --out "
        "as NAME.cohort.npz, mode 600: biometric data), thresholds on the other identities' pairs",
    )
    p.add_argument(
        "--cohort-k",
        type=int,
        default=None,
        help="--cohort: nearest cohort faces per face (default 25, or 1 per 15 cohort faces if fewer)",
    )
    p.add_argument(
        "--cohort-size",
        type=int,
        default=None,
        help="--cohort: identities in the cohort (default: 1 in 4, at most 1000; at least 200 and 15 x k)",
    )
    p.set_defaults(func=cmd_calibrate)


def _add_calibrate_groups(src: argparse._MutuallyExclusiveGroup, p: argparse.ArgumentParser) -> None:
    """``calibrate --groups`` and its options: impostor pairs of a race x gender labelled folder."""
    src.add_argument(
        "--groups",
        type=Path,
        help="folder labelled by race and gender, no identities (FairFace labels.csv or UTKFace names): impostor "
        "pairs within each race x gender group, each weighing the same; the curve is anchored on the thresholds",
    )
    p.add_argument("--min-age", type=int, default=18, help="--groups: only faces at least this old (%(default)s)")
    p.add_argument(
        "--half",
        choices=("all", "first", "second"),
        default="all",
        help="--groups: fit on this half of the images (hash split; eval far --half counts on the other)",
    )
