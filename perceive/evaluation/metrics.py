"""Waymo Open Dataset 3D detection metrics: AP and APH at LEVEL_1 and LEVEL_2.

Our implementation of what the official ``compute_detection_metrics_main`` computes
(see ``docs/waymo-format.md``, "Detection metrics"):

- Ground truth with no LiDAR point in its box is dropped; a ground truth without a
  difficulty is LEVEL_2 when it has at most 5 points, else LEVEL_1.
- Breakdowns: ``OBJECT_TYPE`` (one shard per type) and ``RANGE`` (per type and per
  distance of the box centre from the vehicle frame origin, ``sqrt(x^2 + y^2 + z^2)``
  as the official breakdown generator computes it, in [0, 30), [30, 50), [50, +inf)
  metres). Predictions and ground truth are assigned to a shard by their own type and
  range, and matched within the shard. Each shard is reported at LEVEL_1 and LEVEL_2.
- For every frame, shard and score cutoff (0.00, 0.01, ..., 0.99, 1.0), the
  predictions scoring at least the cutoff are matched one-to-one to the shard's
  ground truth by the Hungarian algorithm, maximising the sum of IoUs (quantised to
  1e-6) over pairs of the same type with 3D IoU at least the type's threshold
  (VEHICLE 0.7, PEDESTRIAN 0.5, SIGN 0.5, CYCLIST 0.5). Where several matchings tie
  exactly, which one is taken can differ from the official solver's (it matches the
  whole frame at once, this module each connected component apart): the only known
  difference from the official op (``tools/check_official_metrics.py``).
- A matched prediction is a true positive, weighted for APH by its heading accuracy
  ``1 - |dtheta| / pi`` (dtheta wrapped to [0, pi]); an unmatched prediction is a false
  positive unless it overlaps a no-label zone (``overlap_with_nlz``); an unmatched
  ground truth is a miss at the levels at or above its own.
- Precision ``TP / (TP + FP)`` (0 when there is no prediction), recall
  ``TP / (TP + FN)``; where recall is 0 precision is set to 1. AP integrates the
  precision/recall points as :func:`average_precision` describes.
- The leaderboard figure is the mean APH at LEVEL_2 over VEHICLE, PEDESTRIAN, CYCLIST.

How it is made fast: IoUs are computed once for all frames, only for pairs of the
same frame and type whose bounding circles meet. Predictions enter the matching in
score order, so the prediction set of a cutoff is a prefix of the sorted list; the
match of a shard changes only inside the connected components of its graph of
matchable pairs. A component of one prediction and one ground truth (the common
case) is matched from its prediction's cutoff on, for all such components at once;
a larger component is matched again only at the cutoffs where one of its own
predictions enters. Counts are accumulated per cutoff as differences and summed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from perceive.errors import ConfigError, DataError
from perceive.evaluation.detections import FrameDetections
from perceive.geometry.iou import box_iou_3d_pairs

#: Waymo ``Label.Type`` names of the types the metrics report, in shard order (type - 1).
METRIC_TYPES: tuple[str, ...] = ("VEHICLE", "PEDESTRIAN", "SIGN", "CYCLIST")
#: Range shards of the ``RANGE`` breakdown: upper bounds (metres) and official names.
RANGE_BOUNDS: tuple[float, ...] = (30.0, 50.0)
RANGE_NAMES: tuple[str, ...] = ("[0, 30)", "[30, 50)", "[50, +inf)")
#: Difficulty levels every breakdown is reported at.
LEVELS: tuple[int, ...] = (1, 2)
#: Types averaged into the leaderboard figure (mAPH at LEVEL_2).
LEADERBOARD_TYPES: tuple[str, ...] = ("VEHICLE", "PEDESTRIAN", "CYCLIST")
#: Boxes with a dimension at or below this (metres) have IoU 0 with everything (official).
MIN_BOX_DIM = 1e-2
#: Boxes with a dimension at or above this (metres) have IoU 0 with everything (official).
MAX_BOX_DIM = 1e6
#: IoUs are quantised to integers of this scale for the Hungarian matching (official).
IOU_QUANTUM = 1_000_000

_NUM_TYPES = len(METRIC_TYPES)
_NUM_RANGES = len(RANGE_NAMES)
#: Shards: OBJECT_TYPE (4), then RANGE (4 x 3).
_NUM_SHARDS = _NUM_TYPES + _NUM_TYPES * _NUM_RANGES
#: Statistics accumulated per shard and cutoff for matched pairs.
_TP, _HA, _TP_COUNTED_FP, _GT_L1, _GT_L2 = range(5)


def _default_cutoffs() -> tuple[float, ...]:
    return (*(i * 0.01 for i in range(100)), 1.0)


@dataclass(frozen=True)
class DetectionMetricsConfig:
    """Settings of the detection metrics; the defaults are the official ones."""

    iou_thresholds: tuple[float, float, float, float] = (0.7, 0.5, 0.5, 0.5)
    """3D IoU a match needs, per type: VEHICLE, PEDESTRIAN, SIGN, CYCLIST (Waymo type order)."""
    score_cutoffs: tuple[float, ...] = field(default_factory=_default_cutoffs)
    """Ascending score cutoffs; each gives one precision/recall point."""
    recall_delta: float = 0.05
    """Largest recall gap of the interpolated precision/recall curve."""
    level2_max_points: int = 5
    """A ground truth without a difficulty is LEVEL_2 with at most this many LiDAR points."""

    def __post_init__(self) -> None:
        th = tuple(float(t) for t in self.iou_thresholds)
        if len(th) != _NUM_TYPES or not all(0.0 < t <= 1.0 for t in th):
            raise ConfigError(
                f"iou_thresholds needs {_NUM_TYPES} values in (0, 1], got {self.iou_thresholds}"
            )
        cut = tuple(float(c) for c in self.score_cutoffs)
        if not cut or any(b <= a for a, b in itertools.pairwise(cut)):
            raise ConfigError("score_cutoffs must be a non-empty strictly ascending sequence")
        if not all(np.isfinite(cut)):
            raise ConfigError("score_cutoffs must be finite")
        if not 0.0 < self.recall_delta <= 1.0:
            raise ConfigError(f"recall_delta must be in (0, 1], got {self.recall_delta}")
        if self.level2_max_points < 0:
            raise ConfigError(f"level2_max_points must be >= 0, got {self.level2_max_points}")
        object.__setattr__(self, "iou_thresholds", th)
        object.__setattr__(self, "score_cutoffs", cut)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "iou_thresholds": dict(zip(METRIC_TYPES, self.iou_thresholds, strict=True)),
            "score_cutoffs": list(self.score_cutoffs),
            "recall_delta": self.recall_delta,
            "level2_max_points": self.level2_max_points,
        }


@dataclass(frozen=True, eq=False)
class BreakdownMetrics:
    """AP and APH of one breakdown shard at one difficulty level, with its curve."""

    name: str
    """Official breakdown name, e.g. ``OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2`` or
    ``RANGE_TYPE_PEDESTRIAN_[30, 50)_LEVEL_1``."""
    generator: str
    """``"OBJECT_TYPE"`` or ``"RANGE"``."""
    object_type: str
    """``"VEHICLE"``, ``"PEDESTRIAN"``, ``"SIGN"`` or ``"CYCLIST"``."""
    range_bin: str | None
    """``"[0, 30)"``, ``"[30, 50)"``, ``"[50, +inf)"``, or None for OBJECT_TYPE."""
    level: int
    """Difficulty level: 1 or 2."""
    ap: float
    """Average precision."""
    aph: float
    """Heading-accuracy weighted average precision."""
    num_ground_truth: int
    """Ground truth objects of the shard at this level (those that count as misses)."""
    score_cutoffs: np.ndarray
    """(C,) float32 score cutoffs."""
    precision: np.ndarray
    """(C,) float32 precision at each cutoff."""
    precision_ha: np.ndarray
    """(C,) float32 heading-weighted precision at each cutoff."""
    recall: np.ndarray
    """(C,) float32 recall at each cutoff."""
    tp: np.ndarray
    """(C,) int64 true positives at each cutoff."""
    fp: np.ndarray
    """(C,) int64 false positives at each cutoff."""
    fn: np.ndarray
    """(C,) int64 misses at each cutoff."""

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-ready form; ``curves`` adds the per-cutoff arrays."""
        d: dict[str, Any] = {
            "generator": self.generator,
            "object_type": self.object_type,
            "range": self.range_bin,
            "level": self.level,
            "ap": self.ap,
            "aph": self.aph,
            "num_ground_truth": self.num_ground_truth,
        }
        if curves:
            d["curve"] = {
                "score_cutoffs": [round(float(c), 6) for c in self.score_cutoffs],
                "precision": [float(v) for v in self.precision],
                "precision_ha": [float(v) for v in self.precision_ha],
                "recall": [float(v) for v in self.recall],
                "tp": [int(v) for v in self.tp],
                "fp": [int(v) for v in self.fp],
                "fn": [int(v) for v in self.fn],
            }
        return d


