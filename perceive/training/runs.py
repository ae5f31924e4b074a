"""Compare finished training runs: their validation metrics, per class, over seeds.

A run is a ``perceive train`` output folder; its ``log.jsonl`` holds one record per
evaluation (``{"step": ..., "eval": {"mean_aph_l2": ..., "VEHICLE_L2": {"ap", "aph"},
...}}``, see :func:`perceive.training.train.summarize_metrics`). Runs are grouped by a
label (the variant: ``fusion``, ``lidar``, ``camera``), several runs of a group being
seeds of the same configuration.

>>> groups = {"fusion": ["runs/f_s0", "runs/f_s1"], "lidar": ["runs/l_s0"]}  # doctest: +SKIP
>>> print(markdown_table(load_groups(groups)))                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perceive.errors import DataError, MissingFileError

#: The classes of the leaderboard figure (mAPH at LEVEL_2 is their mean).
LEADERBOARD_CLASSES: tuple[str, ...] = ("VEHICLE", "PEDESTRIAN", "CYCLIST")


@dataclass(frozen=True)
class EvalPoint:
    """One validation of a run."""

    step: int
    """Training step the model was evaluated at."""
    mean_aph_l2: float
    """mAPH at LEVEL_2 over :data:`LEADERBOARD_CLASSES`."""
    ap: Mapping[str, float]
    """AP at LEVEL_2 by class name."""
    aph: Mapping[str, float]
    """APH at LEVEL_2 by class name."""


@dataclass(frozen=True)
class RunResult:
    """The evaluations of one run, in step order."""

    path: Path
    """The run's folder."""
    history: tuple[EvalPoint, ...]
    """Every evaluation in the log, by increasing step (at least one)."""
    held_out: EvalPoint | None = None
    """The final model's metrics on another data set (a ``perceive evaluate --json`` file),
    or None."""

    @property
    def final(self) -> EvalPoint:
        """:attr:`held_out` when given, else the log's last evaluation."""
        return self.held_out if self.held_out is not None else self.history[-1]


def load_metrics_json(path: str | Path, step: int) -> EvalPoint:
    """An :class:`EvalPoint` from a ``perceive evaluate --json`` file.

    Args:
        path: the JSON file (``breakdowns`` keyed by official names).
        step: the training step of the evaluated model.

    Raises:
        MissingFileError: no such file.
        DataError: not JSON, or no ``mean_aph_l2`` / LEVEL_2 object-type breakdowns.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("no such metrics file (perceive evaluate --json)", path=path)
    try:
        doc = json.loads(path.read_text())
        prefix, suffix = "OBJECT_TYPE_TYPE_", "_LEVEL_2"
        level2 = {
            name[len(prefix) : -len(suffix)]: b
            for name, b in doc["breakdowns"].items()
            if name.startswith(prefix) and name.endswith(suffix)
        }
        if not level2:
            raise KeyError("OBJECT_TYPE_TYPE_*_LEVEL_2")
        return EvalPoint(
            step=step,
            mean_aph_l2=float(doc["mean_aph_l2"]),
            ap={c: float(b["ap"]) for c, b in level2.items()},
            aph={c: float(b["aph"]) for c, b in level2.items()},
        )
    except json.JSONDecodeError as e:
        raise DataError(f"not JSON: {e}", path=path) from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"not a perceive evaluate --json file: no {e}", path=path) from e


def load_run(path: str | Path, metrics_file: str | None = None) -> RunResult:
    """Read the evaluations of a run from ``<path>/log.jsonl``.

    Args:
        path: the run's folder.
        metrics_file: a ``perceive evaluate --json`` file in that folder whose metrics
            become the run's :attr:`RunResult.final` (e.g. the final model on a test set),
            or None for the log's last evaluation.

    Raises:
        MissingFileError: no ``log.jsonl`` in ``path``, or no ``metrics_file``.
        DataError: a line is not JSON, an evaluation lacks a field, or there is none.
    """
    path = Path(path)
    log = path / "log.jsonl"
    if not log.is_file():
        raise MissingFileError("no log.jsonl: not a perceive training run", path=path)
    points: dict[int, EvalPoint] = {}
    with log.open() as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"line {line_no} is not JSON: {e}", path=log, record=line_no - 1
                ) from e
            if not isinstance(rec, dict) or "eval" not in rec:
                continue
            ev = rec["eval"]
            try:
                classes = [k[: -len("_L2")] for k in ev if k.endswith("_L2")]
                point = EvalPoint(
                    step=int(rec["step"]),
                    mean_aph_l2=float(ev["mean_aph_l2"]),
                    ap={c: float(ev[f"{c}_L2"]["ap"]) for c in classes},
                    aph={c: float(ev[f"{c}_L2"]["aph"]) for c in classes},
                )
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(
                    f"line {line_no}: evaluation record without {e}",
                    path=log,
                    record=line_no - 1,
                    field="eval",
                ) from e
            # A resumed run may evaluate the same step twice: the later record wins.
            points[point.step] = point
    if not points:
        raise DataError("no evaluation records (was the run finished?)", path=log)
    history = tuple(points[s] for s in sorted(points))
    held_out = None
    if metrics_file is not None:
        held_out = load_metrics_json(path / metrics_file, history[-1].step)
    return RunResult(path=path, history=history, held_out=held_out)


def load_groups(
    groups: Mapping[str, Sequence[str | Path]], metrics_file: str | None = None
) -> dict[str, list[RunResult]]:
    """:func:`load_run` for every run of every group (label -> run folders)."""
    out: dict[str, list[RunResult]] = {}
    for label, paths in groups.items():
        if not paths:
            raise ValueError(f"group {label!r} has no runs")
        out[label] = [load_run(p, metrics_file) for p in paths]
    return out


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    return sum(values) / len(values), min(values), max(values)


def _classes(results: Mapping[str, list[RunResult]]) -> list[str]:
    """Class names of all final evaluations, the detector's classes first in their order."""
    from perceive.models.classes import CLASS_NAMES

    seen = {c for runs in results.values() for run in runs for c in run.final.aph}
    known = [c for c in CLASS_NAMES if c in seen]
    return known + sorted(seen - set(known))


