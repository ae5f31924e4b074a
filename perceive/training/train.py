"""The training loop: data, optimisation, mixed precision, DDP, checkpoints, logs, evaluation.

>>> cfg = TrainConfig(train_data=("datasets/synth/train",), val_data=("datasets/synth/val",))
>>> train(cfg)                                                    # doctest: +SKIP

* Iteration based: ``iterations`` optimizer steps of ``batch_size`` frames per process;
  the frame order of epoch ``e`` is a permutation drawn from ``(seed, e)``, sharded over
  the processes, so a run is reproducible and resumes at the exact batch it stopped at.
* Resumable: ``<out_dir>/last.pt`` holds the model, the optimizer, the scheduler, the
  step and the RNG states; a new run with the same ``out_dir`` continues from it.
* Logs: ``<out_dir>/log.jsonl``, one JSON object per line (``{"step", "loss", ...}`` for
  training windows, ``{"step", "eval": {...}}`` for evaluations), and a tqdm bar.
* Mixed precision: CUDA autocast (bf16 where supported, else fp16 with a GradScaler);
  on the CPU optional bf16 autocast (``amp="bf16"``), off by default (it is slower
  than float32 on most CPUs without AMX).
* Several GPUs or nodes: launch with ``torchrun``; the loop initialises the process
  group from the environment (NCCL on CUDA, gloo on the CPU) and wraps the model in
  ``DistributedDataParallel``. Only rank 0 writes logs and checkpoints.
* The result: ``<out_dir>/model.pt``, a model-only checkpoint with its provenance
  (training config, data, iterations, final metrics, date, git commit).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from perceive.errors import ConfigError, DataError
from perceive.io.atomic import atomic_open
from perceive.models.build import build_detector, build_loss
from perceive.models.config import DetectorConfig
from perceive.models.detector import Detector
from perceive.training.augment import AugmentConfig
from perceive.training.checkpoint import load_checkpoint, save_checkpoint

#: The data pipeline's point budget: effectively none (the model applies its own cap).
DATASET_MAX_POINTS = 10_000_000

#: Values of :attr:`TrainConfig.amp`.
AMP_MODES = ("auto", "off", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run."""

    train_data: tuple[str, ...]
    """Training frames: Waymo v1 ``.tfrecord`` files, folders of them or globs, or a perceive
    training cache folder (``perceive convert --to cache``)."""
    val_data: tuple[str, ...] = ()
    """Held-out frames for evaluation (same forms); empty for none."""
    out_dir: str = "runs/detector"
    """Checkpoints and logs go here; an existing ``last.pt`` is resumed."""
    model: DetectorConfig = field(default_factory=DetectorConfig)
    """The detector (its ``variant`` picks fusion, LiDAR-only or camera-only)."""
    iterations: int = 1000
    """Optimizer steps."""
    batch_size: int = 4
    """Frames per step and process."""
    lr: float = 2e-3
    """Peak learning rate of the one-cycle schedule (AdamW)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_fraction: float = 0.1
    """Fraction of the steps spent warming the learning rate up."""
    grad_clip: float = 10.0
    """Gradient norm clip; 0 disables clipping."""
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    """Global augmentations of the training frames; None for none."""
    seed: int = 0
    """Seed of weights, frame order and augmentation."""
    num_workers: int = 1
    """DataLoader worker processes (0: load in the training process)."""
    preload: bool = True
    """Read every training frame into memory once (fast epochs on small data sets)."""
    amp: str = "auto"
    """Mixed precision: ``auto`` (CUDA: bf16 or fp16; CPU: off), ``off``, ``bf16``, ``fp16``."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    threads: int = 0
    """CPU threads of torch (0: leave torch's default)."""
    log_every: int = 10
    """Steps per line of ``log.jsonl`` (losses averaged over the window)."""
    checkpoint_every: int = 100
    """Steps between writes of ``last.pt`` (it is also written at the end)."""
    eval_every: int = 0
    """Steps between evaluations on ``val_data`` (0: only at the end)."""
    eval_max_frames: int = 0
    """Evaluate on at most this many validation frames (0: all)."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        from perceive.utils.config_types import check_field_types

        check_field_types(
            TrainConfig, {f.name: getattr(self, f.name) for f in fields(self)}, "training config"
        )
        for name in ("train_data", "val_data"):
            v = getattr(self, name)
            v = (v,) if isinstance(v, str | Path) else tuple(str(x) for x in v)
            object.__setattr__(self, name, v)
        if not self.train_data:
            raise ConfigError("train_data must name at least one file or folder")
        if not isinstance(self.model, DetectorConfig):
            raise ConfigError(f"model must be a DetectorConfig, got {type(self.model).__name__}")
        if self.augment is not None and not isinstance(self.augment, AugmentConfig):
            raise ConfigError(f"augment must be an AugmentConfig or None, got {self.augment!r}")
        for name in ("iterations", "batch_size", "log_every", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("num_workers", "threads", "eval_every", "eval_max_frames", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {v!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be positive, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not (0.0 < self.warmup_fraction < 1.0):
            raise ConfigError(f"warmup_fraction must be in (0, 1), got {self.warmup_fraction!r}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ConfigError(f"grad_clip must be >= 0, got {self.grad_clip!r}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return TrainConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the form of ``--config`` files and of the provenance)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, DetectorConfig):
                v = v.to_dict()
            elif isinstance(v, AugmentConfig):
                v = json.loads(json.dumps(asdict(v)))
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"a training config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"training config: unknown keys {sorted(unknown)}; known {sorted(known)}"
            )
        kw = dict(data)
        if isinstance(kw.get("model"), dict):
            kw["model"] = DetectorConfig.from_dict(kw["model"])
        aug = kw.get("augment")
        if isinstance(aug, dict):
            from perceive.training.augment import GTSamplingConfig

            aug = dict(aug)
            gs = aug.get("gt_sampling")
            if gs is not None and not isinstance(gs, dict | GTSamplingConfig):
                raise ConfigError(
                    f"training config: augment.gt_sampling must be a mapping or null, got {gs!r}"
                )
            try:
                if isinstance(gs, dict):
                    gs = {k: tuple(v) if isinstance(v, list) else v for k, v in gs.items()}
                    aug["gt_sampling"] = GTSamplingConfig(**gs)
                aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
                kw["augment"] = AugmentConfig(**aug)
            except ConfigError as e:
                raise ConfigError(f"training config: augment: {e}") from None
            except (TypeError, ValueError) as e:
                raise ConfigError(f"training config: augment: {e}") from None
        try:
            return TrainConfig(**kw)
        except TypeError as e:
            raise ConfigError(f"training config: {e}") from None

    @staticmethod
    def load(path: str | Path) -> TrainConfig:
        """Read a JSON config file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such config file: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not JSON: {e}") from None
        try:
            return TrainConfig.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did."""

    out_dir: Path
    """Where checkpoints and logs are."""
    model_path: Path
    """The final model-only checkpoint."""
    step: int
    """Steps done in total (resumed steps included)."""
    resumed_from: int
    """Step the run resumed from (0 for a fresh run)."""
    final_loss: float
    """Mean loss of the last logging window."""
    samples_per_s: float
    """Training throughput of this run (samples per second over all processes)."""
    metrics: dict[str, Any] | None
    """Final evaluation summary (``mean_aph_l2``, per-class APH L2 ...), or None."""


# --------------------------------------------------------------------------- data


class MemorySource:
    """Every frame of a source read once and kept in memory (shared by forked workers)."""

    def __init__(self, source: Any, progress: bool = True) -> None:
        from tqdm import tqdm

        n = len(source)
        self.frames = [
            source[i] for i in tqdm(range(n), desc="preload", disable=not progress, leave=False)
        ]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Any:
        return self.frames[index]


def open_source(paths: Sequence[str]) -> Any:
    """A frame source over paths: a perceive cache folder, or Waymo v1 files/folders/globs."""
    from perceive.training.data import V1Source

    if (
        len(paths) == 1
        and Path(paths[0]).is_dir()
        and (Path(paths[0]) / "PERCEIVE_FORMAT.json").exists()
    ):
        from perceive.convert.cache import CacheReader

        return CacheReader(paths[0])
    return V1Source(list(paths))


def dataset_config(model: DetectorConfig, augment: AugmentConfig | None, seed: int) -> Any:
    """The data pipeline's config that matches a detector (cameras, image size, range, cap)."""
    from perceive.training.data import DatasetConfig

    return DatasetConfig(
        cameras=model.camera.cameras,
        image_size=model.camera.image_size,
        point_range=model.grid.point_cloud_range,
        # No random subsampling: the model keeps the first max_points in-range points, as
        # its exported graph does (Detector.select_batch_points).
        max_points=DATASET_MAX_POINTS,
        augment=augment,
        seed=seed,
        point_features=model.pillars.point_features,
    )


