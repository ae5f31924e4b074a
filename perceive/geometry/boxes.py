"""Upright 3D boxes (7-DoF: centre, length, width, height, heading).

A box's own frame has x along its length (the heading direction), y along its
width, z up; ``heading`` is the yaw of the box x axis in the containing frame.
"""

from __future__ import annotations

import numpy as np

#: Corner order of :func:`box_corners`: bottom face counter-clockwise from
#: (+x, +y), then the top face in the same order.
_CORNER_SIGNS = np.array(
    [
        [1, 1, -1],
        [-1, 1, -1],
        [-1, -1, -1],
        [1, -1, -1],
        [1, 1, 1],
        [-1, 1, 1],
        [-1, -1, 1],
        [1, -1, 1],
    ],
    dtype=np.float64,
)


def box_corners(center: np.ndarray, size: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Eight corners of each box.

    Args:
        center: (N, 3) box centres, metres.
        size: (N, 3) length, width, height, metres.
        heading: (N,) yaw, radians.

    Returns:
        (N, 8, 3) float64 corners in the frame of ``center`` (order: bottom face
        counter-clockwise starting at front-left, then the top face).
    """
    center = np.asarray(center, dtype=np.float64).reshape(-1, 3)
    size = np.asarray(size, dtype=np.float64).reshape(-1, 3)
    heading = np.asarray(heading, dtype=np.float64).reshape(-1)
    local = 0.5 * size[:, None, :] * _CORNER_SIGNS[None]
    c, s = np.cos(heading)[:, None], np.sin(heading)[:, None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return np.stack([x, y, local[..., 2]], axis=-1) + center[:, None, :]


def points_in_boxes(
    xyz: np.ndarray, center: np.ndarray, size: np.ndarray, heading: np.ndarray, margin: float = 0.0
) -> np.ndarray:
    """Which points lie inside which boxes (faces included).

    Args:
        xyz: (M, 3) points, same frame as the boxes, metres.
        center, size, heading: the boxes, as in :func:`box_corners`, N of them.
        margin: metres added to each half extent.

    Returns:
        (M, N) bool.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 3)
    size = np.asarray(size, dtype=np.float64).reshape(-1, 3)
    heading = np.asarray(heading, dtype=np.float64).reshape(-1)
    d = xyz[:, None, :] - center[None, :, :]
    c, s = np.cos(heading)[None], np.sin(heading)[None]
    lx = c * d[..., 0] + s * d[..., 1]
    ly = -s * d[..., 0] + c * d[..., 1]
    half = 0.5 * size[None] + margin
    return (
        (np.abs(lx) <= half[..., 0])
        & (np.abs(ly) <= half[..., 1])
        & (np.abs(d[..., 2]) <= half[..., 2])
    )


def count_points_in_boxes(xyz: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """How many points lie inside each box (faces included), as
    ``points_in_boxes(...).sum(axis=0)`` without its (M, N) temporaries: only the points
    whose x is within a box's half diagonal of its centre are tested against it.

    Args:
        xyz: (M, 3) points, same frame as the boxes, metres.
        boxes: (N, 7) ``x, y, z, length, width, height, heading``, metres and radians.

    Returns:
        (N,) int64.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    counts = np.zeros(len(boxes), np.int64)
    if not len(xyz) or not len(boxes):
        return counts
    order = np.argsort(xyz[:, 0], kind="stable")
    xs = xyz[order, 0]
    # Slightly more than the half diagonal, so rounding never drops a point on a corner.
    reach = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4]) * (1 + 1e-9) + 1e-9
    lo = np.searchsorted(xs, boxes[:, 0] - reach, side="left")
    hi = np.searchsorted(xs, boxes[:, 0] + reach, side="right")
    for i in np.flatnonzero(hi > lo):
        near = xyz[order[lo[i] : hi[i]]]
        b = boxes[i]
        counts[i] = points_in_boxes(near, b[None, :3], b[None, 3:6], b[None, 6]).sum()
    return counts


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap radians to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi
