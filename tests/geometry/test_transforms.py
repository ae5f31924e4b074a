"""Rigid transforms and the roll/pitch/yaw convention, against SciPy."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from perceive.geometry.transforms import (
    euler_to_rotation,
    invert_transform,
    make_transform,
    rotation_to_euler,
    rotation_z,
    transform_points,
)

RNG = np.random.default_rng(0)
ROLL, PITCH, YAW = (
    RNG.uniform(-np.pi, np.pi, 50),
    RNG.uniform(-1.5, 1.5, 50),
    RNG.uniform(-np.pi, np.pi, 50),
)


def test_euler_is_rz_ry_rx() -> None:
    got = euler_to_rotation(ROLL, PITCH, YAW)
    exp = Rotation.from_euler("ZYX", np.stack([YAW, PITCH, ROLL], 1)).as_matrix()
    assert got.shape == (50, 3, 3)
    np.testing.assert_allclose(got, exp, atol=1e-12)


def test_euler_round_trip() -> None:
    r, p, y = rotation_to_euler(euler_to_rotation(ROLL, PITCH, YAW))
    np.testing.assert_allclose(r, ROLL, atol=1e-9)
    np.testing.assert_allclose(p, PITCH, atol=1e-9)
    np.testing.assert_allclose(y, YAW, atol=1e-9)


def test_euler_broadcasts_and_scalar() -> None:
    assert euler_to_rotation(0.1, 0.2, np.zeros((4, 2))).shape == (4, 2, 3, 3)
    np.testing.assert_allclose(euler_to_rotation(0.0, 0.0, 0.3), rotation_z(0.3), atol=1e-15)


def test_rotation_z() -> None:
    np.testing.assert_allclose(rotation_z(np.pi / 2) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)
    assert rotation_z(np.zeros(3)).shape == (3, 3, 3)


def test_transform_and_inverse() -> None:
    t = make_transform(euler_to_rotation(0.1, -0.2, 0.7), [1.0, -2.0, 3.0])
    pts = RNG.normal(0, 10, (30, 3))
    moved = transform_points(t, pts)
    np.testing.assert_allclose(
        moved, Rotation.from_matrix(t[:3, :3]).apply(pts) + t[:3, 3], atol=1e-12
    )
    np.testing.assert_allclose(transform_points(invert_transform(t), moved), pts, atol=1e-12)
    np.testing.assert_allclose(invert_transform(t), np.linalg.inv(t), atol=1e-12)
    assert transform_points(t, pts.astype(np.float32)).dtype == np.float32
    assert transform_points(t, np.zeros((2, 3), np.int64)).dtype == np.float64


def test_affine_equals_matrix_product() -> None:
    from perceive.geometry.transforms import affine

    pts = RNG.normal(0, 5, (100, 3))
    rot = RNG.normal(size=(3, 3))
    t = RNG.normal(size=3)
    np.testing.assert_allclose(affine(pts, rot, t), pts @ rot.T + t, atol=1e-12)
    assert affine(np.zeros((0, 3)), rot, t).shape == (0, 3)
