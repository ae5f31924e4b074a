"""Camera projection with the Waymo distortion model, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from perceive.geometry.camera import project_points
from perceive.geometry.transforms import euler_to_rotation, make_transform

NO_DISTORTION = np.array([100.0, 120.0, 50.0, 40.0, 0, 0, 0, 0, 0])


def test_pinhole_by_hand() -> None:
    # Camera at the vehicle origin, looking along +x. Point 10 m ahead, 1 m right, 2 m up:
    # u_n = -y/x = 0.1, v_n = -z/x = -0.2 -> u = 100 * 0.1 + 50 = 60, v = 120 * -0.2 + 40 = 16.
    uv, depth, valid = project_points([[10.0, -1.0, 2.0]], NO_DISTORTION, np.eye(4), 100, 80)
    np.testing.assert_allclose(uv, [[60.0, 16.0]])
    np.testing.assert_allclose(depth, [10.0])
    assert valid.tolist() == [True]


def test_distortion_by_hand() -> None:
    k1, k2, p1, p2, k3 = 0.1, 0.01, 0.001, 0.002, 0.0005
    intr = np.array([100.0, 120.0, 50.0, 40.0, k1, k2, p1, p2, k3])
    un, vn = 0.1, -0.2
    r2 = 0.05
    d = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    ud = un * d + 2 * p1 * un * vn + p2 * (r2 + 2 * un * un)
    vd = vn * d + p1 * (r2 + 2 * vn * vn) + 2 * p2 * un * vn
    uv, _, valid = project_points([[10.0, -1.0, 2.0]], intr, np.eye(4), 100, 80)
    np.testing.assert_allclose(uv, [[100 * ud + 50, 120 * vd + 40]], rtol=1e-12)
    assert valid.all()


def test_extrinsic_is_camera_to_vehicle() -> None:
    # A camera 2 m up, turned 90 degrees left: it sees points on the vehicle's +y axis.
    ext = make_transform(euler_to_rotation(0.0, 0.0, np.pi / 2), [0.0, 0.0, 2.0])
    uv, depth, valid = project_points(
        [[0.0, 5.0, 2.0], [5.0, 0.0, 2.0]], NO_DISTORTION, ext, 100, 80
    )
    np.testing.assert_allclose(uv[0], [50.0, 40.0], atol=1e-9)
    np.testing.assert_allclose(depth, [5.0, 0.0], atol=1e-9)
    assert valid.tolist() == [True, False]


def test_validity_mask() -> None:
    pts = np.array(
        [
            [10.0, 0.0, 0.0],  # centre: valid
            [-10.0, 0.0, 0.0],  # behind
            [10.0, -6.0, 0.0],  # u = 110 > width
            [10.0, 0.0, 4.0],  # v = -8 < 0
            [0.0, 0.0, 0.0],  # depth 0
        ]
    )
    _, depth, valid = project_points(pts, NO_DISTORTION, np.eye(4), 100, 80)
    assert valid.tolist() == [True, False, False, False, False]
    assert depth[1] == -10.0
    # Strong distortion far off-axis: factor outside [0.8, 1.2] is invalid even in the image.
    intr = NO_DISTORTION.copy()
    intr[4] = -0.5  # k1
    _, _, valid = project_points(
        [[10.0, -2.0, 0.0], [10.0, -9.0, 0.0]], intr, np.eye(4), 100000, 80
    )
    assert valid.tolist() == [True, False]  # d = 0.98; d = 1 - 0.5 * 0.81 = 0.595


def test_shapes_and_bad_intrinsic() -> None:
    uv, depth, valid = project_points(np.zeros((0, 3)), NO_DISTORTION, np.eye(4), 10, 10)
    assert uv.shape == (0, 2) and depth.shape == (0,) and valid.shape == (0,)
    with pytest.raises(ValueError, match="9"):
        project_points(np.zeros((1, 3)), np.ones(4), np.eye(4), 10, 10)
