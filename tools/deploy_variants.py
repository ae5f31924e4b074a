"""FP16 and INT8 variants of an exported model: latency and accuracy change (mAPH LEVEL_2).

    python tools/deploy_variants.py exports/fusion.onnx --eval datasets/synth/val \\
        --calib datasets/synth/train --threads 2 --json variants.json

Makes ``<stem>.fp16.onnx`` and ``<stem>.int8.onnx`` (INT8 calibrated on ``--calib`` frames,
or on generated frames without it), runs each variant and the float32 model on the same
``--eval`` frames, and prints one table: file size, inference latency, mAPH L2 and its
change against float32, the largest score difference. Frames without labels give no mAPH.
FP16 targets GPUs; on a CPU it runs where onnxruntime has float16 kernels, usually slower.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perceive.datasets.types import Frame
from perceive.errors import PerceiveError


def load_frames(path: Path, limit: int, stride: int = 1) -> list[Frame]:
    """Up to ``limit`` frames (every ``stride``-th) of a v1 file or a folder of them."""
    from perceive.datasets import waymo

    files = sorted(path.glob("*.tfrecord")) if path.is_dir() else [path]
    frames: list[Frame] = []
    for f in files:
        with waymo.open(f) as seg:
            for i in range(0, len(seg), stride):
                if len(frames) == limit:
                    return frames
                frames.append(seg[i])
    return frames


def main(argv: list[str] | None = None) -> int:
    """Build the variants, measure them, print the table."""
    from perceive.deploy.quantize import (
        PRECISIONS,
        compare_variants,
        format_variant_table,
        generated_frames,
    )

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="the float32 export (.onnx)")
    p.add_argument(
        "--eval", type=Path, default=None, help="labelled v1 file or folder to evaluate on"
    )
    p.add_argument("--eval-frames", type=int, default=10, help="frames to evaluate on (default 10)")
    p.add_argument(
        "--calib", type=Path, default=None, help="v1 file or folder for INT8 calibration"
    )
    p.add_argument("--calib-frames", type=int, default=8, help="calibration frames (default 8)")
    p.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated (default all)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--iters", type=int, default=10, help="timed inferences per variant")
    p.add_argument(
        "--out-dir", type=Path, default=None, help="where variants go (default: beside the model)"
    )
    p.add_argument("--json", type=Path, default=None, help="write the table as JSON")
    args = p.parse_args(argv)
    precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    if any(x not in PRECISIONS for x in precisions):
        p.error(f"--precisions: choose from {', '.join(PRECISIONS)}")
    try:
        if args.eval is not None:
            frames = load_frames(args.eval, args.eval_frames)
        else:
            frames = generated_frames(args.eval_frames, seed=5000)
        calib = None if args.calib is None else load_frames(args.calib, args.calib_frames, stride=3)
        if calib is None:
            calib = generated_frames(args.calib_frames, seed=9000)
        print(
            f"evaluating on {len(frames)} frames, calibrating INT8 on {len(calib)} frames",
            file=sys.stderr,
        )
        reports = compare_variants(
            args.model,
            frames,
            precisions=precisions,
            device=args.device,
            threads=args.threads,
            iters=args.iters,
            out_dir=args.out_dir,
            calibration_frames=calib,
        )
    except (PerceiveError, FileNotFoundError) as e:
        print(f"deploy_variants: {e}", file=sys.stderr)
        return 1
    print(format_variant_table(reports))
    if args.json is not None:
        from perceive.io.atomic import atomic_write_text

        payload = {
            "model": str(args.model),
            "eval": str(args.eval) if args.eval else "generated frames",
            "eval_frames": len(frames),
            "calibration_frames": len(calib),
            "threads": args.threads,
            "device": args.device,
            "variants": [r.to_dict() for r in reports],
        }
        atomic_write_text(args.json, json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
