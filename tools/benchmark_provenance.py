"""Write the ``benchmark`` part of the shipped model's provenance from finished runs.

Collects, for every run folder ``outputs/runs/<round>_<variant>_s<seed>`` with a
``model.pt``, its last validation evaluation (``log.jsonl``) and, when present, its
``test_metrics.json`` and ``test2_metrics.json`` (``perceive evaluate --json`` on the two
test sets), and writes them with the commands that made the benchmark. With several
``--prefix`` rounds (a new fusion model beside the baselines it is compared with) the runs
are keyed ``<round>_<variant>``.
``perceive export --provenance`` merges the file into the ONNX metadata:

    .venv/bin/python tools/benchmark_provenance.py --prefix round6 \\
        --shipped round6_fusion_s0 --out outputs/fusion_provenance_round6.json
    .venv/bin/perceive export exports/fusion.pt --out exports/fusion.onnx \\
        --provenance outputs/fusion_provenance_round6.json --parity 3
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from _cli import run  # tools/_cli.py (this folder is on sys.path)

from perceive.io.atomic import atomic_write_text
from perceive.training.runs import load_run

COMMANDS = [
    "perceive synth --out datasets/synth/train --segments 8 --frames 20 --seed 1 --preset train",
    "perceive synth --out datasets/synth/train_wide --segments 32 --frames 10 --seed 4 "
    "--preset train",
    "perceive synth --out datasets/synth/val --segments 3 --frames 20 --seed 2 --preset train",
    "perceive synth --out datasets/synth/test --segments 16 --frames 5 --seed 3 --preset train",
    "perceive synth --out datasets/synth/test2 --segments 24 --frames 5 --seed 5 --preset train",
    "perceive convert datasets/synth/<split> --to cache --out outputs/cache/synth_<split>",
    "perceive train --config tools/configs/<round>_<variant>.json --seed <s> "
    "--out outputs/runs/<round>_<variant>_s<s>",
    "perceive evaluate --checkpoint outputs/runs/<round>_<variant>_s<s>/model.pt "
    "--data outputs/cache/synth_test --json outputs/runs/<round>_<variant>_s<s>/test_metrics.json",
    "perceive evaluate --checkpoint outputs/runs/<round>_<variant>_s<s>/model.pt "
    "--data outputs/cache/synth_test2 "
    "--json outputs/runs/<round>_<variant>_s<s>/test2_metrics.json",
]


def collect(runs_dir: Path, prefix: str) -> dict[str, dict[str, dict]]:
    """variant -> seed -> {"val": ..., "test": ...} of every finished run."""
    out: dict[str, dict[str, dict]] = {}
    pattern = re.compile(rf"^{re.escape(prefix)}_(\w+?)_s(\d+)$")
    for d in sorted(runs_dir.iterdir()):
        m = pattern.match(d.name)
        if not m or not (d / "model.pt").exists():
            continue
        test = (d / "test_metrics.json").exists()
        run = load_run(d, "test_metrics.json" if test else None)
        last = run.history[-1]
        entry = {"step": last.step, "val": _point(last)}
        if test:
            entry["test"] = _point(run.final)
        if (d / "test2_metrics.json").exists():  # the second test set (round 6 on)
            entry["test2"] = _point(load_run(d, "test2_metrics.json").final)
        out.setdefault(m.group(1), {})[f"s{m.group(2)}"] = entry
    return out


def training_data(runs_dir: Path, prefix: str) -> str:
    """What the runs of ``prefix`` trained on, from a run's ``provenance.json``."""
    for d in sorted(runs_dir.glob(f"{prefix}_*_s*")):
        prov = d / "provenance.json"
        if not prov.exists():
            continue
        train = json.loads(prov.read_text()).get("data", {}).get("train", {})
        synth = ", ".join(
            f"perceive synth seed {s['seed']}, {s['frames_per_segment']} frames per segment"
            for s in train.get("synth", [])
        )
        return f"{'+'.join(train.get('paths', ['?']))} ({train.get('frames', '?')} frames; {synth})"
    return "unknown"


def _point(p) -> dict:
    return {
        "mean_aph_l2": p.mean_aph_l2,
        **{f"{c}_L2": {"ap": p.ap[c], "aph": p.aph[c]} for c in p.ap},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("outputs/runs"))
    parser.add_argument(
        "--prefix", nargs="+", default=["round6"], help="run folders <prefix>_<variant>_s<N>"
    )
    parser.add_argument("--shipped", default="round6_fusion_s0", help="the exported run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, dict]] = {}
    for prefix in args.prefix:
        for variant, seeds in collect(args.runs, prefix).items():
            runs[variant if len(args.prefix) == 1 else f"{prefix}_{variant}"] = seeds
    if not runs:
        print(f"error: no finished {args.prefix} runs in {args.runs}", file=sys.stderr)
        return 2
    rounds = ", ".join(args.prefix)
    trained = "; ".join(f"{p} trained on {training_data(args.runs, p)}" for p in args.prefix)
    doc = {
        "benchmark": {
            "description": (
                f"synthetic benchmark, runs of {rounds}: {trained}; validation "
                "datasets/synth/val (3 segments x 20 frames, seed 2), test datasets/synth/test "
                "(16 x 5, seed 3) and, from round 6 on, datasets/synth/test2 (24 x 5, seed 5); "
                "the same budget for every variant "
                f"(tools/configs/<round>_<variant>.json, <round> in {rounds}: 3600 steps of 2 "
                "frames); metrics at LEVEL_2"
            ),
            "commands": COMMANDS,
            "shipped": args.shipped,
            "metrics_by_variant_and_seed": runs,
        }
    }
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}: " + ", ".join(f"{v} {sorted(s)}" for v, s in runs.items()))
    return 0


if __name__ == "__main__":
    run(main)
