"""Range images to points, as the Waymo format defines them.

A range image has ``H`` rows (beams, row 0 the highest) and ``W`` columns (azimuth,
column 0 pointing backwards-left, sweeping clockwise seen from above).
"""

from __future__ import annotations

import numpy as np

from perceive.geometry.transforms import affine, euler_to_rotation


def beam_inclinations(
    explicit: np.ndarray | None, inclination_min: float, inclination_max: float, height: int
) -> np.ndarray:
    """Per-row inclination of a range image, row 0 the highest beam.

    Args:
        explicit: (H,) inclinations in ascending order as stored in the calibration,
            or ``None``/empty to use the uniform spacing between min and max.
        inclination_min, inclination_max: radians, used when ``explicit`` is empty.
        height: number of rows H.

    Returns:
        (H,) float64 radians, row 0 first (descending for a normal calibration).
    """
    if explicit is not None and len(explicit) > 0:
        incl = np.asarray(explicit, dtype=np.float64)
        if incl.shape[0] != height:
            raise ValueError(
                f"calibration has {incl.shape[0]} beam inclinations, range image {height} rows"
            )
    else:
        i = np.arange(height, dtype=np.float64)
        incl = inclination_min + (i + 0.5) / height * (inclination_max - inclination_min)
    return incl[::-1].copy()


def column_azimuths(width: int, extrinsic: np.ndarray) -> np.ndarray:
    """(W,) float64 azimuth of each column in the laser frame, radians."""
    extrinsic = np.asarray(extrinsic, dtype=np.float64)
    c = np.arange(width, dtype=np.float64)
    yaw = np.arctan2(extrinsic[1, 0], extrinsic[0, 0])
    return np.pi * (1.0 - (2.0 * c + 1.0) / width) - yaw


def polar_to_vehicle(
    range_m: np.ndarray,
    inclination: np.ndarray,
    azimuth: np.ndarray,
    extrinsic: np.ndarray,
    pixel_pose: np.ndarray | None = None,
    frame_pose: np.ndarray | None = None,
) -> np.ndarray:
    """Points from laser polar coordinates, vehicle frame.

    Args:
        range_m: (N,) range, metres.
        inclination: (N,) radians, laser frame.
        azimuth: (N,) radians, laser frame (see :func:`column_azimuths`).
        extrinsic: (4, 4) laser frame -> vehicle frame.
        pixel_pose: optional (N, 6) ``roll, pitch, yaw, x, y, z``: the vehicle -> world
            pose at each point's capture time (TOP laser only).
        frame_pose: (4, 4) vehicle -> world pose of the frame; required with ``pixel_pose``.

    Returns:
        (N, 3) float32 points, vehicle frame at the frame's timestamp, metres.
    """
    r = np.asarray(range_m, dtype=np.float64)
    incl = np.asarray(inclination, dtype=np.float64)
    az = np.asarray(azimuth, dtype=np.float64)
    extrinsic = np.asarray(extrinsic, dtype=np.float64)
    rc = r * np.cos(incl)
    p = np.stack([rc * np.cos(az), rc * np.sin(az), r * np.sin(incl)], axis=-1)
    p = affine(p.reshape(-1, 3), extrinsic[:3, :3], extrinsic[:3, 3]).reshape(p.shape)
    if pixel_pose is not None:
        if frame_pose is None:
            raise ValueError("frame_pose is required with pixel_pose")
        pp = np.asarray(pixel_pose, dtype=np.float64)
        if pp.shape != (*r.shape, 6):
            raise ValueError(f"pixel pose has shape {pp.shape}, expected {(*r.shape, 6)}")
        rot = euler_to_rotation(pp[..., 0], pp[..., 1], pp[..., 2])
        world = np.einsum("...ij,...j->...i", rot, p) + pp[..., 3:6]
        inv = np.linalg.inv(np.asarray(frame_pose, dtype=np.float64))
        p = affine(world.reshape(-1, 3), inv[:3, :3], inv[:3, 3]).reshape(world.shape)
    return p.astype(np.float32)


