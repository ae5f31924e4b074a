"""Range images to point clouds with per-point attributes."""

from __future__ import annotations

import numpy as np

from perceive.datasets.types import LaserCalibration, PointCloud, RangeImage, laser_id
from perceive.geometry.range_image import pixels_to_vehicle


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
    flat = values.reshape(-1, values.shape[-1])
    idx = np.flatnonzero(flat[:, 0] > 0)
    rows, cols = np.divmod(idx, w)
    v = flat[idx]  # one gather of all four channels
    pose = None
    if pixel_pose is not None:
        pose = np.asarray(pixel_pose).reshape(-1, 6)[idx]
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
    cp = range_image.camera_projection
    n = idx.size
    return PointCloud(
        xyz=pts,
        intensity=v[:, 1].astype(np.float32),  # copies: contiguous columns
        elongation=v[:, 2].astype(np.float32),
        nlz=v[:, 3] > 0,
        laser=np.full(n, laser_id(range_image.laser), np.uint8),
        return_index=np.full(n, range_image.return_index, np.uint8),
        range=v[:, 0].astype(np.float32),
        pixel=np.stack([rows, cols], axis=1).astype(np.int32),
        camera_projection=(
            cp.reshape(-1, 6)[idx].astype(np.int32)
            if cp is not None
            else np.zeros((n, 6), np.int32)
        ),
    )