def data_provenance(paths: Sequence[str], num_frames: int) -> dict[str, Any]:
    """Paths, frame count and, for synthetic data, the generator's manifest (seed, config name)."""
    out: dict[str, Any] = {"paths": list(paths), "frames": num_frames}
    manifests = []
    candidates: list[Path] = []
    for p in paths:
        d = Path(p) if Path(p).is_dir() else Path(p).parent
        candidates.append(d / "synth_manifest.json")
        # A perceive cache remembers the files it was converted from.
        for job in sorted((d / "_manifests").glob("*.json"))[:1] if d.is_dir() else []:
            try:
                src = json.loads(job.read_text())["job"]["path"]
            except (OSError, KeyError, TypeError, json.JSONDecodeError):
                continue
            candidates.append(Path(src).parent / "synth_manifest.json")
    for m in dict.fromkeys(candidates):
        if m.is_file():
            try:
                data = json.loads(m.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            entry = {k: data[k] for k in ("format", "seed") if k in data}
            if "frames" in data:
                entry["frames_per_segment"] = data["frames"]
            manifests.append(entry)
            if isinstance(data.get("config"), dict) and "name" in data["config"]:
                manifests[-1]["config_name"] = data["config"]["name"]
    if manifests:
        out["synth"] = manifests
    return out


def epoch_indices(n: int, seed: int, epoch: int, rank: int, world: int) -> np.ndarray:
    """This process's frame order in an epoch: a permutation of ``(seed, epoch)``, sharded."""
    perm = np.random.default_rng([seed, epoch, 7919]).permutation(n)
    per_rank = n // world
    return perm[rank * per_rank : (rank + 1) * per_rank]


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int
    """Global rank."""
    world: int
    """Number of processes."""
    local_rank: int
    """Rank on this node (picks the GPU)."""
    initialised: bool
    """Whether this call initialised the process group (and must destroy it)."""

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs and writes."""
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Initialise ``torch.distributed`` from torchrun's environment, if there is one.

    A process launched by ``torchrun`` (``WORLD_SIZE`` set) joins the group with NCCL on
    CUDA and gloo on the CPU; otherwise the run is single-process and nothing is initialised.
    """
    import torch.distributed as dist

    if "WORLD_SIZE" not in os.environ:
        return DistInfo(0, 1, 0, False)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), False
        )
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True
    )


