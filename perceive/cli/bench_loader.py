"""``perceive bench-loader [SEGMENT] [--frames N]``: frames per second of the Waymo v1 reader,
per stage, beside the floor of zlib inflation plus JPEG decoding of the same bytes.

Without SEGMENT a synthetic segment of full-size frames is generated first (TOP range
image 64 x 2650, the other lasers 200 x 600, both returns, five 1920 x 1280 JPEGs; see
:mod:`perceive.datasets.waymo.bench`). Timings are on one thread, and
again with the LiDAR and JPEG work on ``--workers`` threads (default 2).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from perceive.datasets.waymo.bench import benchmark_segment, format_timing, synthetic_segment
from perceive.errors import ConfigError
from perceive.io.atomic import atomic_write_text, check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive bench-loader``."""
    parser.add_argument(
        "segment", type=Path, nargs="?", default=None,
        help="a Waymo v1 .tfrecord with LiDAR (default: generate a synthetic full-size one)",
    )  # fmt: skip
    parser.add_argument("--frames", type=int, default=5, help="frames to measure (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the frames (default 3)")
    parser.add_argument(
        "--workers", type=int, default=2,
        help="threads of the threaded measurement, beside the one-thread one (default 2; 1: none)",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures as JSON here"
    )
    parser.add_argument(
        "--random-ranges",
        action="store_true",
        help="synthetic range images of random values (the worst case for zlib) instead of a scene",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call perceive.utils.memory.keep_freed_memory() first (glibc keeps freed memory "
        "for reuse: no fresh pages per frame)",
    )
    parser.add_argument(
        "--keep-synthetic", type=Path, default=None,
        help="write the generated segment here (and keep it) instead of a temporary folder",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its table."""
    if args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    for flag, out in (("--json", args.json), ("--keep-synthetic", args.keep_synthetic)):
        if out is not None:
            check_output_file(out, flag)
    kept = False
    if args.keep_freed_memory:
        from perceive.utils.memory import keep_freed_memory

        kept = keep_freed_memory()
        if not kept:
            print("--keep-freed-memory: not a glibc system; the allocator is unchanged")
    with tempfile.TemporaryDirectory(prefix="perceive-bench-") as tmp:
        path = args.segment
        if path is None:
            path = args.keep_synthetic or Path(tmp) / "synthetic.tfrecord"
            with tqdm(total=args.frames, desc="generating full-size frames", unit="frame") as bar:
                synthetic_segment(
                    path,
                    args.frames,
                    progress=lambda i: bar.update(1),
                    scene=not args.random_ranges,
                )
        total = args.frames * args.repeat
        with tqdm(total=total, desc="measuring", unit="frame", leave=False) as bar:
            timing = benchmark_segment(
                path,
                args.frames,
                args.repeat,
                progress=lambda r, i: bar.update(1),
                workers=args.workers,
            )
    print(format_timing(timing))
    print(
        "allocator: freed memory kept for reuse (--keep-freed-memory)"
        if kept
        else "allocator: the C library's defaults (freed memory may go back to the kernel)"
    )
    if args.json is not None:
        figures = asdict(timing) | {
            "lidar_ms": timing.lidar_ms,
            "total_ms": timing.total_ms,
            "fps": timing.fps,
            "floor_ms": timing.floor_ms,
            "kept_freed_memory": kept,
        }
        atomic_write_text(args.json, json.dumps(figures, indent=2) + "\n")
    return 0
