"""Rigid transforms."""

from __future__ import annotations

import numpy as np


def rotation_z(yaw: np.ndarray | float) -> np.ndarray:
    """Rotation matrices about z.

    Args:
        yaw: (...) radians.

    Returns:
        (..., 3, 3) float64 rotation matrices.
    """
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    z, o = np.zeros_like(yaw), np.ones_like(yaw)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(*yaw.shape, 3, 3)


def euler_to_rotation(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (the Waymo range-image pose convention).

    Args:
        roll, pitch, yaw: (...) radians, broadcastable.

    Returns:
        (..., 3, 3) rotation matrices, dtype of the inputs' result type (at least float32).
    """
    roll, pitch, yaw = np.broadcast_arrays(roll, pitch, yaw)
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    r = np.stack(
        [
            cy * cp,
            cy * sp * sr - sy * cr,
            cy * sp * cr + sy * sr,
            sy * cp,
            sy * sp * sr + cy * cr,
            sy * sp * cr - cy * sr,
            -sp,
            cp * sr,
            cp * cr,
        ],
        axis=-1,
    )
    return r.reshape(*roll.shape, 3, 3)


def rotation_to_euler(rot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`euler_to_rotation` for (..., 3, 3) matrices; returns (roll, pitch, yaw)."""
    rot = np.asarray(rot)
    yaw = np.arctan2(rot[..., 1, 0], rot[..., 0, 0])
    pitch = np.arcsin(np.clip(-rot[..., 2, 0], -1.0, 1.0))
    roll = np.arctan2(rot[..., 2, 1], rot[..., 2, 2])
    return roll, pitch, yaw


def affine(xyz: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``xyz @ rotation.T + translation`` for many points, written out per component.

    Args:
        xyz: (N, 3) points.
        rotation: (3, 3) matrix (any linear map).
        translation: (3,) vector.

    Returns:
        (N, 3) float64.

    NumPy hands ``(N, 3) @ (3, 3)`` to BLAS, whose threads make it up to a hundred
    times slower than these nine multiply-adds on a busy machine.
    """
    p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    r = np.asarray(rotation, dtype=np.float64)
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    out = np.empty_like(p)
    for i in range(3):
        out[:, i] = r[i, 0] * x + r[i, 1] * y + r[i, 2] * z + t[i]
    return out


def transform_points(transform: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) homogeneous transform to (N, 3) points; keeps the dtype of ``xyz``."""
    transform = np.asarray(transform, dtype=np.float64)
    out = affine(xyz, transform[:3, :3], transform[:3, 3])
    return out.astype(np.asarray(xyz).dtype if np.asarray(xyz).dtype.kind == "f" else np.float64)


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform (rotation + translation), float64."""
    transform = np.asarray(transform, dtype=np.float64)
    out = np.eye(4)
    r = transform[:3, :3]
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ transform[:3, 3]
    return out


def make_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(4, 4) float64 transform from a (3, 3) rotation and a (3,) translation."""
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out