class BatchForward(nn.Module):
    """The detector's batched training forward as a module ``forward`` (what DDP wraps)."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(
        self,
        points: torch.Tensor,
        point_batch: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """See :meth:`Detector.forward_batch`."""
        return self.detector.forward_batch(points, point_batch, images, intrinsics, extrinsics)


# --------------------------------------------------------------------------- helpers


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return dev


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` mode on a device (None: full precision)."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def summarize_metrics(metrics: Any) -> dict[str, Any]:
    """The numbers worth logging of :class:`perceive.evaluation.Metrics`: the leaderboard
    figures and AP/APH at LEVEL_2 of every class."""
    from perceive.models.classes import CLASS_NAMES

    out: dict[str, Any] = {
        "mean_ap_l2": float(metrics.mean_ap_l2),
        "mean_aph_l2": float(metrics.mean_aph_l2),
        "num_frames": int(metrics.num_frames),
        "num_predictions": int(metrics.num_predictions),
        "num_ground_truth": int(metrics.num_ground_truth),
    }
    for name in CLASS_NAMES:
        b = metrics[f"OBJECT_TYPE_TYPE_{name}_LEVEL_2"]
        out[f"{name}_L2"] = {
            "ap": float(b.ap),
            "aph": float(b.aph),
            "num_ground_truth": int(b.num_ground_truth),
        }
    return out


#: Settings a resumed run must share with the run it resumes (they change the result);
#: the others (workers, threads, logging, evaluation, progress, device) may differ.
RESUME_FIXED = (
    "train_data",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_fraction",
    "grad_clip",
    "seed",
    "augment",
    "amp",
)


def resume_conflicts(before: dict[str, Any], config: TrainConfig) -> list[str]:
    """The :data:`RESUME_FIXED` settings in which ``config`` differs from the stored
    ``train_config`` of the run it would resume, as ``"name: old -> new"``."""
    now = config.to_dict()
    return [
        f"{k}: {before[k]!r} -> {now[k]!r}"
        for k in RESUME_FIXED
        if k in before
        and json.dumps(before[k], sort_keys=True) != json.dumps(now[k], sort_keys=True)
    ]


class _GracefulInterrupt:
    """The first Ctrl-C (SIGINT) asks the training loop to stop at the next step boundary
    with ``last.pt`` written; a second one interrupts at once. Only in the main thread
    (signal handlers cannot be set elsewhere) and in single-process runs (ranks of a
    distributed run could see the request at different steps and wait for each other);
    the previous handler comes back after."""

    def __init__(self, enabled: bool = True) -> None:
        import signal
        import threading

        self.requested = False
        self._installed = enabled and threading.current_thread() is threading.main_thread()
        self._previous: Any = (
            signal.signal(signal.SIGINT, self._handle) if self._installed else None
        )

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        import signal

        if self._installed:  # None: a handler not set from Python; Python's default then
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            self._installed = False


def check_resumable(ckpt: Any, config: TrainConfig, path: Path) -> None:
    """Raise unless the ``last.pt`` checkpoint ``ckpt`` belongs to the run ``config`` describes:
    the same model, iterations and :data:`RESUME_FIXED` settings.

    Raises:
        ConfigError: naming what differs.
        DataError: the checkpoint holds no training state.
    """
    if ckpt.config != config.model:
        raise ConfigError(
            f"{path} was trained with another model config; use a new out_dir or delete it"
        )
    if ckpt.train_state is None:
        raise DataError("checkpoint has no training state to resume from", path=path, field="train")
    before = ckpt.train_state.get("train_config", {})
    if before.get("iterations") != config.iterations:
        raise ConfigError(
            f"{path} belongs to a run of {before.get('iterations')} iterations, not "
            f"{config.iterations} (the learning-rate schedule depends on it); use a new out_dir"
        )
    changed = resume_conflicts(before, config)
    if changed:
        raise ConfigError(
            f"{path} belongs to a run with other settings ({'; '.join(changed)}); "
            "resuming would mix two runs: use the same settings, or a new out_dir"
        )


def _truncate_log(path: Path, step: int) -> None:
    """Keep the records of ``log.jsonl`` up to ``step``: a run killed after its last
    checkpoint logged steps it will now do again (and a line cut short by the kill)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            if isinstance(rec, dict) and int(rec.get("step", 0)) <= step:
                keep.append(line)
        except (json.JSONDecodeError, TypeError, ValueError):
            continue  # a line cut short by the kill
    with atomic_open(path, "w") as f:
        f.write("".join(line + "\n" for line in keep))


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- the loop


