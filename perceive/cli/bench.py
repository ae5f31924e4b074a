"""``perceive bench MODEL.onnx``: latency of an exported model on CPU and GPU, per stage.

Examples::

    perceive bench exports/fusion.onnx --threads 2 --iters 50 --json bench.json --plot bench.png
    perceive bench exports/fusion.onnx --compare-torch exports/fusion.pt --threads 2
    perceive bench exports/fusion.onnx --sweep --iters 20
    perceive bench exports/fusion.onnx --device tensorrt --precision fp16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perceive.errors import ConfigError
from perceive.io.atomic import check_output_file


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _str_list(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(choices)}, got {text!r}"
            )
        return values

    return parse


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive bench``."""
    from perceive.deploy.bench import DEVICES, PRECISIONS

    parser.add_argument("model", type=Path, help="exported model (.onnx with perceive metadata)")
    parser.add_argument(
        "--device", choices=DEVICES, default="cpu", help="execution provider (default cpu)"
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="intra-op threads (default: one per core)",
    )
    parser.add_argument(
        "--warmup", type=_non_negative_int, default=5, help="untimed iterations (default 5)"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--iters", type=_positive_int, default=None, help="timed iterations (default 50)"
    )
    length.add_argument(
        "--duration", type=_positive_float, default=None, help="time the loop for S seconds"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=Path, default=None, help="a v1 .tfrecord file or a folder of them"
    )
    source.add_argument(
        "--synthetic", action="store_true", help="generated Waymo-sized frames (the default)"
    )
    parser.add_argument(
        "--frames", type=_positive_int, default=4, help="frames to cycle through (default 4)"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="tiny generated frames (a smoke test, not a realistic timing)",
    )
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="model variant (default fp32)"
    )
    parser.add_argument(
        "--compare-torch",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="also run this checkpoint in PyTorch",
    )
    parser.add_argument("--sweep", action="store_true", help="threads x precision x device grid")
    parser.add_argument(
        "--sweep-threads",
        type=_int_list,
        default=None,
        metavar="T1,T2",
        help="threads of the sweep",
    )
    parser.add_argument(
        "--sweep-precisions",
        type=_str_list(PRECISIONS),
        default=PRECISIONS,
        metavar="P1,P2",
        help="sweep precisions",
    )
    parser.add_argument(
        "--sweep-devices",
        type=_str_list(DEVICES),
        default=DEVICES,
        metavar="D1,D2",
        help="sweep devices",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="write the report as JSON"
    )
    parser.add_argument(
        "--plot", type=Path, default=None, metavar="OUT.png", help="latency histogram and CDF"
    )
    parser.add_argument("--no-flops", action="store_true", help="skip counting the model's FLOPs")
    parser.add_argument("--no-probe", action="store_true", help="skip the matmul peak probe")
    parser.add_argument(
        "--profile", action="store_true", help="time every operator with onnxruntime's profiler"
    )
    parser.add_argument(
        "--no-optimize", action="store_true", help="run the graph as exported (no exact rewrites)"
    )
    parser.add_argument(
        "--flush-denormals",
        action="store_true",
        help="treat denormal floats as zero (onnxruntime and PyTorch)",
    )
    parser.add_argument(
        "--variant-dir", type=Path, default=None, help="where FP16/INT8 variants are written"
    )
    parser.add_argument("--trt-cache", type=Path, default=None, help="TensorRT engine cache folder")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, write JSON and PNG if asked."""
    from perceive.deploy.bench import (
        BenchConfig,
        format_report,
        plot_report,
        run_benchmark,
        write_json,
    )

    if not args.model.is_file():
        raise FileNotFoundError(f"no such model file: {args.model}")
    if args.model.suffix != ".onnx":
        raise ConfigError(f"MODEL must be an .onnx file, got {args.model}")
    if args.data is not None and not args.data.exists():
        raise FileNotFoundError(f"no such file or folder: {args.data}")
    if args.compare_torch is not None and not args.compare_torch.is_file():
        raise FileNotFoundError(f"no such checkpoint: {args.compare_torch}")
    if args.json is not None:
        check_output_file(args.json, "--json")
    if args.plot is not None:
        check_output_file(args.plot, "--plot", suffix=".png")
    if args.small and args.data is not None:
        raise ConfigError("--small applies to generated frames, not to --data")
    cfg = BenchConfig(
        model=str(args.model),
        device=args.device,
        threads=args.threads,
        warmup=args.warmup,
        iters=args.iters,
        duration_s=args.duration,
        data=None if args.data is None else str(args.data),
        num_frames=args.frames,
        frame_size="small" if args.small else "waymo",
        precision=args.precision,
        compare_torch=None if args.compare_torch is None else str(args.compare_torch),
        sweep=args.sweep,
        sweep_threads=args.sweep_threads,
        sweep_precisions=tuple(args.sweep_precisions),
        sweep_devices=tuple(args.sweep_devices),
        flops=not args.no_flops,
        probe=not args.no_probe,
        profile=args.profile,
        optimize=not args.no_optimize,
        flush_denormals=args.flush_denormals,
        variant_dir=None if args.variant_dir is None else str(args.variant_dir),
        trt_cache_dir=None if args.trt_cache is None else str(args.trt_cache),
    )

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    report = run_benchmark(cfg, progress=progress)
    print(format_report(report))
    if args.json is not None:
        write_json(report, args.json)
        print(f"\nJSON report: {args.json}")
    if args.plot is not None:
        plot_report(report, args.plot)
        print(f"latency plot: {args.plot}")
    return 0
