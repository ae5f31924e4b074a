"""Range images to point clouds with per-point attributes."""

from __future__ import annotations

import numpy as np

from perceive.datasets.types import LaserCalibration, PointCloud, RangeImage, laser_id
from perceive.geometry.range_image import column_azimuths, polar_to_vehicle


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
    rng = values[..., 0]
    mask = rng > 0
    rows, cols = np.nonzero(mask)
    incl = calibration.inclinations(h)
    az = column_azimuths(w, calibration.extrinsic)
    # Only the pixels that are points are converted (cheaper than the full image).
    pts = polar_to_vehicle(
        rng[rows, cols],
        incl[rows],
        az[cols],
        calibration.extrinsic,
        pixel_pose=None if pixel_pose is None else np.asarray(pixel_pose)[rows, cols],
        frame_pose=frame_pose,
    )
    cp = range_image.camera_projection
    n = rows.size
    return PointCloud(
        xyz=pts,
        intensity=values[rows, cols, 1].astype(np.float32),
        elongation=values[rows, cols, 2].astype(np.float32),
        nlz=values[rows, cols, 3] > 0,
        laser=np.full(n, laser_id(range_image.laser), np.uint8),
        return_index=np.full(n, range_image.return_index, np.uint8),
        range=rng[rows, cols].astype(np.float32),
        pixel=np.stack([rows, cols], axis=1).astype(np.int32),
        camera_projection=(cp[rows, cols].astype(np.int32) if cp is not None else np.zeros((n, 6), np.int32)),
    )