@dataclass(frozen=True, eq=False)
class Metrics:
    """Result of :func:`evaluate_detections`: every breakdown and the leaderboard figure."""

    breakdowns: tuple[BreakdownMetrics, ...]
    """All breakdowns in the official order (OBJECT_TYPE then RANGE; LEVEL_1 then LEVEL_2)."""
    mean_ap_l2: float
    """Mean AP at LEVEL_2 over VEHICLE, PEDESTRIAN, CYCLIST."""
    mean_aph_l2: float
    """Mean APH at LEVEL_2 over VEHICLE, PEDESTRIAN, CYCLIST (the leaderboard figure)."""
    num_frames: int
    """Frames evaluated (with predictions, ground truth or both)."""
    num_predictions: int
    """Predictions evaluated."""
    num_ground_truth: int
    """Ground truth objects kept (with at least one LiDAR point)."""
    num_ground_truth_dropped: int
    """Ground truth objects dropped for having no LiDAR point."""
    config: DetectionMetricsConfig
    """The settings used."""

    def __getitem__(self, name: str) -> BreakdownMetrics:
        for b in self.breakdowns:
            if b.name == name:
                return b
        raise KeyError(f"no breakdown {name!r}; names are like {self.breakdowns[0].name!r}")

    @property
    def names(self) -> list[str]:
        """Breakdown names in order."""
        return [b.name for b in self.breakdowns]

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-ready form (breakdowns keyed by their official names)."""
        return {
            "mean_ap_l2": self.mean_ap_l2,
            "mean_aph_l2": self.mean_aph_l2,
            "num_frames": self.num_frames,
            "num_predictions": self.num_predictions,
            "num_ground_truth": self.num_ground_truth,
            "num_ground_truth_dropped": self.num_ground_truth_dropped,
            "config": self.config.to_dict(),
            "breakdowns": {b.name: b.to_dict(curves) for b in self.breakdowns},
        }

    def table(self) -> str:
        """A readable table: one row per breakdown with AP, APH and its ground truth count."""
        width = max(len(b.name) for b in self.breakdowns)
        lines = [f"{'breakdown':<{width}}  {'AP':>7}  {'APH':>7}  {'GT':>7}"]
        lines.append("-" * len(lines[0]))
        for b in self.breakdowns:
            lines.append(f"{b.name:<{width}}  {b.ap:7.4f}  {b.aph:7.4f}  {b.num_ground_truth:7d}")
        lines.append("-" * len(lines[0]))
        lines.append(
            f"mAP L2 {self.mean_ap_l2:.4f}, mAPH L2 {self.mean_aph_l2:.4f} "
            f"(mean over {', '.join(t.lower() for t in LEADERBOARD_TYPES)}); "
            f"{self.num_frames} frames, {self.num_predictions} predictions, "
            f"{self.num_ground_truth} ground truth "
            f"({self.num_ground_truth_dropped} dropped: no LiDAR point)"
        )
        return "\n".join(lines)


def breakdown_names() -> list[str]:
    """Official names of every breakdown, in the order of :attr:`Metrics.breakdowns`."""
    return [name for name, *_ in _shard_table_with_levels()]


def _shard_table() -> list[tuple[str, str, str, str | None]]:
    """(name prefix, generator, type, range) of each shard in shard-index order."""
    out: list[tuple[str, str, str, str | None]] = [
        (f"OBJECT_TYPE_TYPE_{t}", "OBJECT_TYPE", t, None) for t in METRIC_TYPES
    ]
    out += [(f"RANGE_TYPE_{t}_{r}", "RANGE", t, r) for t in METRIC_TYPES for r in RANGE_NAMES]
    return out


def _shard_table_with_levels() -> list[tuple[str, int, str, str, str | None, int]]:
    return [
        (f"{prefix}_LEVEL_{lv}", s, gen, t, r, lv)
        for s, (prefix, gen, t, r) in enumerate(_shard_table())
        for lv in LEVELS
    ]


def average_precision(
    precision: np.ndarray, recall: np.ndarray, recall_delta: float = 0.05
) -> float:
    """Area under a precision/recall curve, interpolated as the Waymo metrics do.

    Keep, per recall value, the highest precision, and add the point (recall 0,
    precision 1). Walk from the highest recall down carrying the running maximum
    precision; wherever two consecutive recalls are more than ``recall_delta`` apart,
    insert points every ``recall_delta`` below the higher one with the running
    maximum. Then give the recall-0 point the precision of its neighbour and
    integrate with the trapezoid rule over recall. Arithmetic is float32, as in the
    official tool.

    Args:
        precision: (C,) precision at each score cutoff.
        recall: (C,) recall at each score cutoff.
        recall_delta: largest recall gap.

    Returns:
        The average precision, 0 for an empty curve or one that never leaves recall 0.
        It is in [0, 1] up to float32 rounding: the sum of the float32 trapezoids of a
        perfect curve is 1.0000001, not 1.
    """
    p = np.asarray(precision, np.float32).reshape(-1)
    r = np.asarray(recall, np.float32).reshape(-1)
    if p.shape != r.shape:
        raise ValueError(f"precision {p.shape} and recall {r.shape} differ in shape")
    if p.size == 0 or not (r > 0).any():
        return 0.0
    # Highest precision per recall value, and the point (0, 1).
    order = np.argsort(r, kind="stable")
    uniq, first = np.unique(r[order], return_index=True)
    best = np.maximum.reduceat(p[order], first)
    if uniq[0] == 0.0:
        best[0] = max(best[0], np.float32(1.0))
    else:
        uniq = np.concatenate([[np.float32(0.0)], uniq])
        best = np.concatenate([[np.float32(1.0)], best])

    def f32(x: float) -> float:  # round to float32, as the official float arithmetic does
        return float(np.float32(x))

    delta = f32(recall_delta)
    gap = f32(delta + f32(1e-6))
    points: list[tuple[float, float]] = []  # (precision, recall), recall descending
    last = 0.0
    running = 0.0
    for rec, prec in zip(uniq[::-1].tolist(), best[::-1].tolist(), strict=True):
        while f32(last - rec) > gap:
            last = f32(last - delta)
            points.append((running, last))
        running = max(running, prec)
        points.append((running, rec))
        last = rec
    points[-1] = (points[-2][0], points[-1][1])
    area = 0.0
    for (p0, r0), (p1, r1) in itertools.pairwise(points):
        area = f32(area + 0.5 * f32(r0 - r1) * f32(p0 + p1))
    return area


def _heading_accuracy(pred_heading: np.ndarray, gt_heading: np.ndarray) -> np.ndarray:
    """(K,) ``1 - |dtheta| / pi`` with dtheta the heading difference wrapped to [0, pi]."""
    wrap = lambda a: (np.asarray(a, np.float64) + np.pi) % (2 * np.pi) - np.pi  # noqa: E731
    d = np.abs(wrap(pred_heading) - wrap(gt_heading))
    d = np.where(d > np.pi, 2 * np.pi - d, d)
    return np.clip(1.0 - d / np.pi, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class _Flat:
    """Objects of all frames concatenated."""

    frame: np.ndarray  # (N,) int64 frame index
    boxes: np.ndarray  # (N, 7) float64
    type: np.ndarray  # (N,) int64 Waymo type
    score: np.ndarray  # (N,) float32
    nlz: np.ndarray  # (N,) bool
    difficulty: np.ndarray  # (N,) int64
    points: np.ndarray  # (N,) int64


def _flatten(
    frames: Sequence[FrameDetections], index: dict[tuple[str, int, int], int], what: str
) -> _Flat:
    parts = [f for f in frames if len(f)]
    if not parts:
        z = np.zeros(0)
        return _Flat(
            z.astype(np.int64),
            np.zeros((0, 7)),
            z.astype(np.int64),
            z.astype(np.float32),
            z.astype(bool),
            z.astype(np.int64),
            z.astype(np.int64),
        )
    boxes = np.concatenate(
        [np.concatenate([f.boxes.center, f.boxes.size, f.boxes.heading[:, None]], 1) for f in parts]
    )
    score = np.concatenate([f.scores for f in parts]).astype(np.float32)
    bad = ~(np.isfinite(boxes).all(axis=1) & np.isfinite(score))
    if bad.any():
        i = int(np.argmax(bad))
        counts = np.cumsum([len(f) for f in parts])
        fi = int(np.searchsorted(counts, i, side="right"))
        start = int(counts[fi - 1]) if fi else 0
        raise DataError(
            f"{what} {i - start} of frame {parts[fi].key} has a non-finite box or score"
        )
    return _Flat(
        frame=np.concatenate([np.full(len(f), index[f.key], np.int64) for f in parts]),
        boxes=boxes,
        type=np.concatenate([f.boxes.type for f in parts]).astype(np.int64),
        score=score,
        nlz=np.concatenate([f.overlap_with_nlz for f in parts]).astype(bool),
        difficulty=np.concatenate([f.boxes.difficulty for f in parts]).astype(np.int64),
        points=np.concatenate([f.boxes.num_lidar_points for f in parts]).astype(np.int64),
    )


def _shards(boxes: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) OBJECT_TYPE shard and (N,) RANGE shard of each object (-1: in none)."""
    valid = (types >= 1) & (types <= _NUM_TYPES)
    t = np.where(valid, types - 1, -1)
    rng = np.sqrt((boxes[:, :3] ** 2).sum(axis=1))
    bin_ = np.searchsorted(np.asarray(RANGE_BOUNDS), rng, side="right")
    r = np.where(valid, _NUM_TYPES + _NUM_RANGES * t + bin_, -1)
    return t, r


