"""Box corners and points-in-box tests, checked against SciPy rotations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from perceive.geometry.boxes import box_corners, count_points_in_boxes, points_in_boxes, wrap_angle


def _random_boxes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-20, 20, (n, 3)), rng.uniform(0.5, 5, (n, 3)), rng.uniform(-np.pi, np.pi, n)


def test_axis_aligned_corners_in_documented_order() -> None:
    c = box_corners([[1.0, 2.0, 3.0]], [[4.0, 2.0, 1.0]], [0.0])[0]
    expected = np.array(
        [
            [3, 3, 2.5], [-1, 3, 2.5], [-1, 1, 2.5], [3, 1, 2.5],
            [3, 3, 3.5], [-1, 3, 3.5], [-1, 1, 3.5], [3, 1, 3.5],
        ]
    )  # fmt: skip
    np.testing.assert_allclose(c, expected)


def test_heading_quarter_turn() -> None:
    # Heading pi/2: the box's length now runs along the vehicle's y axis.
    c = box_corners([[0.0, 0.0, 0.0]], [[4.0, 2.0, 2.0]], [np.pi / 2])[0]
    np.testing.assert_allclose(c[0], [-1, 2, -1], atol=1e-12)
    np.testing.assert_allclose(np.ptp(c, axis=0), [2, 4, 2], atol=1e-12)


def test_corners_match_scipy_rotation() -> None:
    center, size, heading = _random_boxes(20)
    got = box_corners(center, size, heading)
    signs = np.array([[1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1]] * 2) * [1, 1, 1]
    signs[4:, 2] = 1
    for i in range(20):
        local = signs * size[i] / 2
        exp = Rotation.from_euler("z", heading[i]).apply(local) + center[i]
        np.testing.assert_allclose(got[i], exp, atol=1e-9)
    # Geometry: centroid is the centre, edges have the box's lengths.
    np.testing.assert_allclose(got.mean(axis=1), center, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(got[:, 0] - got[:, 1], axis=1), size[:, 0])
    np.testing.assert_allclose(np.linalg.norm(got[:, 1] - got[:, 2], axis=1), size[:, 1])
    np.testing.assert_allclose(np.linalg.norm(got[:, 0] - got[:, 4], axis=1), size[:, 2])


def test_points_in_boxes_against_local_frame() -> None:
    center, size, heading = _random_boxes(5, seed=1)
    rng = np.random.default_rng(2)
    pts = center[rng.integers(0, 5, 2000)] + rng.uniform(-3, 3, (2000, 3))
    got = points_in_boxes(pts, center, size, heading)
    assert got.shape == (2000, 5)
    for j in range(5):
        local = Rotation.from_euler("z", -heading[j]).apply(pts - center[j])
        exp = (np.abs(local) <= size[j] / 2).all(axis=1)
        np.testing.assert_array_equal(got[:, j], exp)
    assert got.any() and not got.all()


def test_corners_are_inside_and_just_outside_is_not() -> None:
    center, size, heading = _random_boxes(6, seed=3)
    corners = box_corners(center, size, heading)
    shrunk = center[:, None] + 0.999 * (corners - center[:, None])
    grown = center[:, None] + 1.001 * (corners - center[:, None])
    for j in range(6):
        assert points_in_boxes(shrunk[j], center, size, heading)[:, j].all()
        assert not points_in_boxes(grown[j], center, size, heading)[:, j].any()
        assert points_in_boxes(grown[j], center, size, heading, margin=0.1)[:, j].all()


def test_no_points_or_no_boxes() -> None:
    assert points_in_boxes(np.zeros((0, 3)), *_random_boxes(3)).shape == (0, 3)
    assert points_in_boxes(
        np.zeros((4, 3)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    ).shape == (4, 0)
    assert box_corners(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)).shape == (0, 8, 3)


@pytest.mark.parametrize(
    ("angle", "wrapped"),
    [
        (0.0, 0.0),
        (np.pi, -np.pi),
        (-np.pi, -np.pi),
        (3 * np.pi / 2, -np.pi / 2),
        (7.0, 7.0 - 2 * np.pi),
    ],
)
def test_wrap_angle(angle: float, wrapped: float) -> None:
    assert wrap_angle(angle) == pytest.approx(wrapped)
    w = wrap_angle(np.linspace(-20, 20, 101))
    assert (w >= -np.pi).all() and (w < np.pi).all()
    np.testing.assert_allclose(np.cos(w), np.cos(np.linspace(-20, 20, 101)), atol=1e-12)


def test_count_points_in_boxes_agrees_with_the_full_test_corners_included() -> None:
    rng = np.random.default_rng(5)
    boxes = np.concatenate(
        [rng.uniform(-20, 20, (40, 3)), rng.uniform(0.3, 6, (40, 3)), rng.uniform(-4, 4, (40, 1))],
        axis=1,
    )
    boxes[5] = boxes[4]  # a repeated box
    corners = box_corners(boxes[:, :3], boxes[:, 3:6], boxes[:, 6])
    near = boxes[:, None, :3] + 0.999 * (corners - boxes[:, None, :3])  # just inside
    pts = np.concatenate(
        [rng.uniform(-25, 25, (5000, 3)), corners.reshape(-1, 3), near.reshape(-1, 3)]
    )
    want = points_in_boxes(pts, boxes[:, :3], boxes[:, 3:6], boxes[:, 6]).sum(axis=0)
    got = count_points_in_boxes(pts, boxes)
    assert got.dtype == np.int64 and want.min() >= 1 and want.max() > 8
    np.testing.assert_array_equal(got, want)
    assert count_points_in_boxes(np.zeros((0, 3)), boxes).tolist() == [0] * 40
    assert count_points_in_boxes(pts, np.zeros((0, 7))).shape == (0,)
