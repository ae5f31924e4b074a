"""``perceive evaluate``: Waymo 3D detection metrics (AP/APH at LEVEL_1 and LEVEL_2).

From the official ``Objects`` files::

    perceive evaluate --pred pred.bin --gt gt.bin [--json metrics.json] [--plot pr.png]

End to end, running a checkpoint over a dataset (Waymo v1 ``.tfrecord`` files or a
perceive cache)::

    perceive evaluate --checkpoint model.pt --data val/ [--json metrics.json]
                      [--save-pred pred.bin] [--save-gt gt.bin] [--box-errors]

Prints every breakdown under its official name (``OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2``,
``RANGE_TYPE_PEDESTRIAN_[30, 50)_LEVEL_1``, ...) with AP and APH, and the leaderboard
figure (mAPH at LEVEL_2 over vehicle, pedestrian, cyclist).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from perceive.errors import ConfigError, MissingFileError, PerceiveError
from perceive.evaluation.detections import FrameDetections
from perceive.io.atomic import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the subcommand's arguments."""
    files = parser.add_argument_group("from Waymo Objects files")
    files.add_argument(
        "--pred", type=Path, metavar="P.bin", help="predictions (serialized Objects)"
    )
    files.add_argument("--gt", type=Path, metavar="G.bin", help="ground truth (serialized Objects)")
    e2e = parser.add_argument_group("end to end")
    e2e.add_argument(
        "--checkpoint", type=Path, metavar="CKPT", help="a trained detector checkpoint"
    )
    e2e.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="dataset to run it on: Waymo v1 .tfrecord file or folder, or a perceive cache",
    )
    e2e.add_argument(
        "--save-pred", type=Path, metavar="P.bin", help="also write the predictions as Objects"
    )
    e2e.add_argument(
        "--save-gt", type=Path, metavar="G.bin", help="also write the ground truth as Objects"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the metrics as JSON here")
    parser.add_argument(
        "--plot", type=Path, metavar="PNG", help="draw the precision/recall curves (LEVEL_2) here"
    )
    parser.add_argument(
        "--box-errors",
        action="store_true",
        help="also print, per type, the heading (axis and flipped front), centre and size "
        "errors of the detections nearest to the ground truth",
    )
    parser.add_argument(
        "--no-curves",
        action="store_true",
        help="leave the per-cutoff precision/recall curves out of the JSON",
    )


def _check_args(args: argparse.Namespace) -> str:
    files = args.pred is not None or args.gt is not None
    e2e = args.checkpoint is not None or args.data is not None
    if files and e2e:
        raise ConfigError("give either --pred and --gt, or --checkpoint and --data, not both")
    if files:
        if args.pred is None or args.gt is None:
            raise ConfigError("--pred and --gt go together: give both files")
        if args.save_pred is not None or args.save_gt is not None:
            raise ConfigError("--save-pred and --save-gt apply to --checkpoint/--data only")
        return "files"
    if e2e:
        if args.checkpoint is None or args.data is None:
            raise ConfigError("--checkpoint and --data go together: give both")
        return "e2e"
    raise ConfigError("nothing to evaluate: give --pred and --gt, or --checkpoint and --data")


def _check_outputs(args: argparse.Namespace) -> None:
    """Outputs that cannot be written are refused before the evaluation, not after it."""
    for flag in ("json", "plot", "save_pred", "save_gt"):
        out = getattr(args, flag, None)
        if out is not None:
            suffix = ".png" if flag == "plot" else None
            check_output_file(out, "--" + flag.replace("_", "-"), suffix=suffix)


def _as_frames(value: object, what: str) -> list[FrameDetections]:
    frames = list(value)  # type: ignore[call-overload]
    for f in frames:
        if not isinstance(f, FrameDetections):
            raise PerceiveError(
                f"predict_dataset returned {type(f).__name__} items in its {what}; "
                "expected perceive.evaluation.FrameDetections"
            )
    return frames


def predict_and_load(
    checkpoint: Path, data: Path
) -> tuple[list[FrameDetections], list[FrameDetections]]:
    """Run a checkpoint over a dataset; return ``(predictions, ground truth)``.

    Predictions come from :func:`perceive.training.predict.predict_dataset`. If it
    returns a pair, the second item is the ground truth; otherwise the ground truth is
    read from ``data`` with :func:`perceive.evaluation.dataset.load_ground_truth`.
    """
    if not checkpoint.exists():
        raise MissingFileError("no such checkpoint", path=checkpoint)
    if not data.exists():
        raise MissingFileError("no such dataset file or folder", path=data)
    try:
        from perceive.training.predict import predict_dataset
    except ModuleNotFoundError as e:
        if e.name in ("perceive.training", "perceive.training.predict"):
            raise PerceiveError(
                "evaluating a checkpoint needs perceive.training.predict.predict_dataset, "
                "which this installation does not have yet; evaluate saved predictions "
                "with --pred and --gt instead"
            ) from e
        raise
    except ImportError as e:
        raise PerceiveError(f"evaluating a checkpoint needs perceive.training.predict: {e}") from e
    result = predict_dataset(checkpoint, data)
    if isinstance(result, tuple) and len(result) == 2:
        return _as_frames(result[0], "predictions"), _as_frames(result[1], "ground truth")
    from perceive.evaluation.dataset import load_ground_truth

    return _as_frames(result, "predictions"), load_ground_truth(data)


def run(args: argparse.Namespace) -> int:
    """Run ``perceive evaluate``."""
    from perceive.evaluation.metrics import evaluate_detections
    from perceive.evaluation.objects_io import read_objects, write_objects
    from perceive.io.atomic import atomic_write_text

    mode = _check_args(args)
    _check_outputs(args)
    if mode == "files":
        predictions = read_objects(args.pred)
        ground_truth = read_objects(args.gt)
        sources = {"predictions": str(args.pred), "ground_truth": str(args.gt)}
    else:
        predictions, ground_truth = predict_and_load(args.checkpoint, args.data)
        if args.save_pred is not None:
            write_objects(args.save_pred, predictions)
        if args.save_gt is not None:
            write_objects(args.save_gt, ground_truth)
        sources = {"checkpoint": str(args.checkpoint), "data": str(args.data)}
    t0 = time.perf_counter()
    metrics = evaluate_detections(predictions, ground_truth)
    seconds = time.perf_counter() - t0
    print(metrics.table())
    print(f"evaluated in {seconds:.2f} s")
    if args.box_errors:
        from perceive.evaluation.diagnostics import (
            MAX_DISTANCE,
            MIN_SCORE,
            box_error_stats,
            format_box_errors,
        )

        print()
        print(
            "errors of the detection nearest to each ground-truth box "
            f"(within {MAX_DISTANCE:g} m, score >= {MIN_SCORE:g}):"
        )
        print(format_box_errors(box_error_stats(predictions, ground_truth)))
    if args.json is not None:
        doc = {"sources": sources, **metrics.to_dict(curves=not args.no_curves)}
        atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot is not None:
        from perceive.evaluation.plot import plot_pr_curves

        plot_pr_curves(metrics, args.plot)
        print(f"wrote {args.plot}")
    return 0
