"""``perceive synth``: generate synthetic driving data in the Waymo format."""

from __future__ import annotations

import argparse
import time

from perceive.errors import ConfigError


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = text.lower().split("x")
        return int(a), int(b)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected AxB (for example 480x320), got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``perceive synth``."""
    parser.add_argument(
        "--out", default="datasets/synth", help="output directory (default: datasets/synth)"
    )
    parser.add_argument("--segments", type=int, default=1, help="number of segments (default: 1)")
    parser.add_argument(
        "--frames", type=int, default=20, help="frames per segment, 10 Hz (default: 20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    parser.add_argument(
        "--preset",
        choices=("tiny", "train"),
        default="train",
        help="sensor sizes and world (default: train)",
    )
    parser.add_argument(
        "--v2", action="store_true", help="also write Waymo v2 parquet under OUT/v2"
    )
    parser.add_argument(
        "--v2-split", default="training", help="v2 split directory (default: training)"
    )
    parser.add_argument(
        "--top-shape", type=_size, metavar="HxW", help="TOP range image size (train: 64x2650)"
    )
    parser.add_argument(
        "--side-shape",
        type=_size,
        metavar="HxW",
        help="short-range laser range image size (train: 200x600)",
    )
    parser.add_argument(
        "--front-size", type=_size, metavar="WxH", help="FRONT* camera image size (train: 480x320)"
    )
    parser.add_argument(
        "--side-size", type=_size, metavar="WxH", help="SIDE_* camera image size (train: 480x222)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes making segments in parallel (default: 1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Generate the dataset; print where it went."""
    from perceive.synth.config import preset
    from perceive.synth.generate import generate_dataset

    if args.segments < 1 or args.frames < 1:
        raise ConfigError(
            f"--segments and --frames must be >= 1, got {args.segments} and {args.frames}"
        )
    cfg = preset(
        args.preset,
        top_shape=args.top_shape,
        side_shape=args.side_shape,
        front_size=args.front_size,
        side_size=args.side_size,
    )
    t0 = time.perf_counter()
    paths = generate_dataset(
        args.out,
        config=cfg,
        segments=args.segments,
        frames=args.frames,
        seed=args.seed,
        v2=args.v2,
        v2_split=args.v2_split,
        progress=not args.no_progress,
        workers=args.workers,
    )
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in paths) / 1e6
    print(
        f"{len(paths)} segments x {args.frames} frames ({args.preset}, seed {args.seed}) "
        f"in {args.out}: {size:.1f} MB, {dt:.1f} s"
    )
    return 0
