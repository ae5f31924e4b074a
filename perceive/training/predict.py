"""Run a trained detector over a data set: per-frame detections, and their Waymo metrics.

>>> dets = predict_dataset("exports/fusion.pt", "datasets/synth/val")   # doctest: +SKIP
>>> metrics = evaluate_detections(dets, load_ground_truth("datasets/synth/val"))  # doctest: +SKIP

Frames go through the training pipeline's preprocessing without augmentation
(:func:`perceive.training.data.make_sample`: the runner's resize and calibration
scaling), in batches through :meth:`Detector.forward_batch`, and are decoded inside
the model exactly as in the exported graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceive.models.classes import waymo_type_of_class
from perceive.models.detector import Detector
from perceive.training.checkpoint import detector_from_checkpoint

#: Detections scoring below this are dropped by default (they only pad the top-K).
DEFAULT_MIN_SCORE = 1e-3


def predict_frames(
    model: Detector,
    source: Any,
    *,
    indices: Sequence[int] | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    min_score: float = DEFAULT_MIN_SCORE,
    progress: bool = False,
) -> list[Any]:
    """Detections of frames of a source (``len`` and ``[i]`` giving cached frames).

    Args:
        model: the detector (its config gives cameras, image size and range).
        source: e.g. :class:`perceive.training.data.V1Source` or a cache reader.
        indices: frames to run; None for all.
        batch_size: frames per forward pass.
        device: where to run.
        min_score: detections below this score are dropped.
        progress: show a tqdm bar.

    Returns:
        One :class:`perceive.evaluation.FrameDetections` per frame, in order, with Waymo types.
    """
    from tqdm import tqdm

    from perceive.evaluation import FrameDetections
    from perceive.training.data import FrameDataset, collate
    from perceive.training.train import dataset_config

    device = torch.device(device)
    dataset = FrameDataset(source, dataset_config(model.config, None, 0))
    order = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=order, collate_fn=collate, num_workers=0
    )
    was_training = model.training
    model.eval().to(device)
    out: list[Any] = []
    try:
        with torch.no_grad():
            for batch in tqdm(loader, desc="predict", disable=not progress, leave=False):
                b = batch.to(device)
                points, point_batch = model.select_batch_points(b.points, b.point_batch, len(b))
                heatmap, regression = model.forward_batch(
                    points, point_batch, b.images, b.intrinsics, b.extrinsics
                )
                boxes, scores, labels = model.coder.decode(heatmap, regression)
                boxes, scores, labels = (
                    boxes.cpu().numpy(),
                    scores.cpu().numpy(),
                    labels.cpu().numpy(),
                )
                for i in range(len(batch)):
                    keep = scores[i] >= min_score
                    out.append(
                        FrameDetections.from_arrays(
                            batch.segments[i],
                            batch.timestamps[i],
                            boxes[i][keep].astype(np.float64),
                            scores[i][keep],
                            waymo_type_of_class(labels[i][keep]),
                        )
                    )
    finally:
        model.train(was_training)
    return out


def predict_dataset(
    checkpoint: str | Path | Detector,
    data_dir: str | Path | Sequence[str | Path],
    *,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    max_frames: int | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    progress: bool = False,
) -> list[Any]:
    """Per-frame detections of a checkpoint on a data set (``perceive evaluate --checkpoint``).

    Args:
        checkpoint: a checkpoint path (``perceive train``'s ``model.pt``) or a detector.
        data_dir: Waymo v1 ``.tfrecord`` files, folders or globs, or a perceive cache folder.
        batch_size: frames per forward pass.
        device: where to run.
        max_frames: only the first frames (None: all).
        min_score: detections below this score are dropped.
        progress: show a tqdm bar.

    Returns:
        One :class:`perceive.evaluation.FrameDetections` per frame, in file and record order.
    """
    from perceive.training.train import open_source

    model = checkpoint if isinstance(checkpoint, Detector) else detector_from_checkpoint(checkpoint)
    paths = [str(data_dir)] if isinstance(data_dir, str | Path) else [str(p) for p in data_dir]
    source = open_source(paths)
    n = len(source) if max_frames is None else min(len(source), int(max_frames))
    return predict_frames(
        model,
        source,
        indices=range(n),
        batch_size=batch_size,
        device=device,
        min_score=min_score,
        progress=progress,
    )


def evaluate_model(
    model: Detector,
    data: Sequence[str | Path],
    *,
    max_frames: int | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 4,
    progress: bool = False,
) -> Any:
    """Waymo metrics (:func:`perceive.evaluation.evaluate_detections`) of a model on a data set.

    The frames are read once (kept in memory) for both the predictions and the ground truth.

    Returns:
        :class:`perceive.evaluation.Metrics`.
    """
    from perceive.evaluation import evaluate_detections, ground_truth_from_frame
    from perceive.training.train import MemorySource, open_source

    source = open_source([str(p) for p in data])
    n = len(source) if not max_frames else min(len(source), int(max_frames))

    class _First:
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> Any:
            return source[i]

    frames = MemorySource(_First(), progress=progress)
    preds = predict_frames(model, frames, batch_size=batch_size, device=device, progress=progress)
    gts = [ground_truth_from_frame(frames[i]) for i in range(len(frames))]
    return evaluate_detections(preds, gts)
