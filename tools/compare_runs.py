"""Compare training runs (variants x seeds) on their validation metrics.

Prints a Markdown table per variant (mean over seeds, with the mAPH range) and one per
run (``--metrics FILE``: final metrics from each run's ``perceive evaluate --json``
file, e.g. on a held-out test set), and with ``--plot`` draws mAPH L2 against the
training step and the final APH per class (one dot per run):

    .venv/bin/python tools/compare_runs.py \\
        fusion=outputs/runs/r3_fusion_s0,outputs/runs/r3_fusion_s1 \\
        lidar=outputs/runs/r3_lidar_s0,outputs/runs/r3_lidar_s1 \\
        camera=outputs/runs/r3_camera_s0 --plot docs/images/fusion_vs_single.png
"""

from __future__ import annotations

import argparse
import sys

from perceive.errors import PerceiveError
from perceive.training.runs import (
    load_groups,
    markdown_table,
    per_run_table,
    save_comparison_figure,
)


def parse_group(text: str) -> tuple[str, list[str]]:
    """``label=run1,run2`` -> ``(label, [run1, run2])``."""
    label, sep, runs = text.partition("=")
    paths = [p for p in runs.split(",") if p]
    if not sep or not label or not paths:
        raise argparse.ArgumentTypeError(f"expected LABEL=RUN[,RUN...], got {text!r}")
    return label, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="+", type=parse_group, metavar="LABEL=RUN[,RUN...]")
    parser.add_argument("--plot", metavar="PNG", help="write the comparison figure here")
    parser.add_argument(
        "--metrics",
        metavar="FILE",
        help="take each run's final metrics from RUN/FILE (written by perceive evaluate "
        "--json, e.g. on a held-out test set) instead of its log's last evaluation",
    )
    parser.add_argument(
        "--label", help="what the final metrics were measured on, for the figure (e.g. 'test set')"
    )
    args = parser.parse_args(argv)
    labels = [label for label, _ in args.groups]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:  # a dict would keep only the last group of a label
        parser.error(f"label(s) {repeated} given twice: list a label's runs once, comma-separated")
    try:
        results = load_groups(dict(args.groups), args.metrics)
    except PerceiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown_table(results))
    print()
    print(per_run_table(results))
    if args.plot:
        label = args.label or args.metrics or "final validation"
        print(f"wrote {save_comparison_figure(results, args.plot, label)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
