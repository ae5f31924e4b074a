"""Centre, size and heading errors of the detections nearest to the ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perceive.datasets.types import Boxes3D
from perceive.evaluation import FrameDetections
from perceive.evaluation.diagnostics import box_error_stats, format_box_errors


def _frame(
    boxes: np.ndarray, types: list[int], scores=None, ts: int = 0, points=None
) -> FrameDetections:
    b = np.asarray(boxes, np.float64).reshape(-1, 7)
    return FrameDetections(
        context_name="seg",
        timestamp_us=ts,
        boxes=Boxes3D(
            center=b[:, :3],
            size=b[:, 3:6],
            heading=b[:, 6],
            type=np.asarray(types, np.int8),
            num_lidar_points=np.full(len(b), 10) if points is None else points,
        ),
        scores=None if scores is None else np.asarray(scores, np.float32),
    )


def test_errors_of_nearest_matches_with_flips_and_axis():
    gt = _frame(
        [
            [0, 0, 1, 4.0, 2.0, 1.5, 0.1],
            [10, 0, 1, 4.0, 2.0, 1.5, 0.0],
            [20, 0, 1, 4.0, 2.0, 1.5, 3.0],
            [40, 0, 1, 0.8, 0.6, 1.7, 0.0],  # pedestrian, no detection near
        ],
        [1, 1, 1, 2],
    )
    pred = _frame(
        [
            [0.3, 0.4, 1, 4.4, 2.0, 1.5, 0.1 + math.pi],  # flipped, axis exact, 0.5 m off
            [10, 0, 1, 4.0, 1.0, 1.5, 0.2],  # width half: size error 0.5
            [20.1, 0, 1, 4.0, 2.0, 1.5, -3.0],  # across the +-pi seam: 0.283 rad
            [30, 0, 1, 4.0, 2.0, 1.5, 0.0],  # far from every box
            [10.2, 0, 1, 4.0, 2.0, 1.5, 0.0],  # 0.2 m from the second box, but below min_score
        ],
        [1, 1, 1, 1, 1],
        scores=[0.9, 0.9, 0.9, 0.9, 0.1],
    )
    veh, ped = box_error_stats([pred], [gt], types=(1, 2))
    assert (veh.num_ground_truth, veh.num_matched) == (3, 3)
    np.testing.assert_allclose(veh.centre_distance, [0.5, 0.0, 0.1], atol=1e-9)
    np.testing.assert_allclose(veh.heading_error, [math.pi, 0.2, 2 * math.pi - 6.0], atol=1e-9)
    np.testing.assert_allclose(veh.axis_error, [0.0, 0.2, 2 * math.pi - 6.0], atol=1e-9)
    np.testing.assert_allclose(veh.size_error, [0.1, 0.5, 0.0], atol=1e-9)
    assert veh.flipped == pytest.approx(1 / 3)
    assert (ped.num_ground_truth, ped.num_matched) == (1, 0) and math.isnan(ped.flipped)
    table = format_box_errors([veh, ped])
    assert "VEHICLE" in table and "3/3" in table and "0/1" in table


def test_frames_pair_by_key_as_the_metrics_do():
    box = [[0, 0, 0, 4, 2, 1.5, 0]]
    gt = [_frame(box, [1], ts=1), _frame(box + box, [1, 1], ts=2, points=[10, 0])]
    preds = [
        _frame(box, [1], scores=[0.9], ts=2),  # the other order; no entry for frame 1
        _frame(box, [1], scores=[0.9], ts=3),  # a frame without ground truth: ignored
    ]
    (veh,) = box_error_stats(preds, gt, types=(1,))
    # frame 1's box is unmatched; frame 2's second box has no LiDAR point: not counted
    assert (veh.num_ground_truth, veh.num_matched) == (2, 1)
    with pytest.raises(ValueError, match="two prediction entries"):
        box_error_stats(preds + preds[:1], gt)
