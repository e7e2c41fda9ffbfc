"""An HTML report of a verification evaluation (``faceplus eval lfw|far --report FOLDER``): the ROC and DET
curves with the operating thresholds marked, and the false accept rate per group as bars with 95% intervals.

It takes what an evaluation already computed (pair scores, thresholds, per-group counts) and only draws it, so
the evaluations stay as they are. Plots are matplotlib's, embedded in ``index.html`` as inline SVG (one file
to open or mail; text kept as text), in the style of ``faceplus cluster``'s contact sheet.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from faceplus.calibration import Calibration

#: The 95% interval's z, as ``faceplus.evaluation.far.wilson`` uses it.
Z95 = 1.96


class GroupFar(Protocol):
    """One group's false accepts (``faceplus.evaluation.far.GroupFar``; not imported: far.py imports this module)."""

    @property
    def group(self) -> str: ...

    @property
    def pairs(self) -> int: ...

    @property
    def accepts(self) -> dict[str, int]: ...

    def rate(self, far: str) -> float: ...

    def ratio(self, far: str) -> float: ...

    def ratio_interval(self, far: str) -> tuple[float, float]: ...


def enough_pairs(n: int, far: float, within: float = 3.0) -> bool:
    """Whether zero accepts in ``n`` pairs would bound the rate within ``within`` x ``far`` (the Wilson upper bound
    of 0 in n is z^2 / (n + z^2)), as ``faceplus eval far``'s table marks it."""
    return Z95 * Z95 / (n + Z95 * Z95) <= within * far


STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa}h2{font-size:15px;margin:1.2em 0 .3em}"
    "figure{margin:0}figure svg{max-width:100%;height:auto;background:#fff;border-radius:4px}small{color:#666}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
)


@dataclass
class Scores:
    """Same-person (genuine) and different-person (impostor) pair scores, and the thresholds to mark.

    ``higher_is_same``: confidences (LFW's 0-100) accept at or above a threshold; distances accept at or below.
    """

    genuine: np.ndarray
    impostor: np.ndarray
    thresholds: dict[str, float]
    higher_is_same: bool = True
    unit: str = "confidence"

    def similarity(self, values: np.ndarray | float) -> np.ndarray:
        """Scores turned so that higher always means "same person"."""
        values = np.asarray(values, dtype=np.float64)
        return values if self.higher_is_same else -values

    def rates(self) -> tuple[np.ndarray, np.ndarray]:
        """(FAR, TAR) at every distinct score taken as the threshold, from the strictest to the loosest."""
        genuine, impostor = np.sort(self.similarity(self.genuine)), np.sort(self.similarity(self.impostor))
        cuts = np.unique(np.concatenate([genuine, impostor]))[::-1]
        far = 1.0 - np.searchsorted(impostor, cuts, side="left") / max(len(impostor), 1)
        tar = 1.0 - np.searchsorted(genuine, cuts, side="left") / max(len(genuine), 1)
        return far, tar

    def at(self, threshold: float) -> tuple[float, float]:
        """(FAR, TAR) when accepting at ``threshold`` (in the scores' own unit)."""
        cut = float(self.similarity(threshold))
        far = float(np.mean(self.similarity(self.impostor) >= cut)) if len(self.impostor) else float("nan")
        tar = float(np.mean(self.similarity(self.genuine) >= cut)) if len(self.genuine) else float("nan")
        return far, tar


@dataclass
class Report:
    """What one report shows: a title, lines of context, the scores and (optionally) per-group false accepts."""

    title: str
    scores: Scores
    notes: list[str] = field(default_factory=list)
    groups: Sequence[GroupFar] = field(default_factory=list)
    group_title: str = "False accepts per group"


