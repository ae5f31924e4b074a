"""OPTIONAL, run by hand: perceive's Waymo 3D detection metrics against the official op.

Usage:  .venv/bin/python tools/check_official_metrics.py --official-python PYTHON
            [--seeds 0 1 2] [--kinds mixed,crowded,flips,dense,edge,ties,threshold]
            [--frames 6] [--out DIR] [--negative-control]

Generates seeded synthetic scenes (ground truth with difficulty and LiDAR point counts,
predictions with scores and no-label-zone flags), writes each as an .npz to DIR (default:
a temporary folder; both sides' results go beside them), evaluates them with the official
``waymo-open-dataset`` op (``tools/_official_metrics_side.py``, run by PYTHON in a
subprocess) and with ``perceive.evaluation.evaluate_detections`` (in this process), and
compares the 32 breakdowns (OBJECT_TYPE x 4 and RANGE x 12, at LEVEL_1 and LEVEL_2): AP,
APH, and the per-cutoff TP / FP / FN counts, precision, recall and heading-weighted
precision.

Scene kinds (random ones have FRAMES frames, plus a frame of predictions only and one of
ground truth only):

- mixed: cars, pedestrians, signs, cyclists at 2-85 m, many near the 30 / 50 m range
  bounds; missed objects, double detections, wrong types, false positives, scores on
  the cutoffs, 0 and 1; objects with 0 or 1-5 points, unknown difficulties.
- crowded: pedestrian crowds on a 0.55-0.9 m grid, with a few cyclists.
- flips: like mixed, with 40 % of the headings turned by pi.
- dense: clusters of heavily overlapping same-type objects (several candidates each).
- edge: hand-made: IoU within ulps of 0.7 / 0.5, matching ties, headings outside
  [-pi, pi), centres on the range bounds, sizes at the 0.01 m minimum, type 0, scores
  on the cutoffs, no-label-zone predictions.
- ties: exact Hungarian ties where the tie-break decides LEVEL_1 TP and heading accuracy.
- ties-lone (not run by default): ties plus, in their own frames, a tie after a lone
  prediction: there the official tie-break depends on the rest of the frame, and
  perceive's did not follow it when this tool was written.
- threshold: 600 single-pair frames with IoU a few float32 ulps from the threshold.

Prints one row per kind and seed. Exit status: 0 when every |dAP| and |dAPH| is at most
1e-4, 1 when one is larger, 2 when the official side cannot run (or a usage error).

--negative-control gives perceive a perturbed copy of each scene (no-label-zone flags
dropped, every 7th prediction's heading turned by pi) while the official op gets the
original: the check must then report differences and exit 1.

Official environment: Python 3.10 (the package has no wheel for 3.11), a throwaway
virtual environment outside the repository (perceive itself never needs TensorFlow):

    /root/.pyenv/versions/3.10.13/bin/python -m venv /tmp/wodvenv
    /tmp/wodvenv/bin/pip install "tensorflow==2.13.*" numpy==1.24.3 protobuf==3.20.3
    /tmp/wodvenv/bin/pip download --no-deps -d /tmp/wheels waymo-open-dataset-tf-2-12-0==1.6.7
    /tmp/wodvenv/bin/pip install --no-deps /tmp/wheels/waymo_open_dataset_tf_2_12_0-1.6.7-*.whl

The wheel goes in without its dependencies (it pins some twenty exact versions, numpy
1.23.5 among them, mostly of packages the metrics op does not use); the op imports with
nothing more. Despite its name, the "tf-2-12-0" wheel 1.6.7 is built against
TensorFlow 2.13 (its metadata asks for tensorflow==2.13): under TensorFlow 2.12 its
``metrics_ops.so`` fails to load (undefined symbol ``absl::lts_20230125::Status...``).
Then: ``--official-python /tmp/wodvenv/bin/python``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from perceive.datasets.types import Boxes3D
from perceive.evaluation import FrameDetections, evaluate_detections

KINDS = ("mixed", "crowded", "flips", "dense", "edge", "ties", "threshold", "ties-lone")
TOLERANCE = 1e-4
SIDE = Path(__file__).with_name("_official_metrics_side.py")
SETUP = __doc__[__doc__.index("Official environment") :]
Scene = dict[str, np.ndarray]
Rng = np.random.Generator
A = ArrayLike

_DTYPES = {"frame": np.int64, "box": np.float32, "type": np.uint8, "difficulty": np.uint8}
_DTYPES.update(points=np.int32, score=np.float32, nlz=np.bool_)
#: Mean (length, width, height) per Waymo type of the random scenes.
_SIZES = {1: (4.6, 2.0, 1.7), 2: (0.9, 0.85, 1.75), 3: (0.25, 0.75, 0.75), 4: (1.8, 0.7, 1.7)}


class SceneBuilder:
    """Ground truth and predictions, added frame by frame, as a scene's flat arrays."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {}
        self.num_frames = 0

    def gt(self, frame: int, box: A, typ: A, diff: A = 1, points: A = 50) -> None:
        self._add("gt", frame, box, type=typ, difficulty=diff, points=points)

    def pd(self, frame: int, box: A, typ: A, score: A, nlz: A = False) -> None:
        self._add("pd", frame, box, type=typ, score=score, nlz=nlz)

    def _add(self, side: str, frame: int, box: A, **cols: A) -> None:
        b = np.asarray(box, np.float64).reshape(-1, 7)
        self.cols.setdefault(f"{side}_box", []).append(b)
        for k, v in {"frame": frame, **cols}.items():
            self.cols.setdefault(f"{side}_{k}", []).append(np.broadcast_to(v, (len(b),)))
        self.num_frames = max(self.num_frames, frame + 1)

    def scene(self) -> Scene:
        out = {k: np.concatenate(v).astype(_DTYPES[k[3:]]) for k, v in self.cols.items()}
        out["num_frames"] = np.array(self.num_frames, np.int64)
        return out


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _boxes(centre: np.ndarray, size: np.ndarray, heading: np.ndarray) -> np.ndarray:
    return np.concatenate([centre, size, np.reshape(heading, (-1, 1))], axis=1)


