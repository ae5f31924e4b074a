"""Label statistics of generated (or any v1) segments: per class counts, points, LEVEL_2.

    .venv/bin/python tools/synth_stats.py datasets/synth/train

For each class: boxes, median LiDAR points per box, the share at LEVEL_2 (5 points or
fewer), and the share of LEVEL_2 boxes that a camera still shows with a 2D box of at
least ``--min-area`` pixels (far or dark objects the camera sees better than the LiDAR;
signs have no camera labels, as in the dataset).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _cli import run  # tools/_cli.py (this folder is on sys.path)

from perceive.datasets.waymo import v1

NAMES = {1: "VEHICLE", 2: "PEDESTRIAN", 4: "CYCLIST", 3: "SIGN"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="a .tfrecord file or a directory of them")
    ap.add_argument("--min-area", type=float, default=100.0, help="2D box area, pixels")
    args = ap.parse_args()
    p = Path(args.path)
    files = sorted(p.glob("*.tfrecord")) if p.is_dir() else [p]
    if not files:
        ap.error(f"{p} holds no .tfrecord files")
    types, pts, l2, cam_ok, dist = [], [], [], [], []
    frames = 0
    for f in files:
        with v1.Segment(f) as seg:
            for fr in seg:
                frames += 1
                b = fr.boxes
                shown = set()
                for boxes in fr.camera_boxes.values():
                    area = boxes.size[:, 0] * boxes.size[:, 1]
                    shown |= set(boxes.ids[area >= args.min_area].tolist())
                types.append(b.type)
                pts.append(b.num_lidar_points)
                l2.append(b.difficulty == 2)
                cam_ok.append(np.array([i in shown for i in b.ids], bool))
                dist.append(np.hypot(b.center[:, 0], b.center[:, 1]))
    t, n, lv2, cam, d = (np.concatenate(a) for a in (types, pts, l2, cam_ok, dist))
    print(
        f"{len(files)} segments, {frames} frames, {t.size} boxes "
        f"({t.size / max(frames, 1):.1f} per frame)"
    )
    print(
        f"{'class':<11s} {'boxes':>6s} {'median pts':>10s} {'LEVEL_2':>8s} "
        f"{'L2 in camera':>12s} {'median dist':>11s}"
    )
    for k, name in NAMES.items():
        m = t == k
        if not m.any():
            continue
        l2m = m & lv2
        share = (cam[l2m].mean() * 100) if l2m.any() else float("nan")
        if k == 3:  # the dataset's camera labels have no signs
            share = float("nan")
        print(
            f"{name:<11s} {int(m.sum()):>6d} {np.median(n[m]):>10.0f} {lv2[m].mean() * 100:>7.0f}% "
            f"{share:>11.0f}% {np.median(d[m]):>10.1f}m"
        )


if __name__ == "__main__":
    run(main)
