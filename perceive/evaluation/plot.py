"""Pictures of detection metrics: precision/recall curves per object type."""

from __future__ import annotations

from pathlib import Path

from perceive.evaluation.metrics import METRIC_TYPES, Metrics
from perceive.io.atomic import atomic_open


def plot_pr_curves(metrics: Metrics, path: str | Path, level: int = 2) -> Path:
    """Draw the precision/recall curves of every object type at one level, as a PNG.

    Two panels: precision and heading-weighted precision against recall, one line per
    type through the points of the score cutoffs that have a hit, with AP and APH in
    the legend.

    Args:
        metrics: the result of :func:`~perceive.evaluation.metrics.evaluate_detections`.
        path: the PNG to write (atomically; the folder is created if missing).
        level: difficulty level, 1 or 2.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    for t in METRIC_TYPES:
        b = metrics[f"OBJECT_TYPE_TYPE_{t}_LEVEL_{level}"]
        if b.num_ground_truth == 0:
            continue
        seen = b.recall > 0  # cutoffs with no hit carry the conventional precision 1
        r = b.recall[seen]
        axes[0].plot(r, b.precision[seen], ".-", ms=3, label=f"{t.lower()} AP {b.ap:.3f}")
        axes[1].plot(r, b.precision_ha[seen], ".-", ms=3, label=f"{t.lower()} APH {b.aph:.3f}")
    for ax, what in zip(axes, ("precision", "heading-weighted precision"), strict=True):
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
    fig.suptitle(
        f"LEVEL_{level}: {metrics.num_frames} frames, mAPH L2 {metrics.mean_aph_l2:.4f} "
        "(vehicle, pedestrian, cyclist)"
    )
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