def _place(rng: Rng, n: int, rmin: float = 2.0, rmax: float = 85.0) -> np.ndarray:
    """Centres over all range bins, 15 % of them within ~0.3 m of 30 or 50 m."""
    r = rng.uniform(rmin, rmax, n)
    near = rng.random(n) < 0.15
    r[near] = rng.choice([30.0, 50.0], near.sum()) + rng.normal(0, 0.3, near.sum())
    th = rng.uniform(-np.pi, np.pi, n)
    return np.stack([r * np.cos(th), r * np.sin(th), rng.uniform(-0.5, 2.5, n)], axis=1)


def _sizes(rng: Rng, types: np.ndarray) -> np.ndarray:
    base = np.array([_SIZES[int(t)] for t in types]).reshape(-1, 3)
    return base * rng.uniform(0.8, 1.25, base.shape)


def _gt_mixed(rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    counts = [rng.integers(6, 14), rng.integers(4, 12), rng.integers(1, 5), rng.integers(1, 6)]
    types = np.repeat(np.arange(1, 5), counts)
    n = len(types)
    box = _boxes(_place(rng, n), _sizes(rng, types), rng.uniform(-np.pi, np.pi, n))
    i, j = rng.choice(n, 2, replace=False)  # two objects side by side: overlapping candidates
    types[j] = types[i]
    box[j, :3] = box[i, :3] + (0.0, box[i, 4] * 0.9 + 0.05, 0.0)
    box[j, 3:6] = _sizes(rng, types[j : j + 1])[0]
    box[j, 6] = box[i, 6] + rng.normal(0, 0.05)
    return types, box


def _gt_crowded(rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    nx, ny, pitch = rng.integers(4, 8), rng.integers(3, 6), rng.uniform(0.55, 0.9)
    gx, gy = np.meshgrid(np.arange(nx) * pitch, np.arange(ny) * pitch)
    n = gx.size
    centre = np.stack([gx.ravel(), gy.ravel(), np.zeros(n)], axis=1) + _place(rng, 1, 5, 60)
    centre[:, :2] += rng.normal(0, 0.08, (n, 2))
    types = np.where(rng.random(n) < 0.1, 4, 2)
    size = _sizes(rng, types)
    size[types == 2, :2] = rng.uniform(0.5, 0.9, ((types == 2).sum(), 2))
    return types, _boxes(centre, size, rng.uniform(-np.pi, np.pi, n))


def _gt_dense(rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """2-5 same-type objects shifted by up to 30 % of their size from each other."""
    t, n = rng.choice([1, 2, 4]), rng.integers(2, 6)
    base, size0, h0 = _place(rng, 1, 5, 70), _sizes(rng, [t])[0], rng.uniform(-np.pi, np.pi)
    off = rng.uniform(-0.3, 0.3, (n, 2)) * size0[:2]
    centre = np.repeat(base, n, axis=0)
    centre[:, :2] += off @ np.array([[np.cos(h0), np.sin(h0)], [-np.sin(h0), np.cos(h0)]])
    heading = h0 + rng.normal(0, 0.1, n) + np.pi * (rng.random(n) < 0.3)
    return np.full(n, t), _boxes(centre, size0 * rng.uniform(0.9, 1.1, (n, 3)), heading)


def _predict(
    rng: Rng, types: np.ndarray, gt: np.ndarray, flip_p: float, tight: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Noisy detections of 85 % of the objects, doubles, wrong types, false positives."""
    keep = rng.random(len(types)) < 0.85
    t, b = types[keep].copy(), gt[keep].copy()
    k = len(t)
    err = rng.exponential(0.07 if tight else 0.12, k)
    b[:, :3] += rng.normal(0, 1, (k, 3)) * err[:, None]
    b[:, 3:6] *= np.exp(rng.normal(0, 0.08, (k, 3)))
    b[:, 6] += rng.normal(0, 0.08, k) + np.pi * (rng.random(k) < flip_p)
    b[:, 6] = _wrap(b[:, 6] + np.pi / 2 * (rng.random(k) < 0.03))
    score = np.clip(0.95 - 1.5 * err + rng.normal(0, 0.15, k), 0, 1)
    dup = rng.random(k) < 0.12
    d = int(dup.sum())
    db = b[dup].copy()
    db[:, :3] += rng.normal(0, 0.15, (d, 3))
    db[:, 3:6] *= np.exp(rng.normal(0, 0.05, (d, 3)))
    db[:, 6] = _wrap(db[:, 6] + rng.normal(0, 0.05, d))
    dscore, dt = np.clip(score[dup] - rng.uniform(0, 0.3, d), 0, 1), t[dup]
    wrong = rng.random(k) < 0.04
    t[wrong] = rng.choice([1, 2, 3, 4], wrong.sum())
    nf = rng.integers(2, 8)
    ft = rng.choice([1, 2, 3, 4], nf, p=[0.4, 0.35, 0.1, 0.15])
    fb = _boxes(_place(rng, nf), _sizes(rng, ft), rng.uniform(-np.pi, np.pi, nf))
    scores = np.concatenate([score, dscore, rng.uniform(0, 0.7, nf)])
    m = len(scores)
    on = rng.random(m) < 0.1
    scores[on] = np.round(scores[on] * 100) / 100
    scores[rng.random(m) < 0.02] = 1.0
    scores[rng.random(m) < 0.02] = 0.0
    return np.concatenate([b, db, fb]), np.concatenate([t, dt, ft]), scores, rng.random(m) < 0.08


def _labels(rng: Rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Difficulty (30 % unknown) and LiDAR points: 0 (dropped), 1-5 (LEVEL_2 if unknown), more."""
    u, pts = rng.random(n), rng.integers(6, 400, n)
    few = (u >= 0.12) & (u < 0.35)
    pts[few] = rng.integers(1, 6, few.sum())
    pts[u < 0.12] = 0
    return rng.choice([0, 1, 2], n, p=[0.3, 0.45, 0.25]), pts


def random_scene(rng: Rng, kind: str, frames: int) -> Scene:
    s = SceneBuilder()
    for f in range(frames):
        if kind == "dense":
            parts = [_gt_dense(rng) for _ in range(rng.integers(2, 5))]
        elif kind == "crowded":
            parts = [*(_gt_crowded(rng) for _ in range(rng.integers(1, 3))), _gt_mixed(rng)]
        else:
            parts = [_gt_mixed(rng)]
        types, box = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        box[:, 6] = _wrap(box[:, 6])
        s.gt(f, box, types, *_labels(rng, len(types)))
        flip_p = 0.4 if kind == "flips" else 0.08
        s.pd(f, *_predict(rng, types, box, flip_p, kind in ("crowded", "dense")))
    types, box = _gt_mixed(rng)  # a frame with predictions only, then one with ground truth only
    s.pd(frames, *_predict(rng, types, box, 0.08, False))
    s.gt(frames + 1, box, types, *_labels(rng, len(types)))
    return s.scene()


def edge_scene(rng: Rng) -> Scene:
    s = SceneBuilder()
    sizes = {1: (4.5, 2.0, 1.6), 2: (0.9, 0.9, 1.8), 3: (0.2, 0.7, 0.7), 4: (1.8, 0.7, 1.7)}
    # 0: equal boxes shifted along their length: IoU (L - d) / (L + d) = threshold +- ulps
    for i in range(40):
        t, thr = (1, 0.7) if i % 2 == 0 else (2, 0.5)
        x, y, L = rng.uniform(5, 70), rng.uniform(-40, 40), sizes[t][0]
        d = L * (1 - thr) / (1 + thr) * (1 + rng.integers(-8, 9) * 1e-7)
        s.gt(0, [x, y, 1.0, *sizes[t], 0.0], t)
        s.pd(0, [x + d, y, 1.0, *sizes[t], 0.0], t, rng.uniform(0.05, 1))
    # 1: one prediction between a LEVEL_1 and a LEVEL_2 object (heading 0 or pi); two
    #    predictions (one turned by pi) with one score on one object
    car = (4.0, 2.0, 1.5)
    for i in range(8):
        x = 10.0 + 8 * i
        s.gt(1, [x - 0.2, 5.0, 0.5, *car, 0.0], 1, 1, 100)
        s.gt(1, [x + 0.2, 5.0, 0.5, *car, np.pi * (i % 2)], 1, 2, 3)
        s.pd(1, [x, 5.0, 0.5, *car, 0.0], 1, 0.8)
    for i in range(8):
        x = 10.0 + 8 * i
        s.gt(1, [x, -15.0, 0.5, *car, 0.3], 1, 1 + i % 2)
        s.pd(1, [[x + 0.3, -15.0, 0.5, *car, h] for h in (0.3, 0.3 + np.pi)], 1, 0.6)
    # 2: headings outside [-pi, pi), differences of pi and pi / 2
    h_gt = [0.3, 0.3, 0.0, 1.0, np.pi / 2, 3.1, -np.pi, 0.2]
    h_pd = [0.3 + 2 * np.pi, 0.3 - 4 * np.pi, np.pi, 1.0 + 7 * np.pi, -np.pi / 2, -3.1, np.pi]
    for i, (hg, hp) in enumerate(zip(h_gt, [*h_pd, 0.2 + np.pi / 2 + 1e-3], strict=True)):
        x = 6.0 + 9 * i
        s.gt(2, [x, 3.0, 0.0, 4.2, 1.9, 1.6, hg], 1)
        s.pd(2, [x, 3.0, 0.0, 4.2, 1.9, 1.6, hp], 1, rng.uniform(0.05, 1))
        s.gt(2, [x, -3.0, 0.0, 0.8, 0.8, 1.7, hg], 2)
        s.pd(2, [x + 0.05, -3.0, 0.0, 0.8, 0.8, 1.7, hp], 2, rng.uniform(0.05, 1))
    # 3: centres within micrometres of the 30 and 50 m bounds, and exactly on them
    for r in (30.0, 50.0):
        for k in range(12):
            th, z, t = rng.uniform(-np.pi, np.pi), rng.uniform(-1, 2), (1, 2, 4)[k % 3]
            rxy = np.sqrt(r * r - z * z) + rng.integers(-3, 4) * 2e-6
            x, y = rxy * np.cos(th), rxy * np.sin(th)
            s.gt(3, [x, y, z, *sizes[t], th], t)
            dx, dy = rng.normal(0, 0.01, 2)
            s.pd(3, [x + dx, y + dy, z, *sizes[t], th], t, rng.uniform(0.05, 1))
    for x, y, t in ((18.0, 24.0, 1), (30.0, 40.0, 2)):
        s.gt(3, [x, y, 0.0, *sizes[t], 0.0], t)
        s.pd(3, [x, y, 0.0, *sizes[t], 0.0], t, rng.uniform(0.05, 1))
    # 4: sizes at the official 0.01 m minimum; type 0 (UNKNOWN)
    dims = [(0.01, 0.8, 1.7), (0.0100001, 0.8, 1.7), (0.02, 0.02, 0.02), (0.8, 0.8, 0.0)]
    for i, dim in enumerate([*dims, (0.8, 0.8, 0.0099)]):
        s.gt(4, [8.0 + 5 * i, 0.0, 0.0, *dim, 0.0], 2)
        s.pd(4, [8.0 + 5 * i, 0.0, 0.0, *dim, 0.0], 2, rng.uniform(0.05, 1))
    s.gt(4, [40.0, 5.0, 0.0, *car, 0.0], 0)
    s.pd(4, [[x, 5.0, 0.0, *car, 0.0] for x in (40.0, 45.0)], 0, rng.uniform(0.05, 1, 2))
    # 5: scores on the cutoffs (float32 of k / 100), 0 and 1; no-label-zone predictions
    #    that match or not; unknown difficulty with 0-8 points
    on_cutoffs = np.float32([0.0, 1.0, 0.29, 0.57, 0.58, 0.01, 0.99, 0.5])
    for k in range(30):
        x, y, t, sc = rng.uniform(5, 70), rng.uniform(-30, 30), k % 4 + 1, on_cutoffs[k % 8]
        s.gt(5, [x, y, 1.0, *sizes[t], 0.0], t, rng.integers(0, 3), rng.integers(0, 9))
        s.pd(5, [x + rng.normal(0, 0.03), y, 1.0, *sizes[t], 0.0], t, sc, k % 5 == 0)
        if k % 3 == 0:
            s.pd(5, [x + 20, y, 1.0, *sizes[t], 0.0], t, sc, k % 2 == 1)
    return s.scene()


def _at(x: float, y: float, h: float, size: tuple[float, float, float]) -> list[float]:
    return [x, y, 0.0, *size, h]


def ties_scene(rng: Rng, reps: int = 20, lone: bool = False) -> Scene:
    """Four frames per repetition (five with ``lone``); objects at (x, +-sh) mirror each other:

    a) one prediction exactly between a LEVEL_1 object (heading 0) and a LEVEL_2 one (pi);
    b) two predictions with one box and score, one turned by pi, on one object;
    c) two such predictions between two mirror-image objects: four equal IoUs;
    d) like a), plus a prediction on the LEVEL_1 object at half the score;
    e) with ``lone``: like a), after a lone prediction in the same frame. Orders are random.
    """
    s = SceneBuilder()
    dims = {1: (4.0, 2.0, 1.5), 2: (0.8, 0.8, 1.8), 4: (1.8, 0.8, 1.7)}
    for r in range(reps):
        t = int(rng.choice([1, 2, 4]))
        sh, size = (0.25 if t == 1 else 0.06), dims[t]
        x = float(rng.choice([5.0, 12.0, 35.0, 60.0]))
        sc = np.float32(rng.uniform(0.1, 1))
        order, f = rng.permutation(2), (5 if lone else 4) * r
        pair = [_at(x, sh, 0.0, size), _at(x, -sh, np.pi, size)]  # LEVEL_1, LEVEL_2
        for k in order:
            s.gt(f, pair[k], t, 1 + k)
            s.gt(f + 2, _at(x, sh - 2 * sh * k, 0.0, size), t, 1 + k)
            s.gt(f + 3, pair[k], t, 1 + k)
            s.pd(f + 1, _at(x + sh, 0.0, 0.3 - np.pi * k, size), t, sc)
        s.pd(f, _at(x, 0.0, 0.0, size), t, sc)
        s.gt(f + 1, _at(x, 0.0, 0.3, size), t)
        for k in rng.permutation(2):
            s.pd(f + 2, _at(x, 0.0, np.pi * k, size), t, sc)
        s.pd(f + 3, _at(x, 0.0, np.pi, size), t, sc)
        s.pd(f + 3, _at(x, sh, 0.0, size), t, np.float32(sc * 0.5))
        if lone:
            s.gt(f + 4, [pair[k] for k in order], t, 1 + order)
            s.pd(f + 4, [_at(x, 10.0, 0.0, size), _at(x, 0.0, 0.0, size)], t, sc)
    return s.scene()


def threshold_scene(rng: Rng, n: int = 600) -> Scene:
    """One pair per frame near the origin (fine float32 grid): the prediction shifted along
    the length, across the width or along the height by the IoU threshold's offset +- ulps."""
    s = SceneBuilder()
    dims = {1: (4.5, 2.0, 1.6), 2: (0.9, 0.8, 1.8), 3: (0.3, 0.8, 0.8), 4: (1.8, 0.7, 1.7)}
    for i in range(n):
        t = int(rng.choice([1, 2, 3, 4]))
        thr = 0.7 if t == 1 else 0.5
        size = np.float32(dims[t]) * np.float32(rng.uniform(0.9, 1.1))
        g = np.float32([rng.uniform(1, 2), rng.uniform(-1, 1), 0.5, *size, 0.0])
        p, axis = g.copy(), i % 3
        shifted = np.float32(g[axis] + size[axis] * (1 - thr) / (1 + thr))
        p[axis] = shifted + np.float32(rng.integers(-6, 7)) * np.spacing(np.abs(shifted))
        s.gt(i, g, t)
        s.pd(i, p, t, rng.uniform(0, 1))
    return s.scene()


def make_scene(kind: str, seed: int, frames: int) -> Scene:
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    hand_made = {"edge": edge_scene, "ties": ties_scene, "threshold": threshold_scene}
    hand_made["ties-lone"] = lambda rng: ties_scene(rng, lone=True)
    return hand_made[kind](rng) if kind in hand_made else random_scene(rng, kind, frames)


def perturb(scene: Scene) -> Scene:
    """The negative control: no-label-zone flags dropped, every 7th heading turned by pi."""
    box = scene["pd_box"].copy()
    box[::7, 6] += np.float32(np.pi)
    return {**scene, "pd_box": box, "pd_nlz": np.zeros_like(scene["pd_nlz"])}


def _frame(f: int, a: dict[str, np.ndarray]) -> FrameDetections:
    b, diff, pts = a["box"], a.get("difficulty"), a.get("points")
    boxes = Boxes3D(b[:, :3], b[:, 3:6], b[:, 6], a["type"], difficulty=diff, num_lidar_points=pts)
    return FrameDetections("scene", 1_000_000 + f, boxes, a.get("score"), a.get("nlz"))


def perceive_metrics(s: Scene) -> dict[str, np.ndarray]:
    """perceive's ``evaluate_detections`` on a scene (it does its own ground truth filtering)."""
    preds, gts = [], []
    for f in range(int(s["num_frames"])):
        for side, frames in (("pd", preds), ("gt", gts)):
            m = s[f"{side}_frame"] == f
            if m.any():
                frames.append(_frame(f, {k[3:]: v[m] for k, v in s.items() if k[:3] == side + "_"}))
    bs = evaluate_detections(preds, gts).breakdowns
    out = {"names": np.array([b.name for b in bs])}
    for k in ("ap", "aph", "precision", "recall", "precision_ha", "tp", "fp", "fn"):
        out[k] = np.array([getattr(b, k) for b in bs], np.float64)
    return out


class SetupError(Exception):
    """The official side cannot run."""


def run_official(python: str, scenes: list[Path]) -> str:
    """Runs the official side on the scenes (one process); returns its version line."""
    exe = shutil.which(python)
    if exe is None:
        raise SetupError(f"no Python interpreter at {python!r}")
    try:
        r = subprocess.run([exe, str(SIDE), *map(str, scenes)], capture_output=True, text=True)
    except OSError as e:
        raise SetupError(f"cannot run {exe}: {e}") from e
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-12:])
        what = "cannot import" if r.returncode == 3 else f"exit status {r.returncode} from"
        raise SetupError(f"{what} the official metrics op ({exe}):\n{tail}")
    return r.stdout.splitlines()[0]


def compare(official: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per breakdown: |dAP|, |dAPH|, max |d| of the TP/FP/FN counts and of the rates."""
    if list(official["names"]) != list(ours["names"]):
        raise ValueError(f"breakdowns differ: {list(official['names'])} vs {list(ours['names'])}")
    pr, ha = official["pr"].astype(np.float64), official["pr_ha"].astype(np.float64)
    counts = pr[..., 2:5].transpose(2, 0, 1) - np.stack([ours[k] for k in ("tp", "fp", "fn")])
    rates = np.stack([pr[..., 0], pr[..., 1], ha[..., 0]])
    rates -= np.stack([ours[k] for k in ("precision", "recall", "precision_ha")])
    d = {
        "ap": np.abs(official["ap"].astype(np.float64) - ours["ap"]),
        "aph": np.abs(official["aph"].astype(np.float64) - ours["aph"]),
        "counts": np.abs(counts).max(axis=(0, 2)),
        "rates": np.abs(rates).max(axis=(0, 2)),
    }
    return {k: np.nan_to_num(v, nan=np.inf) for k, v in d.items()}  # a NaN is a difference


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="check_official_metrics.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--official-python", required=True, help="Python of the official venv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", default=",".join(KINDS[:7]), help="comma-separated kinds")
    parser.add_argument("--frames", type=int, default=6, help="frames of the random kinds")
    parser.add_argument("--out", type=Path, default=None, help="keep scenes and results here")
    parser.add_argument("--negative-control", action="store_true", help="perturb perceive's input")
    args = parser.parse_args(argv)
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown or not args.kinds:
        parser.error(f"unknown kinds {unknown}; choose from {','.join(KINDS)}")
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = _parse(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="check_official_metrics_") as tmp:
        out = Path(tmp) if args.out is None else args.out
        out.mkdir(parents=True, exist_ok=True)
        jobs = [(kind, seed) for kind in args.kinds for seed in args.seeds]
        scenes = [make_scene(kind, seed, args.frames) for kind, seed in jobs]
        paths = [out / f"{kind}_seed{seed}.npz" for kind, seed in jobs]
        for scene, path in zip(scenes, paths, strict=True):
            np.savez(path, **scene)
        t1 = time.perf_counter()
        try:
            versions = run_official(args.official_python, paths)
        except SetupError as e:
            print(f"check_official_metrics: {e}\n\n{SETUP}", file=sys.stderr)
            return 2
        t2 = time.perf_counter()
        if args.negative_control:
            print("NEGATIVE CONTROL: perceive gets no no-label-zone flags and every 7th")
            print("prediction's heading turned by pi; the official op gets the scenes as they are.")
        head = f"{'kind':<10}{'seed':>5}{'frames':>7}{'GT':>6}{'kept':>6}{'preds':>6}"
        head += f"{'max|dAP|':>11}{'max|dAPH|':>11}{'dTP/FP/FN':>10}{'dPR':>10}  result"
        print(head, "-" * len(head), sep="\n")
        worst_ap = worst_aph = 0.0
        details: list[str] = []
        for (kind, seed), scene, path in zip(jobs, scenes, paths, strict=True):
            ours = perceive_metrics(perturb(scene) if args.negative_control else scene)
            np.savez(path.with_suffix(".perceive.npz"), **ours)
            official = dict(np.load(path.with_suffix(".official.npz")))
            label = f"{kind:<10}{seed:>5}{int(scene['num_frames']):>7}{len(scene['gt_type']):>6}"
            label += f"{int((scene['gt_points'] > 0).sum()):>6}{len(scene['pd_type']):>6}"
            try:
                d = compare(official, ours)
            except ValueError as e:
                print(f"{label}  {e}")
                worst_ap = np.inf
                continue
            bad = np.maximum(d["ap"], d["aph"]) > TOLERANCE
            worst_ap, worst_aph = max(worst_ap, d["ap"].max()), max(worst_aph, d["aph"].max())
            print(
                f"{label}{d['ap'].max():>11.2e}{d['aph'].max():>11.2e}{d['counts'].max():>10.0f}"
                f"{d['rates'].max():>10.1e}  {'DIFF' if bad.any() else 'ok'}"
            )
            if bad.any():
                i = int(np.argmax(np.maximum(d["ap"], d["aph"])))
                details.append(
                    f"  {kind} seed {seed} {official['names'][i]}: AP {official['ap'][i]:.5f} "
                    f"official / {ours['ap'][i]:.5f} perceive, APH {official['aph'][i]:.5f} / "
                    f"{ours['aph'][i]:.5f}"
                )
        t3 = time.perf_counter()
    if details:
        print("\nlargest difference of each scene that differs:", *details, sep="\n")
    ok = max(worst_ap, worst_aph) <= TOLERANCE
    print(f"\nofficial: {versions} ({args.official_python})")
    print(f"worst |dAP| {worst_ap:.2e}, |dAPH| {worst_aph:.2e} (tolerance {TOLERANCE:g})")
    print(
        f"time: scenes {t1 - t0:.1f} s, official op {t2 - t1:.1f} s, perceive {t3 - t2:.1f} s, "
        f"total {t3 - t0:.1f} s" + (f"; files in {args.out}" if args.out else "")
    )
    if args.negative_control:
        blind = "NO difference reported: the check is blind"
        print(f"negative control: {blind if ok else 'differences reported, as they must be'}")
    print("AGREE" if ok else f"DIFFER: |dAP| or |dAPH| above {TOLERANCE:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
