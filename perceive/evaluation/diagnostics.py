"""Where a detector's boxes go wrong: centre, size and heading errors of matched detections.

AP and APH say how good a detector is; these statistics say why. Every ground-truth box
is matched to the nearest detection of its type (BEV centre distance, at most
``max_distance`` metres, detections scoring at least ``min_score``), and the matched
pairs give the errors:

* heading error wrapped to ``[0, pi]``, and the same modulo ``pi`` (the error of the box
  *axis*, which is what the 3D IoU sees: a box turned by ``pi`` covers the same space);
* the fraction of matches whose heading is off by more than ``pi / 2`` ("flipped": the
  front taken for the back, which costs APH but not AP);
* BEV centre distance and the largest relative error of length, width and height.

>>> stats = box_error_stats(predictions, ground_truth)           # doctest: +SKIP
>>> print(format_box_errors(stats))                              # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perceive.evaluation.detections import FrameDetections

#: Default largest BEV centre distance of a match, metres.
MAX_DISTANCE = 1.0
#: Default lowest score of a detection taken into account.
MIN_SCORE = 0.2


@dataclass(frozen=True)
class BoxErrorStats:
    """Errors of the matched boxes of one object type."""

    type: int
    """Waymo ``Label.Type``."""
    num_ground_truth: int
    """Ground-truth boxes of this type."""
    num_matched: int
    """Of them, those with a detection of the type within the distance."""
    centre_distance: np.ndarray
    """(M,) float64 BEV distance between matched centres, metres."""
    heading_error: np.ndarray
    """(M,) float64 absolute heading error wrapped to [0, pi], radians."""
    axis_error: np.ndarray
    """(M,) float64 heading error modulo pi, in [0, pi/2], radians."""
    size_error: np.ndarray
    """(M,) float64 largest relative error of length, width, height (0.1 = 10 %)."""

    @property
    def flipped(self) -> float:
        """Fraction of matches with a heading error above pi / 2 (nan without matches)."""
        if self.num_matched == 0:
            return math.nan
        return float(np.mean(self.heading_error > math.pi / 2))


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.abs((angle + np.pi) % (2 * np.pi) - np.pi)


def box_error_stats(
    predictions: Sequence[FrameDetections],
    ground_truth: Sequence[FrameDetections],
    *,
    types: Sequence[int] = (1, 2, 4),
    max_distance: float = MAX_DISTANCE,
    min_score: float = MIN_SCORE,
) -> list[BoxErrorStats]:
    """Errors of the detections nearest to each ground-truth box, per object type.

    Frames are paired by ``(context_name, camera_name, timestamp_us)``, as the metrics pair
    them: a ground-truth frame without predictions has no matches (its boxes count in
    ``num_ground_truth``), predictions of frames without ground truth are ignored, and
    ground-truth boxes with no LiDAR point are left out (the metrics drop them too).

    Args:
        predictions: detections per frame (boxes in the vehicle frame, with scores).
        ground_truth: the ground truth per frame, in any order.
        types: Waymo types to report (default vehicle, pedestrian, cyclist).
        max_distance: largest BEV centre distance of a match, metres.
        min_score: detections scoring lower are ignored.

    Returns:
        One :class:`BoxErrorStats` per type, in ``types`` order.

    Raises:
        ValueError: two prediction (or two ground-truth) entries for one frame.
    """
    by_key: dict[tuple[str, int, int], FrameDetections] = {}
    for what, frames in (("prediction", predictions), ("ground-truth", ground_truth)):
        seen: set[tuple[str, int, int]] = set()
        for f in frames:
            if f.key in seen:
                raise ValueError(f"two {what} entries for frame {f.key}")
            seen.add(f.key)
            if what == "prediction":
                by_key[f.key] = f
    pairs = [(by_key.get(g.key), g) for g in ground_truth]
    out = []
    for t in types:
        n_gt = 0
        dist, head, size = [], [], []
        for p, g in pairs:
            gm = (g.boxes.type == t) & (g.boxes.num_lidar_points > 0)
            n_gt += int(gm.sum())
            if p is None or not gm.any():
                continue
            pm = (p.boxes.type == t) & (p.scores >= min_score)
            if not pm.any():
                continue
            gc, pc = g.boxes.center[gm, :2], p.boxes.center[pm, :2]
            d = np.linalg.norm(gc[:, None, :] - pc[None, :, :], axis=-1)
            nearest = d.argmin(axis=1)
            near = d[np.arange(len(nearest)), nearest]
            ok = near <= max_distance
            j = nearest[ok]
            dist.append(near[ok])
            head.append(_wrap(g.boxes.heading[gm][ok] - p.boxes.heading[pm][j]))
            gs = g.boxes.size[gm][ok].astype(np.float64)
            ps = p.boxes.size[pm][j].astype(np.float64)
            size.append(np.max(np.abs(ps / np.maximum(gs, 1e-6) - 1.0), axis=1))
        heading = np.concatenate(head) if head else np.zeros(0)
        out.append(
            BoxErrorStats(
                type=int(t),
                num_ground_truth=n_gt,
                num_matched=int(heading.shape[0]),
                centre_distance=np.concatenate(dist) if dist else np.zeros(0),
                heading_error=heading,
                axis_error=np.minimum(heading, np.pi - heading),
                size_error=np.concatenate(size) if size else np.zeros(0),
            )
        )
    return out


def format_box_errors(stats: Sequence[BoxErrorStats]) -> str:
    """A table: per type, matches, flipped fraction and medians / 90th percentiles."""
    from perceive.viz.common import type_name

    head = (
        f"{'type':<11}{'matched':>12}{'flipped':>9}{'axis err p50/p90 (deg)':>25}"
        f"{'centre p50/p90 (m)':>21}{'size err p50':>14}"
    )
    lines = [head, "-" * len(head)]
    for s in stats:
        if s.num_matched == 0:
            lines.append(f"{type_name(s.type):<11}{f'0/{s.num_ground_truth}':>12}")
            continue
        ax = np.degrees(np.percentile(s.axis_error, [50, 90]))
        cd = np.percentile(s.centre_distance, [50, 90])
        lines.append(
            f"{type_name(s.type):<11}{f'{s.num_matched}/{s.num_ground_truth}':>12}"
            f"{s.flipped:>9.2f}{f'{ax[0]:.1f} / {ax[1]:.1f}':>25}"
            f"{f'{cd[0]:.2f} / {cd[1]:.2f}':>21}{np.median(s.size_error):>14.2f}"
        )
    return "\n".join(lines)
