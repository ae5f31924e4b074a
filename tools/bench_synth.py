"""Benchmark of the synthetic data generator: frames per second, per stage.

    .venv/bin/python tools/bench_synth.py --frames 6

Makes ``--frames`` frames of one segment at the chosen preset (the first frame is a
warm-up and not timed), serialises each as a v1 record (zlib range images, the
writer's part), and prints seconds per frame by stage, frames per second, and the
time a 2,000-frame training set would take at that rate. The 2,000-frame figure is
an extrapolation from the measured rate, not a measurement; on a shared machine the
rate depends on the load (printed).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _cli import at_least, run  # tools/_cli.py (this folder is on sys.path)

from perceive.datasets.waymo.v1_writer import serialize_frame
from perceive.io.tfrecord import encode_record
from perceive.synth.config import preset
from perceive.synth.generate import SegmentGenerator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="train", choices=("tiny", "train"))
    ap.add_argument(
        "--frames", type=at_least(2), default=6, help="frames to make (first one is warm-up)"
    )
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--target", type=int, default=2000, help="dataset size to extrapolate to")
    args = ap.parse_args()
    cfg = preset(args.preset)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    gen = SegmentGenerator(cfg, args.seed, 0, args.frames)
    t_scene = time.perf_counter() - t0
    gen.frame(0)  # warm-up: imports, Open3D initialisation
    gen.timings = {k: 0.0 for k in gen.timings}
    sizes, t_ser = [], 0.0
    t1 = time.perf_counter()
    for k in range(1, args.frames):
        sf = gen.frame(k)
        ts = time.perf_counter()
        sizes.append(len(encode_record(serialize_frame(sf.frame))))
        t_ser += time.perf_counter() - ts
    wall = time.perf_counter() - t1
    n = args.frames - 1
    load1 = os.getloadavg()[0]
    print(
        f"preset {args.preset}: TOP {cfg.lidar.top_shape}, short-range {cfg.lidar.side_shape}, "
        f"cameras {cfg.camera.front_size} / {cfg.camera.side_size}; {os.cpu_count()} CPUs, "
        f"load average {load0:.1f} -> {load1:.1f}"
    )
    print(f"scene build (once per segment): {t_scene:.2f} s")
    stages = {k: v for k, v in gen.timings.items() if k != "scene"}
    stages["serialize (v1 writer, zlib)"] = t_ser
    for k, v in stages.items():
        print(f"  {k:<30s} {v / n * 1000:8.0f} ms/frame")
    fps = n / wall
    print(
        f"end to end: {wall / n:.2f} s/frame = {fps:.2f} frames/s over {n} frames; "
        f"record size {np.mean(sizes) / 1e6:.1f} MB/frame"
    )
    total = args.target / fps + t_scene * args.target / 200
    print(
        f"extrapolated: {args.target} frames (segments of 200) in {total / 60:.0f} min "
        f"on this machine ({args.target * np.mean(sizes) / 1e9:.1f} GB)"
    )


if __name__ == "__main__":
    run(main)