def markdown_table(results: Mapping[str, list[RunResult]]) -> str:
    """One row per group: final APH (AP) per class at LEVEL_2 and mAPH L2.

    With several runs in a group each cell is the mean over them, with the range
    ``[min, max]`` of the mAPH column, so a reader sees the spread across seeds.
    """
    classes = _classes(results)
    head = ["variant", "runs", *classes, "mAPH L2 (veh, ped, cyc)"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(classes) + 1)]
    for label, runs in results.items():
        cells = [label, str(len(runs))]
        for c in classes:
            aph = [r.final.aph.get(c, math.nan) for r in runs]
            ap = [r.final.ap.get(c, math.nan) for r in runs]
            cells.append(f"{_stats(aph)[0]:.3f} ({_stats(ap)[0]:.3f})")
        mean, lo, hi = _stats([r.final.mean_aph_l2 for r in runs])
        spread = f" [{lo:.3f}, {hi:.3f}]" if len(runs) > 1 else ""
        cells.append(f"{mean:.3f}{spread}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_run_table(results: Mapping[str, list[RunResult]]) -> str:
    """One row per run: its folder, final step, APH per class and mAPH L2."""
    classes = _classes(results)
    head = ["variant", "run", "step", *classes, "mAPH L2"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * (len(classes) + 1)]
    for label, runs in results.items():
        for r in runs:
            f = r.final
            cells = [label, r.path.name, str(f.step)]
            cells += [f"{f.aph.get(c, math.nan):.3f}" for c in classes]
            cells.append(f"{f.mean_aph_l2:.4f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_comparison_figure(
    results: Mapping[str, list[RunResult]], path: str | Path, final_label: str = "final"
) -> Path:
    """A PNG: validation mAPH L2 against training step per run (left), final APH L2 per
    class with one dot per run and a bar at the group mean (right; ``final_label`` names
    what the final metrics were measured on). Written atomically."""
    from perceive.viz.common import new_figure, save_figure

    fig = new_figure(11.0, 4.0)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:gray"]
    classes = [c for c in LEADERBOARD_CLASSES if c in _classes(results)]
    width = 0.8 / max(len(results), 1)
    for g, (label, runs) in enumerate(results.items()):
        colour = colours[g % len(colours)]
        for i, r in enumerate(runs):
            steps = [p.step for p in r.history]
            left.plot(
                steps,
                [p.mean_aph_l2 for p in r.history],
                marker="o",
                color=colour,
                alpha=0.9 if i == 0 else 0.6,
                label=label if i == 0 else None,
            )
        for k, c in enumerate(classes):
            x = k + (g - (len(results) - 1) / 2) * width
            vals = [r.final.aph.get(c, math.nan) for r in runs]
            right.bar(x, _stats(vals)[0], width * 0.9, color=colour, alpha=0.35)
            right.scatter([x] * len(vals), vals, color=colour, s=14, zorder=3)
    left.set_xlabel("training step")
    left.set_ylabel("mAPH L2 (validation)")
    left.grid(alpha=0.3)
    left.legend()
    right.set_xticks(range(len(classes)), classes)
    right.set_ylabel(f"APH L2, {final_label} (dots: runs; bars: mean)")
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_figure(fig, path)
