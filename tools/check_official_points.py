"""OPTIONAL, run by hand: compare perceive's points of frame 0 with the official utilities'.

Usage:  python tools/check_official_points.py SEGMENT DUMP_DIR

DUMP_DIR holds ``points_return1.npy`` and ``points_return2.npy`` written by
``tools/bench_loader_tf.py --dump`` (run in the TensorFlow environment). The official
code orders points by laser, then row-major pixel order, as perceive does, so the
arrays are compared point by point. Prints the largest and median distances.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from perceive.datasets import waymo


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(argv) != 2:
        print(__doc__)
        return 2
    segment, dump = Path(argv[0]), Path(argv[1])
    missing = [p for p in (segment, dump / "points_return1.npy") if not p.exists()]
    if missing:
        print(f"check_official_points: no such file: {missing[0]}", file=sys.stderr)
        return 1
    frame = waymo.open(segment)[0]
    worst = 0.0
    for ret in (1, 2):
        official = np.load(dump / f"points_return{ret}.npy")
        ours = frame.point_cloud(returns=(ret,)).xyz
        if official.shape != ours.shape:
            print(f"return {ret}: official {official.shape[0]} points, perceive {ours.shape[0]}")
            return 1
        d = np.linalg.norm(official.astype(np.float64) - ours, axis=1)
        worst = max(worst, float(d.max()))
        print(
            f"return {ret}: {len(d):,} points; distance official <-> perceive: "
            f"median {np.median(d) * 1000:.4f} mm, max {d.max() * 1000:.4f} mm"
        )
    return 0 if worst < 1e-2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