def _same_frame_type_pairs(pk: np.ndarray, gk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (prediction, ground truth) index pairs with equal keys (frame and type)."""
    order = np.argsort(gk, kind="stable")
    sk = gk[order]
    lo = np.searchsorted(sk, pk, side="left")
    cnt = np.searchsorted(sk, pk, side="right") - lo
    total = int(cnt.sum())
    pi = np.repeat(np.arange(pk.shape[0]), cnt)
    start = np.repeat(np.cumsum(cnt) - cnt, cnt)
    gi = order[np.repeat(lo, cnt) + (np.arange(total) - start)]
    return pi, gi


def _may_overlap(a: np.ndarray, ia: np.ndarray, b: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """(K,) bool: boxes ``a[ia[k]]`` and ``b[ib[k]]`` have meeting bounding circles and
    height intervals (otherwise their IoU is 0)."""
    ra = 0.5 * np.hypot(a[:, 3], a[:, 4])
    rb = 0.5 * np.hypot(b[:, 3], b[:, 4])
    d2 = (a[ia, 0] - b[ib, 0]) ** 2 + (a[ia, 1] - b[ib, 1]) ** 2
    r = ra[ia] + rb[ib]
    ok = d2 <= r * r
    dz = np.abs(a[ia, 2] - b[ib, 2])
    return ok & (dz <= 0.5 * (a[ia, 5] + b[ib, 5]))


def _dims_ok(b: np.ndarray) -> np.ndarray:
    dims = b[:, 3:6]
    return ((dims > MIN_BOX_DIM) & (dims < MAX_BOX_DIM)).all(axis=1)


def evaluate_detections(
    predictions: Iterable[FrameDetections],
    ground_truth: Iterable[FrameDetections],
    config: DetectionMetricsConfig | None = None,
) -> Metrics:
    """Waymo 3D detection metrics of predictions against ground truth.

    Args:
        predictions: per-frame predictions (scores in [0, 1], Waymo types). Frames are
            matched to the ground truth by ``(context_name, camera_name, timestamp_us)``;
            several entries with one key are merged.
        ground_truth: per-frame ground truth, with ``difficulty`` and
            ``num_lidar_points`` in its boxes (boxes with no point are dropped).
        config: settings; None for the official ones.

    Returns:
        Every breakdown's AP and APH, and the leaderboard figure.

    Raises:
        DataError: a box or score is not finite.
    """
    cfg = DetectionMetricsConfig() if config is None else config
    preds = list(predictions)
    gts = list(ground_truth)
    index: dict[tuple[str, int, int], int] = {}
    for f in (*gts, *preds):
        index.setdefault(f.key, len(index))
    P = _flatten(preds, index, "prediction")
    G = _flatten(gts, index, "ground truth")

    # Ground truth: drop boxes without points; fill in missing difficulty levels.
    keep = G.points > 0
    dropped = int((~keep).sum())
    g_frame, g_boxes, g_type = G.frame[keep], G.boxes[keep], G.type[keep]
    g_points, g_diff = G.points[keep], G.difficulty[keep]
    g_diff = np.where(g_diff == 0, np.where(g_points <= cfg.level2_max_points, 2, 1), g_diff)

    cutoffs32 = np.asarray(cfg.score_cutoffs, np.float32)
    C = cutoffs32.shape[0]
    # Index of the highest cutoff each prediction passes (-1: none).
    p_cut = np.searchsorted(cutoffs32, P.score, side="right") - 1
    p_tshard, p_rshard = _shards(P.boxes, P.type)
    g_tshard, g_rshard = _shards(g_boxes, g_type)

    # Accumulators: matched-pair statistics per (shard, cutoff) as differences; the
    # predictions that are not no-label-zone ones per (shard, cutoff).
    acc = np.zeros((_NUM_SHARDS, C, 5))
    pred_count = np.zeros((_NUM_SHARDS, C))
    live = p_cut >= 0
    for sh in (p_tshard, p_rshard):
        m = live & (sh >= 0) & ~P.nlz
        np.add.at(pred_count, (sh[m], p_cut[m]), 1.0)
    gt_count = np.zeros((_NUM_SHARDS, len(LEVELS)))
    for sh in (g_tshard, g_rshard):
        m = sh >= 0
        for li, lv in enumerate(LEVELS):
            np.add.at(gt_count[:, li], sh[m & (g_diff <= lv)], 1.0)

    # Matchable pairs: same frame and type, IoU at or above the type's threshold.
    cand_p = np.nonzero(live & (p_tshard >= 0) & _dims_ok(P.boxes))[0]
    cand_g = np.nonzero((g_tshard >= 0) & _dims_ok(g_boxes))[0]
    pi, gi = _same_frame_type_pairs(
        P.frame[cand_p] * (_NUM_TYPES + 1) + P.type[cand_p],
        g_frame[cand_g] * (_NUM_TYPES + 1) + g_type[cand_g],
    )
    pi, gi = cand_p[pi], cand_g[gi]
    near = _may_overlap(P.boxes, pi, g_boxes, gi)
    pi, gi = pi[near], gi[near]
    iou = box_iou_3d_pairs(P.boxes[pi], g_boxes[gi]).astype(np.float32)
    thr = np.asarray(cfg.iou_thresholds, np.float32)[P.type[pi] - 1]
    ok = iou >= thr
    pi, gi, iou = pi[ok], gi[ok], iou[ok]
    weight = np.round(iou.astype(np.float64) * IOU_QUANTUM)
    # Statistics a matched pair contributes.
    stats = np.stack(
        [
            np.ones(pi.shape[0]),
            _heading_accuracy(P.boxes[pi, 6], g_boxes[gi, 6]),
            (~P.nlz[pi]).astype(np.float64),
            (g_diff[gi] <= 1).astype(np.float64),
            (g_diff[gi] <= 2).astype(np.float64),
        ],
        axis=1,
    )

    for p_sh, g_sh in ((p_tshard, g_tshard), (p_rshard, g_rshard)):
        same = p_sh[pi] == g_sh[gi]
        _match_shard_edges(
            acc,
            pi[same],
            gi[same],
            weight[same],
            stats[same],
            p_sh[pi[same]],
            p_cut,
            P.score,
            P.boxes.shape[0],
            g_boxes.shape[0],
        )

    # Differences -> values at each cutoff (a prediction at cutoff j counts for j' <= j).
    cum = np.cumsum(acc[:, ::-1], axis=1)[:, ::-1]
    pred_cum = np.cumsum(pred_count[:, ::-1], axis=1)[:, ::-1]
    tp = cum[..., _TP]
    fp = pred_cum - cum[..., _TP_COUNTED_FP]

    breakdowns = []
    for name, shard, gen, typ, rng, lv in _shard_table_with_levels():
        li = LEVELS.index(lv)
        n_gt = gt_count[shard, li]
        matched_gt = cum[shard, :, _GT_L1 if lv == 1 else _GT_L2]
        fn = n_gt - matched_gt
        t, f = tp[shard], fp[shard]
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(t + f > 0, t / np.maximum(t + f, 1), 0.0).astype(np.float32)
            prec_ha = np.where(t + f > 0, cum[shard, :, _HA] / np.maximum(t + f, 1), 0.0).astype(
                np.float32
            )
            rec = np.where(t + fn > 0, t / np.maximum(t + fn, 1), 0.0).astype(np.float32)
        prec = np.where(rec == 0, np.float32(1.0), prec)
        prec_ha = np.where(rec == 0, np.float32(1.0), prec_ha)
        breakdowns.append(
            BreakdownMetrics(
                name=name,
                generator=gen,
                object_type=typ,
                range_bin=rng,
                level=lv,
                ap=average_precision(prec, rec, cfg.recall_delta),
                aph=average_precision(prec_ha, rec, cfg.recall_delta),
                num_ground_truth=round(float(n_gt)),
                score_cutoffs=cutoffs32.copy(),
                precision=prec,
                precision_ha=prec_ha,
                recall=rec,
                tp=np.rint(t).astype(np.int64),
                fp=np.rint(f).astype(np.int64),
                fn=np.rint(fn).astype(np.int64),
            )
        )
    by_name = {b.name: b for b in breakdowns}
    lb = [by_name[f"OBJECT_TYPE_TYPE_{t}_LEVEL_2"] for t in LEADERBOARD_TYPES]
    return Metrics(
        breakdowns=tuple(breakdowns),
        mean_ap_l2=float(np.mean([b.ap for b in lb])),
        mean_aph_l2=float(np.mean([b.aph for b in lb])),
        num_frames=len(index),
        num_predictions=int(P.boxes.shape[0]),
        num_ground_truth=int(keep.sum()),
        num_ground_truth_dropped=dropped,
        config=cfg,
    )


def _match_shard_edges(
    acc: np.ndarray,
    pe: np.ndarray,
    ge: np.ndarray,
    weight: np.ndarray,
    stats: np.ndarray,
    shard: np.ndarray,
    p_cut: np.ndarray,
    p_score: np.ndarray,
    num_pred: int,
    num_gt: int,
) -> None:
    """Add the matched-pair statistics of one breakdown generator to ``acc``.

    Args:
        acc: (S, C, 5) differences of matched statistics per shard and cutoff.
        pe, ge: (E,) prediction and ground truth index of each matchable pair, both in
            the same shard of this generator.
        weight: (E,) quantised IoU of each pair.
        stats: (E, 5) statistics each pair adds when matched.
        shard: (E,) the pair's shard.
        p_cut: (num_pred,) highest cutoff index each prediction passes.
        p_score: (num_pred,) prediction scores (to order predictions within a cutoff).
        num_pred, num_gt: numbers of predictions and ground truth objects.
    """
    if pe.size == 0:
        return
    n_nodes = num_pred + num_gt
    graph = coo_matrix((np.ones(pe.size), (pe, num_pred + ge)), shape=(n_nodes, n_nodes))
    _, label = connected_components(graph, directed=False)
    comp = label[pe]
    edges_per_comp = np.bincount(comp)
    single = edges_per_comp[comp] == 1
    # One prediction, one ground truth: matched at every cutoff the prediction passes.
    s = np.nonzero(single)[0]
    np.add.at(acc, (shard[s], p_cut[pe[s]]), stats[s])
    # Larger components: Hungarian matching at each cutoff where one of their predictions
    # enters. Number each component's predictions (rows, by decreasing cutoff, then
    # score) and ground truths (columns) with a few global sorts.
    rest = np.nonzero(~single)[0]
    if rest.size == 0:
        return
    rc, rp, rg = comp[rest], pe[rest], ge[rest]
    order = np.lexsort((rp, -p_score[rp].astype(np.float64), -p_cut[rp], rc))
    rest, rc, rp, rg = rest[order], rc[order], rp[order], rg[order]
    starts = np.r_[0, np.nonzero(np.diff(rc))[0] + 1]
    group_of = np.cumsum(np.r_[False, rc[1:] != rc[:-1]])
    new_row = np.r_[True, (rp[1:] != rp[:-1]) | (rc[1:] != rc[:-1])]
    row_id = np.cumsum(new_row) - 1
    row = row_id - row_id[starts][group_of]
    by_gt = np.lexsort((rg, rc))
    new_col = np.r_[True, (rg[by_gt][1:] != rg[by_gt][:-1]) | (rc[by_gt][1:] != rc[by_gt][:-1])]
    col_id = np.cumsum(new_col) - 1
    col = np.empty_like(col_id)
    col[by_gt] = col_id - col_id[np.searchsorted(rc[by_gt], rc[by_gt], side="left")]
    ends = np.r_[starts[1:], rest.size]
    cut_of_edge = p_cut[rp]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        _match_component(
            acc,
            row[a:b],
            col[a:b],
            cut_of_edge[a:b],
            weight[rest[a:b]],
            stats[rest[a:b]],
            int(shard[rest[a]]),
        )


def _match_component(
    acc: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    cut: np.ndarray,
    weight: np.ndarray,
    stats: np.ndarray,
    shard: int,
) -> None:
    """Match one connected component at every cutoff where its matching can change.

    Args:
        acc: (S, C, 5) differences of matched statistics per shard and cutoff.
        row: (E,) each pair's prediction, numbered 0.. by decreasing cutoff index.
        col: (E,) each pair's ground truth, numbered 0...
        cut: (E,) the cutoff index of each pair's prediction.
        weight: (E,) quantised IoU of each pair.
        stats: (E, 5) statistics each pair adds when matched.
        shard: the component's shard.
    """
    n_p, n_g = int(row[-1]) + 1, int(col.max()) + 1
    w = np.zeros((n_p, n_g))
    w[row, col] = weight
    valid = np.zeros((n_p, n_g), bool)
    valid[row, col] = True
    st = np.zeros((n_p, n_g, stats.shape[1]))
    st[row, col] = stats
    cuts = np.empty(n_p, np.int64)
    cuts[row] = cut
    # Prefix ends: the last prediction of each distinct cutoff index.
    ends = (np.nonzero(np.r_[cuts[1:] != cuts[:-1], True])[0] + 1).tolist()
    prev = np.zeros(stats.shape[1])
    for k in ends:
        if n_g == 1:
            r = int(np.argmax(w[:k, 0]))
            cur = st[r, 0]
        else:
            rows, cols = linear_sum_assignment(w[:k], maximize=True)
            m = valid[rows, cols]
            cur = st[rows[m], cols[m]].sum(axis=0)
        acc[shard, cuts[k - 1]] += cur - prev
        prev = cur
