"""``perceive convert SRC --to cache|kitti|pcd|ply --out DIR --workers N [--strict]``.

SRC is a v1 ``.tfrecord`` file, a folder of them, a glob (quote it), or a Waymo v2
dataset root. The run is resumable: run the same command again after an interruption
and it finishes the job, skipping what is done. The exit status is 1 when a segment
failed as a whole (the summary lists it; the others are converted).
"""

from __future__ import annotations

import argparse

from perceive.convert.runner import FORMATS, run_conversion


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive convert``."""
    parser.add_argument(
        "src", nargs="+", help="v1 file(s), folder(s) or glob(s), or a v2 dataset root"
    )
    parser.add_argument("--to", dest="fmt", required=True, choices=FORMATS, help="output format")
    parser.add_argument(
        "--out", required=True, help="output folder (an existing one of the same format resumes)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first corrupt or unreadable record"
    )
    parser.add_argument(
        "--split",
        default="training",
        choices=("training", "validation", "testing"),
        help="split of v1 sources (KITTI ids, ImageSets); a v2 root gives its own splits",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the conversion and print its summary."""
    src = args.src[0] if len(args.src) == 1 else args.src
    summary = run_conversion(
        src,
        args.fmt,
        args.out,
        workers=args.workers,
        strict=args.strict,
        split=args.split,
        progress_bar=not args.quiet,
    )
    print(summary.format_text())
    return 1 if summary.failed else 0  # failed segments: a script must not read it as success
