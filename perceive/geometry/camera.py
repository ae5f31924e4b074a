"""Pinhole camera with the Waymo distortion model (global shutter)."""

from __future__ import annotations

import numpy as np

from perceive.geometry.transforms import affine

#: The reference toolkit treats a radial distortion factor outside this range as invalid.
DISTORTION_VALID_RANGE = (0.8, 1.2)


def project_points(
    xyz: np.ndarray,
    intrinsic: np.ndarray,
    extrinsic: np.ndarray,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project vehicle-frame points into a camera image.

    Args:
        xyz: (N, 3) points, vehicle frame, metres.
        intrinsic: (9,) ``f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3``.
        extrinsic: (4, 4) camera frame -> vehicle frame.
        width, height: image size in pixels.

    Returns:
        ``uv`` (N, 2) float64 pixel coordinates (u right, v down, pixel centres at
        integer + 0.5 following the dataset convention of its labels), ``depth``
        (N,) float64 metres along the optical axis (camera x), and ``valid`` (N,)
        bool: in front of the camera, distortion factor in range, inside the image.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    k = np.asarray(intrinsic, dtype=np.float64).reshape(-1)
    if k.shape[0] != 9:
        raise ValueError(f"intrinsic must have 9 values, got {k.shape[0]}")
    fu, fv, cu, cv, k1, k2, p1, p2, k3 = k
    vehicle_to_cam = np.linalg.inv(np.asarray(extrinsic, dtype=np.float64))
    pc = affine(xyz, vehicle_to_cam[:3, :3], vehicle_to_cam[:3, 3])
    depth = pc[:, 0]
    front = depth > 0
    safe = np.where(front, depth, 1.0)
    un = -pc[:, 1] / safe
    vn = -pc[:, 2] / safe
    r2 = un * un + vn * vn
    d = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    ud = un * d + 2.0 * p1 * un * vn + p2 * (r2 + 2.0 * un * un)
    vd = vn * d + p1 * (r2 + 2.0 * vn * vn) + 2.0 * p2 * un * vn
    u = fu * ud + cu
    v = fv * vd + cv
    lo, hi = DISTORTION_VALID_RANGE
    valid = front & (d >= lo) & (d <= hi) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return np.stack([u, v], axis=1), depth, valid
