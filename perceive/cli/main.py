"""``perceive``: one command, with a subcommand per job.

Each subcommand lives in its own module under :mod:`perceive.cli` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. The table below is the only
place subcommands are listed (no registration by import side effects), and a
module is imported only when its subcommand runs, so ``perceive --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from perceive import __version__
from perceive.errors import PerceiveError

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("perceive.cli.demo", "the main job end to end on generated data"),
    "info": ("perceive.cli.info", "summarise a Waymo segment and draw its frame"),
    "bench-loader": (
        "perceive.cli.bench_loader",
        "frames per second of the Waymo reader, per stage",
    ),
    "synth": ("perceive.cli.synth", "generate synthetic driving data in the Waymo format"),
    "convert": (
        "perceive.cli.convert",
        "convert Waymo data to a training cache, KITTI, PCD or PLY",
    ),
    "train": ("perceive.cli.train", "train the fusion detector"),
    "evaluate": ("perceive.cli.evaluate", "Waymo detection metrics (AP/APH, LEVEL_1/LEVEL_2)"),
    "visualize": ("perceive.cli.visualize", "draw predictions and ground truth on BEV and cameras"),
    "export": ("perceive.cli.export", "export a checkpoint to one ONNX graph"),
    "bench": ("perceive.cli.bench", "latency benchmark of an exported model on CPU and GPU"),
}


def _load(name: str):
    module_name = SUBCOMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise SystemExit(f"perceive {name}: not available in this version") from e
        raise SystemExit(
            f"perceive {name}: needs the Python package {e.name!r}; "
            "install perceive with its extras (pip install 'perceive[all]')"
        ) from e


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="perceive", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"perceive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            _load(name).add_arguments(p)
    return parser


def _without_worker_traceback(message: str) -> str:
    """An error re-raised from a DataLoader worker carries the worker's traceback in its
    message ("Caught X in DataLoader worker process 0. Original Traceback ..."): keep the
    error's own last line."""
    if "Original Traceback" not in message:
        return message
    last = [line for line in message.splitlines() if line.strip()][-1]
    # "perceive.errors.DataError: <message>" -> "<message> (in a DataLoader worker)"
    head, sep, rest = last.partition(": ")
    return f"{rest if sep and '.' in head else last} (in a DataLoader worker)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perceive`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in SUBCOMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(_load(args.command).run(args) or 0)
    except PerceiveError as e:
        print(
            f"perceive {args.command}: error: {_without_worker_traceback(str(e))}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C: one line (train says where it can resume)
        print(f"perceive {args.command}: {str(e) or 'interrupted'}", file=sys.stderr)
        return 130
    except OSError as e:  # a path that cannot be read or written: one line, no traceback
        print(f"perceive {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