def _columns_affine(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, rot: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rot @ (x, y, z) + t`` on coordinate columns, in the columns' dtype.

    Each output is ``((r0 * x + r1 * y) + r2 * z) + t``, rounded after every operation
    in the columns' dtype, computed in place in one buffer per output.
    """
    r, t = rot.tolist(), t.tolist()
    out = []
    for i in range(3):
        acc = np.multiply(x, r[i][0])
        tmp = np.multiply(y, r[i][1])
        acc += tmp
        np.multiply(z, r[i][2], out=tmp)
        acc += tmp
        acc += t[i]
        out.append(acc)
    return out[0], out[1], out[2]


def _columns_rotate_euler(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    roll: np.ndarray,
    pitch: np.ndarray,
    yaw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Rz(yaw) Ry(pitch) Rx(roll) (x, y, z)`` per point as three planar rotations (no
    (N, 3, 3) matrices: a third of the arithmetic)."""

    def planar(a: np.ndarray, b: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # (c a - s b, s a + c b), each product rounded before the sum.
        c, s = np.cos(angle), np.sin(angle)
        a2 = np.multiply(c, a)
        tmp = np.multiply(s, b)
        a2 -= tmp
        b2 = np.multiply(s, a)
        np.multiply(c, b, out=tmp)
        b2 += tmp
        return a2, b2

    y, z = planar(y, z, roll)
    z, x = planar(z, x, pitch)  # (c z - s x, s z + c x)
    x, y = planar(x, y, yaw)
    return x, y, z


def pixels_to_vehicle(
    range_m: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    inclinations: np.ndarray,
    width: int,
    extrinsic: np.ndarray,
    pixel_pose: np.ndarray | None = None,
    frame_pose: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Points of chosen range-image pixels, vehicle frame (the fast path of the reader).

    The same result as :func:`polar_to_vehicle` with :func:`column_azimuths`, computed in
    float32 as the format's reference implementation does (angles and transforms are
    prepared in float64): the trigonometry is done once per row and per column and
    gathered, coordinates stay in contiguous columns, and the per-pixel pose is applied
    as three planar rotations. The pose translation is made relative to the frame's
    in float64 first, so large world coordinates lose no precision.

    Args:
        range_m: (N,) range of each pixel, metres.
        rows, cols: (N,) integer pixel coordinates.
        inclinations: (H,) radians, row 0 first (see :func:`beam_inclinations`).
        width: number of columns W of the range image.
        extrinsic: (4, 4) laser frame -> vehicle frame.
        pixel_pose: optional (N, 6) ``roll, pitch, yaw, x, y, z`` vehicle -> world pose at
            each pixel's capture time (TOP laser only).
        frame_pose: (4, 4) vehicle -> world pose of the frame; required with ``pixel_pose``.
        out: optional (N, 3) float32 array to write the points into.

    Returns:
        (N, 3) float32 points, vehicle frame at the frame's timestamp, metres (``out``
        when given).
    """
    extrinsic = np.asarray(extrinsic, dtype=np.float64)
    incl = np.asarray(inclinations, dtype=np.float64)
    az = column_azimuths(width, extrinsic)
    f32 = np.float32
    r = np.asarray(range_m, dtype=f32).reshape(-1)
    n = r.shape[0]
    if pixel_pose is not None:
        if frame_pose is None:
            raise ValueError("frame_pose is required with pixel_pose")
        pp = np.asarray(pixel_pose)
        if pp.shape != (n, 6):
            raise ValueError(f"pixel pose has shape {pp.shape}, expected {(n, 6)}")
    rc = np.cos(incl).astype(f32).take(rows)
    rc *= r
    x = np.cos(az).astype(f32).take(cols)
    x *= rc
    y = np.sin(az).astype(f32).take(cols)
    y *= rc
    z = np.sin(incl).astype(f32).take(rows)
    z *= r
    del rc
    x, y, z = _columns_affine(x, y, z, extrinsic[:3, :3], extrinsic[:3, 3])
    if pixel_pose is not None:
        fp = np.asarray(frame_pose, dtype=np.float64)
        angles = [np.ascontiguousarray(pp[:, k], dtype=f32) for k in range(3)]
        x, y, z = _columns_rotate_euler(x, y, z, *angles)
        # vehicle = Rf^T (R_pixel p + t_pixel - t_frame), the difference taken in float64
        for col, k in ((x, 3), (y, 4), (z, 5)):
            shift = pp[:, k].astype(np.float64)
            shift -= fp[k - 3, 3]
            col += shift.astype(f32)
        x, y, z = _columns_affine(x, y, z, fp[:3, :3].T, np.zeros(3))
    if out is None:
        out = np.empty((n, 3), f32)
    elif out.shape != (n, 3):
        raise ValueError(f"out has shape {out.shape}, expected {(n, 3)}")
    out[:, 0], out[:, 1], out[:, 2] = x, y, z
    return out


def range_image_to_points(
    range_m: np.ndarray,
    extrinsic: np.ndarray,
    inclinations: np.ndarray,
    pixel_pose: np.ndarray | None = None,
    frame_pose: np.ndarray | None = None,
) -> np.ndarray:
    """Cartesian points of every range-image pixel, vehicle frame.

    Args:
        range_m: (H, W) range in metres (pixels with range <= 0 are not points; their
            output is still computed and should be masked by the caller).
        extrinsic: (4, 4) laser frame -> vehicle frame.
        inclinations: (H,) radians, row 0 first (see :func:`beam_inclinations`).
        pixel_pose: optional (H, W, 6) per-pixel vehicle -> world pose (TOP laser only).
        frame_pose: (4, 4) vehicle -> world pose of the frame; required with ``pixel_pose``.

    Returns:
        (H, W, 3) float32 points, vehicle frame, metres.
    """
    range_m = np.asarray(range_m)
    h, w = range_m.shape
    az = np.broadcast_to(column_azimuths(w, extrinsic)[None, :], (h, w))
    incl = np.broadcast_to(np.asarray(inclinations, dtype=np.float64)[:, None], (h, w))
    return polar_to_vehicle(range_m, incl, az, extrinsic, pixel_pose, frame_pose)


def points_to_range_image_coords(
    xyz_laser: np.ndarray, inclinations: np.ndarray, width: int, extrinsic: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse mapping used by writers: laser-frame points to (row, col, range).

    Args:
        xyz_laser: (N, 3) points in the laser frame, metres.
        inclinations: (H,) radians, row 0 first.
        width: number of columns W.
        extrinsic: (4, 4) laser -> vehicle (its yaw shifts the columns).

    Returns:
        ``row`` (N,) int64 nearest beam, ``col`` (N,) int64, ``range`` (N,) float64.
    """
    xyz = np.asarray(xyz_laser, dtype=np.float64)
    rng = np.linalg.norm(xyz, axis=1)
    incl = np.arcsin(np.clip(xyz[:, 2] / np.maximum(rng, 1e-12), -1, 1))
    az = np.arctan2(xyz[:, 1], xyz[:, 0])
    extrinsic = np.asarray(extrinsic, dtype=np.float64)
    yaw = np.arctan2(extrinsic[1, 0], extrinsic[0, 0])
    # az = pi * (1 - (2c + 1) / W) - yaw  =>  c = ((1 - (az + yaw) / pi) * W - 1) / 2
    a = np.mod(az + yaw + np.pi, 2 * np.pi) - np.pi
    col = np.round(((1.0 - a / np.pi) * width - 1.0) / 2.0).astype(np.int64) % width
    row = np.abs(incl[:, None] - np.asarray(inclinations)[None, :]).argmin(axis=1)
    return row, col, rng
