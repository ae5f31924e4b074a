"""Evaluation: Waymo 3D detection metrics, the official ``Objects`` files, ground truth.

>>> from perceive.evaluation import evaluate_detections, read_objects
>>> pred, gt = read_objects("pred.bin"), read_objects("gt.bin")  # doctest: +SKIP
>>> metrics = evaluate_detections(pred, gt)  # doctest: +SKIP
>>> metrics["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].aph, metrics.mean_aph_l2  # doctest: +SKIP
"""

from __future__ import annotations

from perceive.evaluation.detections import (
    FrameDetections,
    ground_truth_from_frame,
    ground_truth_from_frames,
)
from perceive.evaluation.metrics import (
    BreakdownMetrics,
    DetectionMetricsConfig,
    Metrics,
    average_precision,
    breakdown_names,
    evaluate_detections,
)
from perceive.evaluation.objects_io import (
    objects_from_proto,
    objects_to_proto,
    read_objects,
    write_objects,
)

__all__ = [
    "BreakdownMetrics",
    "DetectionMetricsConfig",
    "FrameDetections",
    "Metrics",
    "average_precision",
    "breakdown_names",
    "evaluate_detections",
    "ground_truth_from_frame",
    "ground_truth_from_frames",
    "objects_from_proto",
    "objects_to_proto",
    "read_objects",
    "write_objects",
]
