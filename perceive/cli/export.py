"""``perceive export CHECKPOINT --out exports/NAME.onnx``: one ONNX graph with metadata + sidecar.

Optionally (``--parity N``) runs onnxruntime against PyTorch on N generated frames
and prints the largest differences.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Largest box difference (metres) and score difference --parity accepts (those of the tests).
PARITY_BOX_M = 1e-3
PARITY_SCORE = 1e-5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive export``."""
    parser.add_argument(
        "checkpoint", type=Path, help="detector checkpoint (.pt) from `perceive train`"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output .onnx (the sidecar is <stem>.json beside it)",
    )
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 18 (default 18)")
    parser.add_argument(
        "--provenance",
        type=Path,
        default=None,
        help="JSON file merged into the provenance metadata (e.g. metrics)",
    )
    parser.add_argument(
        "--parity",
        type=int,
        default=3,
        metavar="N",
        help="compare onnxruntime with PyTorch on N generated frames (0: skip)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the exporter's progress")


def run(args: argparse.Namespace) -> int:
    """Export, then check parity on generated frames."""
    from perceive.deploy.export import check_parity, export_onnx, parity_inputs
    from perceive.errors import ConfigError, DataError
    from perceive.io.atomic import check_output_file
    from perceive.training.checkpoint import detector_from_checkpoint, load_checkpoint

    extra = None
    if args.provenance is not None:
        try:
            extra = json.loads(Path(args.provenance).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read provenance JSON: {e}", path=args.provenance) from None
        if not isinstance(extra, dict):
            raise DataError(
                f"provenance must be a JSON object, got {type(extra).__name__}",
                path=args.provenance,
            )
    if args.parity < 0:
        raise ConfigError(f"--parity must be >= 0, got {args.parity}")
    check_output_file(args.out, "--out")
    ckpt = load_checkpoint(args.checkpoint)
    result = export_onnx(
        args.checkpoint, args.out, provenance=extra, opset=args.opset, verbose=args.verbose
    )
    size = result.onnx_path.stat().st_size / 1e6
    print(
        f"wrote {result.onnx_path} ({size:.1f} MB, {result.num_nodes} nodes, "
        f"opset {result.opset}) and {result.sidecar_path}"
    )
    if args.parity > 0:
        model = detector_from_checkpoint(ckpt)
        worst_box = worst_score = 0.0
        ok = True
        for res in check_parity(
            model, result.onnx_path, parity_inputs(model.config, count=args.parity)
        ):
            print(
                f"  parity N={res.num_points:>7}: max |score diff| {res.max_score_diff:.2e}, "
                f"max |box diff| {res.max_box_diff:.2e} over {res.num_compared} boxes, "
                f"labels {'ok' if res.labels_match else 'DIFFER'}"
            )
            worst_box, worst_score = (
                max(worst_box, res.max_box_diff),
                max(worst_score, res.max_score_diff),
            )
            ok = ok and res.within(box_atol=PARITY_BOX_M, score_atol=PARITY_SCORE)
        print(f"parity: worst box diff {worst_box:.2e} m, worst score diff {worst_score:.2e}")
        if not ok:
            print(
                "parity FAILED: labels must match, boxes within "
                f"{PARITY_BOX_M:g} m, scores within {PARITY_SCORE:g}"
            )
            return 1
    return 0
