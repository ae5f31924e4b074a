"""``perceive demo``: the whole product on generated data, end to end.

Generates a small synthetic Waymo dataset (no downloads), reads it back and draws it,
converts it to the training cache and the KITTI layout, trains a small detector for a
few iterations and exports it to one ONNX graph (checking parity with PyTorch),
evaluates the shipped fusion model with the Waymo metrics, draws its detections, and
benchmarks its latency. Every step is an ordinary ``perceive`` subcommand; the demo
prints each one so it can be rerun by hand. Steps whose outputs exist are redone
cheaply or skipped (the generator and converters resume).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from perceive.errors import PerceiveError
from perceive.io.atomic import atomic_write_text

#: The model shipped with the package (trained on the synthetic benchmark).
SHIPPED_CHECKPOINT = Path("exports/fusion.pt")
SHIPPED_ONNX = Path("exports/fusion.onnx")


@dataclass(frozen=True)
class Step:
    """One step of the demo: a ``perceive`` command line."""

    name: str
    """What the step does, for the log."""
    argv: tuple[str, ...]
    """Arguments of the ``perceive`` command."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive demo``."""
    parser.add_argument(
        "--out", default="outputs/demo", help="output folder (default outputs/demo)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated data")
    parser.add_argument(
        "--train-iterations", type=int, default=30, help="iterations of the demo training run"
    )
    parser.add_argument(
        "--checkpoint",
        default=str(SHIPPED_CHECKPOINT),
        help="model evaluated, drawn and benchmarked (default: the shipped fusion model)",
    )
    parser.add_argument("--bench-iters", type=int, default=20, help="timed benchmark iterations")


def plan(args: argparse.Namespace) -> list[Step]:
    """The demo's steps for the given arguments."""
    from perceive.synth.generate import segment_filename

    out = Path(args.out)
    data, train_data, val_data = out / "data", out / "data" / "train", out / "data" / "val"
    seed = args.seed
    checkpoint = Path(args.checkpoint)
    onnx = checkpoint.with_suffix(".onnx")
    steps = [
        Step(
            "generate a small training set (tiny preset)",
            (
                "synth",
                "--out",
                str(train_data),
                "--segments",
                "2",
                "--frames",
                "6",
                "--seed",
                str(seed),
                "--preset",
                "tiny",
                "--no-progress",
            ),
        ),
        Step(
            "generate a validation segment at the training preset (full-size LiDAR)",
            (
                "synth",
                "--out",
                str(val_data),
                "--segments",
                "1",
                "--frames",
                "3",
                "--seed",
                str(seed + 1),
                "--preset",
                "train",
                "--no-progress",
            ),
        ),
        Step(
            "read a generated frame back and draw it",
            ("info", str(val_data / segment_filename(seed + 1, 0)), "--out", str(out / "info")),
        ),
        Step(
            "convert to the training cache",
            (
                "convert",
                str(train_data),
                "--to",
                "cache",
                "--out",
                str(data / "cache_train"),
                "--quiet",
            ),
        ),
        Step(
            "convert to the KITTI layout",
            (
                "convert",
                str(val_data),
                "--to",
                "kitti",
                "--out",
                str(data / "kitti_val"),
                "--quiet",
            ),
        ),
        Step(
            "train a tiny fusion model for a few iterations (a smoke run of the training loop)",
            (
                "train",
                "--tiny",
                "--train",
                str(data / "cache_train"),
                "--out",
                str(out / "train"),
                "--iterations",
                str(args.train_iterations),
                "--batch-size",
                "2",
                "--no-progress",
            ),
        ),
        Step(
            "export it to one ONNX graph and check parity with PyTorch",
            (
                "export",
                str(out / "train" / "model.pt"),
                "--out",
                str(out / "train" / "model.onnx"),
                "--parity",
                "2",
            ),
        ),
        Step(
            "evaluate the model with the Waymo metrics",
            (
                "evaluate",
                "--checkpoint",
                str(checkpoint),
                "--data",
                str(val_data),
                "--json",
                str(out / "metrics.json"),
                "--plot",
                str(out / "pr_curves.png"),
            ),
        ),
        Step(
            "draw its detections on BEV and camera images",
            (
                "visualize",
                str(checkpoint),
                "--data",
                str(val_data),
                "--out",
                str(out / "detections"),
            ),
        ),
        Step(
            "benchmark the exported model with onnxruntime on this CPU",
            (
                "bench",
                str(onnx),
                "--data",
                str(val_data),
                "--iters",
                str(args.bench_iters),
                "--warmup",
                "3",
                "--json",
                str(out / "bench.json"),
                "--plot",
                str(out / "latency.png"),
                "--quiet",
            ),
        ),
    ]
    return steps


def run(args: argparse.Namespace) -> int:
    """Run every step in order; stop at the first failure."""
    from perceive.cli.main import main as perceive_main

    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists() or not checkpoint.with_suffix(".onnx").exists():
        raise PerceiveError(
            f"{checkpoint} (and its .onnx export) not found: run the demo from the "
            "repository root, or pass --checkpoint"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = []
    t_all = time.perf_counter()
    for i, step in enumerate(plan(args), 1):
        line = "perceive " + " ".join(shlex.quote(a) for a in step.argv)
        print(f"\n[{i}] {step.name}\n    $ {line}", flush=True)
        t0 = time.perf_counter()
        rc = perceive_main(list(step.argv))
        dt = time.perf_counter() - t0
        log.append({"step": step.name, "command": line, "exit_code": rc, "seconds": round(dt, 2)})
        atomic_write_text(out / "demo_log.json", json.dumps(log, indent=2) + "\n")
        if rc != 0:
            print(f"demo: step {i} failed with exit code {rc}: {line}")
            return rc
        print(f"    done in {dt:.1f} s", flush=True)
    print(f"\ndemo finished in {time.perf_counter() - t_all:.0f} s; outputs under {out}/")
    return 0
