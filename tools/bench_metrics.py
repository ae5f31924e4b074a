"""Benchmark of the Waymo detection metrics and the rotated IoU.

Generates a synthetic evaluation set (by default 200 frames, 60 ground truth boxes and
100 predictions per frame: noisy copies of most boxes, some twice, plus clutter), then
times ``evaluate_detections``, writing and reading the ``Objects`` files, and the
exact rotated 3D IoU (pairs that all overlap, and an N x M scene matrix).

    python tools/bench_metrics.py [--frames 200] [--preds 100] [--gts 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli import at_least, run  # tools/_cli.py (this folder is on sys.path)

from perceive.datasets.types import Boxes3D
from perceive.evaluation import FrameDetections, evaluate_detections, read_objects, write_objects
from perceive.geometry.iou import box_iou_3d, box_iou_3d_pairs

SIZES = {1: (4.5, 2.0, 1.6), 2: (0.9, 0.9, 1.8), 3: (0.3, 0.8, 0.8), 4: (1.8, 0.7, 1.7)}


def make_set(
    frames: int, preds: int, gts: int, seed: int = 0
) -> tuple[list[FrameDetections], list[FrameDetections]]:
    """A synthetic evaluation set with ``preds`` predictions and ``gts`` boxes per frame."""
    rng = np.random.default_rng(seed)
    pred_frames, gt_frames = [], []
    for f in range(frames):
        ctx, ts = f"segment_{f // 20:03d}", 1_000_000 + 100_000 * f
        types = rng.choice([1, 2, 3, 4], gts, p=[0.55, 0.3, 0.05, 0.1])
        rad = rng.uniform(2, 75, gts)
        ang = rng.uniform(-np.pi, np.pi, gts)
        centre = np.c_[rad * np.cos(ang), rad * np.sin(ang), rng.uniform(0.5, 1.5, gts)]
        size = np.array([SIZES[int(t)] for t in types]) * rng.uniform(0.85, 1.15, (gts, 3))
        heading = rng.uniform(-np.pi, np.pi, gts)
        gt = Boxes3D(
            center=centre,
            size=size,
            heading=heading,
            type=types,
            num_lidar_points=rng.integers(0, 400, gts),
            difficulty=rng.choice([0, 1, 2], gts),
        )
        gt_frames.append(FrameDetections(ctx, ts, gt))
        # Predictions: noisy copies of most boxes (a fifth of them twice), then clutter.
        src = rng.permutation(gts)[: int(0.8 * gts)]
        src = np.concatenate([src, src[: len(src) // 5]])[:preds]
        noise = rng.normal(0, [0.2, 0.2, 0.1, 0.15, 0.08, 0.08, 0.15], (len(src), 7))
        boxes = np.c_[centre[src], size[src], heading[src]] + noise
        boxes[:, 3:6] = np.abs(boxes[:, 3:6]) + 0.05
        ptypes = types[src]
        scores = np.clip(rng.normal(0.6, 0.2, len(src)), 0, 1)
        n_clutter = preds - len(src)
        if n_clutter > 0:
            ct = rng.choice([1, 2, 3, 4], n_clutter)
            cr, ca = rng.uniform(2, 75, n_clutter), rng.uniform(-np.pi, np.pi, n_clutter)
            clutter = np.c_[
                cr * np.cos(ca),
                cr * np.sin(ca),
                np.ones(n_clutter),
                np.array([SIZES[int(t)] for t in ct]),
                rng.uniform(-np.pi, np.pi, n_clutter),
            ]
            boxes = np.concatenate([boxes, clutter])
            ptypes = np.concatenate([ptypes, ct])
            scores = np.concatenate([scores, rng.uniform(0, 0.6, n_clutter)])
        pred_frames.append(FrameDetections.from_arrays(ctx, ts, boxes, scores, ptypes))
    return pred_frames, gt_frames


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls, seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=at_least(1), default=200)
    ap.add_argument("--preds", type=int, default=100, help="predictions per frame")
    ap.add_argument("--gts", type=int, default=60, help="ground truth boxes per frame")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    args = ap.parse_args()

    preds, gts = make_set(args.frames, args.preds, args.gts)
    n_pred = sum(len(f) for f in preds)
    n_gt = sum(len(f) for f in gts)
    print(
        f"set: {args.frames} frames, {n_pred} predictions, {n_gt} ground truth boxes "
        f"(CPU threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    metrics = evaluate_detections(preds, gts)
    t_eval = best_of(lambda: evaluate_detections(preds, gts), args.repeat)
    print(
        f"evaluate_detections: {t_eval:.3f} s ({1e3 * t_eval / args.frames:.2f} ms per frame); "
        f"32 breakdowns x 101 score cutoffs; mAPH L2 of the set {metrics.mean_aph_l2:.4f}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "pred.bin"
        t_write = best_of(lambda: write_objects(p, preds), args.repeat)
        t_read = best_of(lambda: read_objects(p), args.repeat)
        size_mb = p.stat().st_size / 1e6
    print(
        f"Objects file of the predictions ({size_mb:.1f} MB): "
        f"write {t_write:.3f} s, read {t_read:.3f} s"
    )

    rng = np.random.default_rng(1)
    k = 20_000
    a = np.c_[rng.uniform(-1, 1, (k, 3)), rng.uniform(1, 5, (k, 3)), rng.uniform(-np.pi, np.pi, k)]
    b = a + np.c_[rng.normal(0, 0.5, (k, 3)), rng.normal(0, 0.3, (k, 3)), rng.normal(0, 0.5, k)]
    b[:, 3:6] = np.abs(b[:, 3:6]) + 0.1
    t_pairs = best_of(lambda: box_iou_3d_pairs(a, b), args.repeat)
    overlap = float((box_iou_3d_pairs(a, b) > 0).mean())
    print(
        f"box_iou_3d_pairs: {k} overlapping-ish pairs ({100 * overlap:.0f}% overlap) in "
        f"{1e3 * t_pairs:.1f} ms = {k / (1e3 * t_pairs):.0f} pairs per ms"
    )
    scene_a = np.c_[preds[0].boxes.center, preds[0].boxes.size, preds[0].boxes.heading]
    scene_b = np.c_[gts[0].boxes.center, gts[0].boxes.size, gts[0].boxes.heading]
    t_scene = best_of(lambda: box_iou_3d(scene_a, scene_b), max(args.repeat, 20))
    n_pairs = scene_a.shape[0] * scene_b.shape[0]
    print(
        f"box_iou_3d: one frame's {scene_a.shape[0]} x {scene_b.shape[0]} matrix in "
        f"{1e3 * t_scene:.2f} ms = {n_pairs / (1e3 * t_scene):.0f} pairs per ms"
    )


if __name__ == "__main__":
    run(main)
