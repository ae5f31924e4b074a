"""Detector checkpoints: save (atomically), load, rebuild the model.

A checkpoint is a ``torch.save`` dict with plain types and tensors only (loadable with
``weights_only=True``)::

    format      "perceive-detector"
    version     1
    config      DetectorConfig.to_dict()
    model       state dict
    provenance  JSON-able dict: training config, data, iterations, metrics, date, commit
    step        int: optimizer steps done
    train       optional: {"optimizer", "scheduler", "rng", "train_config"} to resume

A shipped model keeps only the first five (see :func:`strip_training_state`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from perceive.errors import DataError
from perceive.io.atomic import atomic_write_bytes
from perceive.models.build import build_detector
from perceive.models.config import DetectorConfig
from perceive.models.detector import Detector

#: Value of the ``format`` key of a perceive checkpoint.
CHECKPOINT_FORMAT = "perceive-detector"
#: Version of the layout written by :func:`save_checkpoint`.
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    path: str
    """The file it came from."""
    config: DetectorConfig
    """The detector's configuration."""
    state_dict: dict[str, torch.Tensor]
    """Model weights."""
    step: int
    """Optimizer steps done when it was written."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """How the weights were made (JSON-able)."""
    train_state: dict[str, Any] | None = None
    """Optimizer, scheduler, RNG states and the training config, or None for a shipped model."""


def save_checkpoint(
    path: str | Path,
    *,
    model: Detector,
    step: int = 0,
    provenance: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically.

    Args:
        path: output file (``.pt``); parents are created.
        model: the detector (a DDP wrapper's ``.module``); weights are saved on the CPU.
        step: optimizer steps done.
        provenance: JSON-able description of how the weights were made.
        train_state: what resuming needs (optimizer, scheduler, RNG states, training config).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": model.config.to_dict(),
        "model": state,
        "provenance": dict(provenance or {}),
        "step": int(step),
    }
    if train_state is not None:
        payload["train"] = train_state
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_error(e: Exception) -> str:
    """The gist of a ``torch.load`` error: its weights_only messages run to paragraphs of
    advice about trusting the file, with the actual reason on a line of its own."""
    text = str(e)
    if "Weights only load failed" not in text:
        return text.strip().splitlines()[0] if text.strip() else type(e).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    after = [
        line
        for line in lines[1:]
        if not line.startswith(("Please file an issue", "Check the documentation"))
    ]
    reason = after[0] if after else "unknown reason"
    return f"not a file torch.load can read safely (weights_only: {reason})"


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no such file.
        DataError: not a perceive detector checkpoint, or an unreadable one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad pickles / zip files
        raise DataError(f"cannot read checkpoint: {_load_error(e)}", path=path) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(
            f"not a perceive detector checkpoint (format key is not {CHECKPOINT_FORMAT!r})",
            path=path,
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise DataError(
            f"checkpoint version {payload.get('version')!r}, expected {CHECKPOINT_VERSION}",
            path=path,
            field="version",
        )
    for key in ("config", "model"):
        if key not in payload:
            raise DataError("checkpoint lacks this key", path=path, field=key)
    return Checkpoint(
        path=str(path),
        config=DetectorConfig.from_dict(payload["config"]),
        state_dict=payload["model"],
        step=int(payload.get("step", 0)),
        provenance=dict(payload.get("provenance") or {}),
        train_state=payload.get("train"),
    )


def detector_from_checkpoint(checkpoint: str | Path | Checkpoint) -> Detector:
    """The detector of a checkpoint, weights loaded, in eval mode on the CPU.

    Raises:
        DataError: the weights do not fit the configuration.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    model = build_detector(config=ckpt.config)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as e:
        raise DataError(
            f"weights do not fit the checkpoint's config: {e}", path=ckpt.path, field="model"
        ) from None
    return model.eval()


def strip_training_state(
    src: str | Path, dst: str | Path, *, extra_provenance: dict[str, Any] | None = None
) -> None:
    """Write the model-only version of a checkpoint (no optimizer/RNG state), for shipping."""
    ckpt = load_checkpoint(src)
    model = detector_from_checkpoint(ckpt)
    provenance = {**ckpt.provenance, **(extra_provenance or {})}
    save_checkpoint(dst, model=model, step=ckpt.step, provenance=provenance)