def train(config: TrainConfig, *, stop_at: int | None = None) -> TrainResult:
    """Train a detector; resume from ``<out_dir>/last.pt`` when it exists.

    Args:
        config: the run.
        stop_at: stop (with ``last.pt`` written, as after an interruption) once this many
            steps are done; a later call resumes. None: run to ``config.iterations``.

    Returns:
        :class:`TrainResult`.

    Raises:
        ConfigError: bad settings, or ``last.pt`` was made with another model config.
        DataError: unreadable data.
    """
    from tqdm import tqdm

    from perceive.training.data import FrameDataset, collate

    out_dir = Path(config.out_dir)
    if (out_dir / "last.pt").exists() and (out_dir / "model.pt").exists():
        ckpt = load_checkpoint(out_dir / "last.pt")
        check_resumable(ckpt, config, out_dir / "last.pt")
        if ckpt.step >= config.iterations:  # finished: nothing to do, nothing rewritten
            done = load_checkpoint(out_dir / "model.pt")
            return TrainResult(
                out_dir=out_dir,
                model_path=out_dir / "model.pt",
                step=done.step,
                resumed_from=ckpt.step,
                final_loss=float("nan"),
                samples_per_s=0.0,
                metrics=done.provenance.get("metrics", {}).get("val"),
            )
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cpu":
        # Tiny gradients of the camera branch become denormal floats in AdamW's moments,
        # and denormal arithmetic is ~5x slower on x86 CPUs.
        torch.set_flush_denormal(True)
    dist_info = init_distributed(device.type)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    log_path = out_dir / "log.jsonl"
    last_path = out_dir / "last.pt"
    if dist_info.main:
        out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(config.seed)
    model = build_detector(config=config.model).to(device)
    loss_fn = build_loss(config=config.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=config.lr,
        total_steps=config.iterations,
        pct_start=config.warmup_fraction,
        div_factor=10.0,
        final_div_factor=100.0,
    )
    dtype = amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    step = 0
    if last_path.exists():
        ckpt = load_checkpoint(last_path)
        check_resumable(ckpt, config, last_path)
        model.load_state_dict(ckpt.state_dict)
        opt.load_state_dict(ckpt.train_state["optimizer"])
        sched.load_state_dict(ckpt.train_state["scheduler"])
        if "scaler" in ckpt.train_state:
            scaler.load_state_dict(ckpt.train_state["scaler"])
        _set_rng_state(ckpt.train_state["rng"])
        step = ckpt.step
        if dist_info.main:
            _truncate_log(log_path, step)
    resumed_from = step

    module: nn.Module = BatchForward(model)
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        module = DistributedDataParallel(module, device_ids=ids)

    source = open_source(config.train_data)
    if len(source) == 0:
        raise DataError("no training frames", path=", ".join(config.train_data))
    if config.preload and step < config.iterations:
        source = MemorySource(source, progress=config.progress and dist_info.main)
    dataset = FrameDataset(source, dataset_config(config.model, config.augment, config.seed))
    if config.augment is not None and config.augment.gt_sampling is not None:
        dataset.gt_database = dataset.build_gt_database()  # objects of the training frames
    per_rank = len(dataset) // dist_info.world
    steps_per_epoch = per_rank // config.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(
            f"{len(dataset)} training frames over {dist_info.world} processes cannot fill a batch "
            f"of {config.batch_size}"
        )

    def batches(start: int) -> Iterator[Any]:
        epoch, offset = divmod(start, steps_per_epoch)
        while True:
            dataset.set_epoch(epoch)
            idx = epoch_indices(len(dataset), config.seed, epoch, dist_info.rank, dist_info.world)
            idx = idx[offset * config.batch_size : steps_per_epoch * config.batch_size]
            loader = torch.utils.data.DataLoader(
                dataset,
                batch_size=config.batch_size,
                sampler=idx.tolist(),
                drop_last=True,
                collate_fn=collate,
                num_workers=config.num_workers,
                pin_memory=device.type == "cuda",
            )
            yield from loader
            epoch, offset = epoch + 1, 0

    from perceive.deploy.export import git_commit

    provenance_base = {
        # The code this process trains with (a resumed run records the resuming code).
        "git_commit": git_commit(Path(__file__).parent),
        "train_config": config.to_dict(),
        "data": {"train": data_provenance(config.train_data, len(dataset))},
        "device": str(device),
        "world_size": dist_info.world,
        "torch": str(torch.__version__),
        "host": platform.machine(),
    }
    if config.val_data:
        val_frames = len(open_source(config.val_data))
        provenance_base["data"]["val"] = data_provenance(config.val_data, val_frames)

    def save_last(step_now: int) -> None:
        if not dist_info.main:
            return
        save_checkpoint(
            last_path,
            model=model,
            step=step_now,
            provenance=provenance_base,
            train_state={
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "train_config": config.to_dict(),
            },
        )

    def evaluate_now(step_now: int) -> dict[str, Any] | None:
        if not config.val_data or not dist_info.main:
            return None
        from perceive.training.predict import evaluate_model

        metrics = evaluate_model(
            model,
            config.val_data,
            max_frames=config.eval_max_frames or None,
            device=device,
            progress=config.progress,
        )
        summary = summarize_metrics(metrics)
        _append_log(log_path, {"step": step_now, "eval": summary, "time": time.time()})
        model.train()
        return summary

    model.train()
    window: dict[str, float] = {"loss": 0.0, "heatmap": 0.0, "regression": 0.0, "boxes": 0.0}
    window_steps = 0
    window_start = time.perf_counter()
    run_start = time.perf_counter()
    samples = 0
    final_loss = float("nan")
    metrics: dict[str, Any] | None = None
    bar = tqdm(
        total=config.iterations,
        initial=step,
        desc=f"train {config.model.variant}",
        disable=not (config.progress and dist_info.main),
        dynamic_ncols=True,
    )
    it = batches(step)
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=dtype))
        if dtype is not None
        else nullcontext
    )
    end = config.iterations if stop_at is None else min(config.iterations, int(stop_at))
    stop = _GracefulInterrupt(enabled=dist_info.world == 1)
    try:
        while step < end:
            if stop.requested:
                save_last(step)  # a step boundary: resuming continues exactly from here
                raise KeyboardInterrupt(
                    f"interrupted after step {step}; {last_path} holds it: the same command resumes"
                )
            try:
                batch = next(it)
            except Exception:
                if stop.requested:  # a DataLoader worker stopped by the same Ctrl-C
                    continue
                raise
            batch = batch.to(device, non_blocking=True)
            points, point_batch = model.select_batch_points(
                batch.points, batch.point_batch, len(batch)
            )
            with autocast():
                heatmap, regression = module(
                    points, point_batch, batch.images, batch.intrinsics, batch.extrinsics
                )
            targets = model.coder.encode(batch.boxes, batch.labels)
            out = loss_fn(heatmap.float(), regression.float(), targets)
            if not torch.isfinite(out.total):
                raise FloatingPointError(
                    f"step {step}: loss is {float(out.total)}; lower lr or disable amp"
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(out.total).backward()
            if config.grad_clip > 0:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(opt)
            scaler.update()
            lr_used = sched.get_last_lr()[0]  # the rate of this step (the log's "lr")
            sched.step()
            step += 1
            samples += len(batch) * dist_info.world
            window["loss"] += float(out.total.detach())
            window["heatmap"] += float(out.heatmap)
            window["regression"] += float(out.regression)
            window["boxes"] += float(out.num_boxes)
            window_steps += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.iterations:
                dt = time.perf_counter() - window_start
                rec = {k: v / window_steps for k, v in window.items()}
                final_loss = rec["loss"]
                rec.update(
                    step=step,
                    lr=lr_used,
                    samples_per_s=window_steps
                    * config.batch_size
                    * dist_info.world
                    / max(dt, 1e-9),
                    time=time.time(),
                )
                if dist_info.main:
                    _append_log(log_path, rec)
                bar.set_postfix(
                    loss=f"{rec['loss']:.3f}",
                    hm=f"{rec['heatmap']:.3f}",
                    reg=f"{rec['regression']:.3f}",
                )
                window = dict.fromkeys(window, 0.0)
                window_steps = 0
                window_start = time.perf_counter()
            if step % config.checkpoint_every == 0 and step < config.iterations:
                save_last(step)
            if config.eval_every and step % config.eval_every == 0 and step < config.iterations:
                evaluate_now(step)
        wall = time.perf_counter() - run_start
        save_last(step)
        # Stopped early (stop_at): no evaluation and no model.pt; last.pt resumes the run.
        finished = step >= config.iterations
        if finished:
            metrics = evaluate_now(step)
        if finished and dist_info.main:
            provenance = {
                **provenance_base,
                "iterations": step,
                "samples_seen": step * config.batch_size * dist_info.world,
                "wall_time_s": round(wall, 1),
                "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            if metrics is not None:
                provenance["metrics"] = {"val": metrics}
            save_checkpoint(out_dir / "model.pt", model=model, step=step, provenance=provenance)
            with atomic_open(out_dir / "provenance.json", "w") as f:
                f.write(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    finally:
        stop.restore()
        bar.close()
        if device.type == "cpu":
            # Process-wide state: give the caller back the default (other code in the
            # process, e.g. NumPy/hypothesis float handling, relies on IEEE denormals).
            torch.set_flush_denormal(False)
        if dist_info.initialised:
            import torch.distributed as dist

            dist.destroy_process_group()
    return TrainResult(
        out_dir=out_dir,
        model_path=out_dir / "model.pt",
        step=step,
        resumed_from=resumed_from,
        final_loss=final_loss,
        samples_per_s=samples / max(wall, 1e-9),
        metrics=metrics,
    )