def _svg(figure: object) -> str:
    """A matplotlib figure as inline SVG, its text kept as text (searchable, sharp at any zoom); closed after."""
    import matplotlib.pyplot as plt

    out = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "faceplus"}):
        figure.savefig(out, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    text = out.getvalue()
    return text[text.index("<svg") :]


def _floor(values: np.ndarray, pairs: int) -> np.ndarray:
    """Rates on a log axis: a zero is drawn at half of one pair in ``pairs`` (the smallest rate measurable)."""
    return np.asarray(np.maximum(values, 0.5 / max(pairs, 1)))


def _nominal(ax: object, name: str, colour: str) -> None:
    """A dotted line at the FAR a threshold is named after ("1e-4"), beside where the measured rates put it."""
    try:
        rate = float(name)
    except ValueError:
        return
    ax.axvline(rate, color=colour, ls=":", lw=1, alpha=0.7)  # type: ignore[attr-defined]


def roc_and_det(scores: Scores) -> tuple[str, str]:
    """The ROC (TAR against FAR) and DET (FRR against FAR) plots, each threshold marked and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar = scores.rates()
    n_imp, n_gen = len(scores.impostor), len(scores.genuine)
    marks = {name: scores.at(t) for name, t in scores.thresholds.items()}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    roc, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(_floor(far, n_imp), tar, color="#333", lw=1.5, label=f"{n_gen:,} same / {n_imp:,} different pairs")
    for (name, (f, t)), colour in zip(marks.items(), colours[1:], strict=False):
        ax.plot(_floor(np.array([f]), n_imp), [t], "o", color=colour, ms=7, label=f'threshold "{name}": FAR {f:.2g}')
        ax.annotate(f'"{name}"', (_floor(np.array([f]), n_imp)[0], t), textcoords="offset points", xytext=(6, -12))
        _nominal(ax, name, colour)
    ax.set(xscale="log", xlabel="false accept rate (FAR)", ylabel="true accept rate (TAR)", title="ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)

    det, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(_floor(far, n_imp), _floor(1.0 - tar, n_gen), color="#333", lw=1.5, label="DET")
    for (name, (f, t)), colour in zip(marks.items(), colours[1:], strict=False):
        x, y = _floor(np.array([f]), n_imp)[0], _floor(np.array([1.0 - t]), n_gen)[0]
        ax.plot([x], [y], "o", color=colour, ms=7, label=f'threshold "{name}": FRR {1.0 - t:.2g}')
        ax.annotate(f'"{name}"', (x, y), textcoords="offset points", xytext=(6, 4))
        _nominal(ax, name, colour)
    ax.set(xscale="log", yscale="log", xlabel="false accept rate (FAR)", ylabel="false reject rate (FRR)")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _svg(roc), _svg(det)


def group_bars(groups: Sequence[GroupFar], levels: Sequence[str]) -> str:
    """Per group, the measured FAR over its nominal rate at each threshold, with the 95% Wilson interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [g for g in groups if g.pairs > 0]
    width = 0.8 / max(len(levels), 1)
    figure, ax = plt.subplots(figsize=(max(6.4, 0.55 * len(shown) * max(len(levels), 1)), 4.4))
    x = np.arange(len(shown))
    for k, level in enumerate(levels):
        ratios = np.array([g.ratio(level) for g in shown])
        intervals = np.array([g.ratio_interval(level) for g in shown]).reshape(-1, 2)
        errors = np.vstack([ratios - intervals[:, 0], intervals[:, 1] - ratios])
        ax.bar(x + (k - (len(levels) - 1) / 2) * width, ratios, width, yerr=errors, capsize=3, label=f'"{level}"')
    ax.axhline(1.0, color="#333", lw=1, ls="--", label="nominal rate")
    ax.set_xticks(x, [g.group for g in shown], rotation=45, ha="right")
    ax.set(ylabel="FAR / nominal (95% Wilson interval)", title="False accepts per group")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(fontsize=8)
    return _svg(figure)


def _group_table(groups: Sequence[GroupFar], levels: Sequence[str]) -> str:
    head = "".join(f"<th>&quot;{html.escape(f)}&quot; FAR [95%]</th>" for f in levels)
    rows = [f"<table><tr><th>group</th><th>pairs</th>{head}</tr>"]
    for g in groups:
        if g.pairs == 0:
            continue
        cells = []
        for f in levels:
            low, high = g.ratio_interval(f)
            thin = "" if enough_pairs(g.pairs, float(f)) else "*"
            cells.append(f"<td>{g.rate(f):.2g} ({g.ratio(f):.2g}x) [{low:.2g}-{high:.2g}x]{thin}</td>")
        rows.append(f"<tr><td>{html.escape(g.group)}</td><td>{g.pairs:,}</td>{''.join(cells)}</tr>")
    rows.append("</table><p><small>* too few pairs: zero false accepts would not bound the rate within 3x</small></p>")
    return "".join(rows)


def write_report(folder: Path, report: Report) -> Path:
    """Write ``folder/index.html`` (and ``summary.json``, the figures marked on the curves); returns the page."""
    folder.mkdir(parents=True, exist_ok=True)
    scores = report.scores
    levels = list(scores.thresholds)
    curves = len(scores.genuine) > 0 and len(scores.impostor) > 0
    roc, det = roc_and_det(scores) if curves else ("", "")
    marks = {
        name: {"threshold": round(t, 4), "far": scores.at(t)[0], "tar": scores.at(t)[1]}
        for name, t in scores.thresholds.items()
    }
    summary = {
        "title": report.title,
        "genuine_pairs": len(scores.genuine),
        "impostor_pairs": len(scores.impostor),
        "unit": scores.unit,
        "thresholds": marks,
        "groups": [{"group": g.group, "pairs": g.pairs, "accepts": g.accepts} for g in report.groups if g.pairs],
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    rows = "".join(
        f"<tr><td>&quot;{html.escape(name)}&quot;</td><td>{m['threshold']}</td><td>{m['far']:.2g}</td>"
        f"<td>{m['tar'] * 100:.2f}%</td></tr>"
        for name, m in marks.items()
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title><style>",
        STYLE,
        "</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        *(f"<p><small>{html.escape(note)}</small></p>" for note in report.notes),
        f"<h2>Thresholds ({html.escape(scores.unit)})</h2>",
        f"<table class='thresholds'><tr><th>FAR level</th><th>{html.escape(scores.unit)}</th><th>measured FAR</th>"
        f"<th>TAR</th></tr>{rows}</table>",
    ]
    if curves:
        parts += [
            "<h2>ROC</h2>",
            f"<figure class='roc'>{roc}</figure>",
            "<h2>DET</h2>",
            f"<figure class='det'>{det}</figure>",
        ]
    else:
        parts.append("<p><small>No same-person pairs, so no ROC or DET curve (eval far: give --lfw).</small></p>")
    if report.groups:
        parts += [
            f"<h2>{html.escape(report.group_title)}</h2>",
            f"<figure class='groups'>{group_bars(report.groups, levels)}</figure>",
            _group_table(report.groups, levels),
        ]
    parts.append("</body></html>")
    page = folder / "index.html"
    page.write_text("\n".join(parts))
    return page


def far_report(
    folder: Path,
    root: Path,
    rows: Sequence[GroupFar],
    lfw_pairs: tuple[np.ndarray, np.ndarray] | None,
    calibration: Calibration,
    lfw: Path | None = None,
) -> Path:
    """``faceplus eval far --report``: per-group false accepts on ``root`` (UTKFace) as bars with intervals; with
    ``--lfw``, that set's same- and different-person pair distances as ROC/DET curves with the thresholds."""
    genuine, impostor = lfw_pairs if lfw_pairs is not None else (np.empty(0), np.empty(0))
    scores = Scores(genuine, impostor, calibration.threshold_distances, higher_is_same=False, unit="score")
    where = getattr(calibration, "calibrated_on", None) or calibration.info.get("data", "?")
    notes = [
        f"faceplus eval far --root {root}" + (f" --lfw {lfw}" if lfw_pairs is not None else ""),
        f"Thresholds: the serving calibration ({where}), as the scores compare ranks by (a distance, or a "
        "cohort-normalised one; accept at or below).",
        f"Per group: every pair of two {root.name} images is an impostor pair; intervals are Wilson 95% (pairs share "
        "images, so the true uncertainty is larger).",
    ]
    if lfw_pairs is not None:
        notes.append(f"Curves: the same- and different-person pairs of {Path(str(lfw)).name}.")
    report = Report(
        f"False accepts per group: {root.name}", scores, notes, rows, f"False accepts per group ({root.name})"
    )
    return write_report(folder, report)
