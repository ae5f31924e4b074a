"""Range images to point clouds with per-point attributes."""

from __future__ import annotations

import numpy as np

from perceive.datasets.types import LaserCalibration, PointCloud, RangeImage, laser_id
from perceive.geometry.range_image import pixels_to_vehicle


def take_rows(array: np.ndarray, select: np.ndarray) -> np.ndarray:
    """Rows of a 2D array chosen by a boolean mask or integer indices: ``array[select]``.

    Each row is moved as one fixed-size item (a ``void`` view of the row's bytes),
    which is about ten times faster than NumPy's fancy indexing of a 2D array, whose
    inner loop copies one element at a time.

    Args:
        array: (M, K) array of any dtype (copied first if its rows are not contiguous).
        select: (M,) bool mask or (N,) integer indices.

    Returns:
        (N, K) array of the same dtype, C-contiguous.
    """
    a = np.ascontiguousarray(array)
    m, k = a.shape
    if k == 0 or a.itemsize == 0:
        return a[select]
    rows = a.view(np.dtype((np.void, k * a.itemsize))).reshape(m)
    return rows[select].view(a.dtype).reshape(-1, k)


def range_image_to_point_cloud(
    range_image: RangeImage,
    calibration: LaserCalibration,
    frame_pose: np.ndarray | None = None,
    pixel_pose: np.ndarray | None = None,
) -> PointCloud:
    """The points of one range image (pixels with range > 0), vehicle frame.

    Args:
        range_image: one return of one laser.
        calibration: that laser's calibration.
        frame_pose: (4, 4) vehicle -> world pose of the frame; needed with ``pixel_pose``.
        pixel_pose: (H, W, 6) per-pixel pose (TOP laser), or None.

    Returns:
        The cloud, pixels in row-major order.
    """
    values = range_image.values
    h, w = range_image.shape
    flat = values.reshape(h * w, values.shape[-1])
    mask = flat[:, 0] > 0
    idx = np.flatnonzero(mask)
    n = idx.size
    # Pixel coordinates: rows from the points per row (no division), columns from them.
    rows = np.repeat(np.arange(h, dtype=np.intp), np.count_nonzero(mask.reshape(h, w), axis=1))
    cols = idx - rows * w
    v = take_rows(flat, mask)  # (n, 4) range, intensity, elongation, nlz
    pose = None
    if pixel_pose is not None:
        pose = take_rows(np.asarray(pixel_pose).reshape(h * w, -1), mask)
    pts = pixels_to_vehicle(
        v[:, 0],
        rows,
        cols,
        calibration.inclinations(h),
        w,
        calibration.extrinsic,
        pixel_pose=pose,
        frame_pose=frame_pose,
    )
    pixel = np.empty((n, 2), np.int32)
    pixel[:, 0] = rows
    pixel[:, 1] = cols
    cp = range_image.camera_projection
    return PointCloud(
        xyz=pts,
        intensity=v[:, 1].astype(np.float32),  # copies: contiguous columns
        elongation=v[:, 2].astype(np.float32),
        nlz=v[:, 3] > 0,
        laser=np.full(n, laser_id(range_image.laser), np.uint8),
        return_index=np.full(n, range_image.return_index, np.uint8),
        range=v[:, 0].astype(np.float32),
        pixel=pixel,
        camera_projection=(
            take_rows(cp.reshape(h * w, 6).astype(np.int32, copy=False), mask)
            if cp is not None
            else np.zeros((n, 6), np.int32)
        ),
    )
