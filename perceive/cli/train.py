"""``perceive train``: train the detector from a JSON config, flags, or both (flags win).

Examples::

    perceive train --train datasets/synth/train --val datasets/synth/val \\
        --variant fusion --iterations 600 --out runs/fusion
    perceive train --config tools/configs/round1_fusion.json --iterations 10
    perceive train --config tools/configs/round1_fusion.json --print-config > resolved.json

A run resumes from ``<out>/last.pt`` when it exists. Several GPUs:
``torchrun --nproc_per_node 4 -m perceive.cli.main train --config ...``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive train``."""
    parser.add_argument(
        "--config", type=Path, help="JSON training config (TrainConfig.to_dict form)"
    )
    parser.add_argument(
        "--train", nargs="+", metavar="DATA", help="training .tfrecord files/folders or cache"
    )
    parser.add_argument(
        "--val", nargs="+", metavar="DATA", help="validation data evaluated during/after training"
    )
    parser.add_argument("--out", help="output folder (checkpoints, log.jsonl, model.pt)")
    parser.add_argument(
        "--variant", choices=("fusion", "lidar", "camera"), help="sensors the model uses"
    )
    parser.add_argument(
        "--model-config", type=Path, help="JSON DetectorConfig (DetectorConfig.to_dict form)"
    )
    parser.add_argument("--tiny", action="store_true", help="use the tiny test model (smoke runs)")
    parser.add_argument("--iterations", type=int, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, help="frames per step (per process)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--seed", type=int, help="seed of weights, frame order and augmentation")
    parser.add_argument("--workers", type=int, help="DataLoader workers")
    parser.add_argument("--threads", type=int, help="torch CPU threads (0: default)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), help="mixed precision")
    parser.add_argument("--no-augment", action="store_true", help="disable augmentation")
    parser.add_argument(
        "--no-preload", action="store_true", help="read frames from disk every epoch"
    )
    parser.add_argument("--eval-every", type=int, help="steps between evaluations (0: at the end)")
    parser.add_argument("--eval-max-frames", type=int, help="evaluate on at most this many frames")
    parser.add_argument("--checkpoint-every", type=int, help="steps between last.pt writes")
    parser.add_argument("--log-every", type=int, help="steps per log.jsonl line")
    parser.add_argument("--stop-at", type=int, help="stop after this many steps (resume later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as JSON and exit"
    )


def resolve_config(args: argparse.Namespace) -> Any:
    """The :class:`~perceive.training.train.TrainConfig` of a config file and flags."""
    from perceive.errors import ConfigError
    from perceive.models.config import DetectorConfig, tiny_config
    from perceive.training.train import TrainConfig

    data: dict[str, Any] = {}
    if args.config is not None:
        data = TrainConfig.load(args.config).to_dict()
    if args.model_config is not None:
        path = Path(args.model_config)
        if not path.is_file():
            raise FileNotFoundError(f"no such model config: {path}")
        try:
            data["model"] = DetectorConfig.from_dict(json.loads(path.read_text())).to_dict()
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not JSON: {e}") from None
    if args.tiny:
        data["model"] = tiny_config().to_dict()
    if args.variant is not None:
        model = DetectorConfig.from_dict(data["model"]) if "model" in data else DetectorConfig()
        data["model"] = model.replace(variant=args.variant).to_dict()
    flags = {
        "train_data": args.train,
        "val_data": args.val,
        "out_dir": args.out,
        "iterations": args.iterations,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "num_workers": args.workers,
        "threads": args.threads,
        "device": args.device,
        "amp": args.amp,
        "eval_every": args.eval_every,
        "eval_max_frames": args.eval_max_frames,
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.no_augment:
        data["augment"] = None
    if args.no_preload:
        data["preload"] = False
    if args.no_progress:
        data["progress"] = False
    if "train_data" not in data:
        raise ConfigError("no training data: pass --train DATA or a --config with train_data")
    return TrainConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Train and print where the model went."""
    from perceive.training.train import train

    config = resolve_config(args)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2, sort_keys=True))
        return 0
    result = train(config, stop_at=args.stop_at)
    if "WORLD_SIZE" in os.environ and int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports, as only it logs and writes
    if result.step < config.iterations:
        print(
            f"stopped at step {result.step}/{config.iterations}; "
            f"run again to resume ({result.out_dir}/last.pt)"
        )
        return 0
    print(
        f"trained {config.model.variant} for {result.step} steps "
        f"({result.samples_per_s:.2f} samples/s this run); model: {result.model_path}"
    )
    if result.metrics is not None:
        m = result.metrics
        per_class = ", ".join(
            f"{k[:-3].lower()} {v['aph']:.3f}"
            for k, v in m.items()
            if isinstance(v, dict) and k.endswith("_L2")
        )
        print(f"val mAPH L2 {m['mean_aph_l2']:.4f} (APH L2: {per_class})")
    return 0
