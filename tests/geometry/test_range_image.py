"""Range-image geometry: inclinations, azimuths, and the inverse mapping for writers."""

from __future__ import annotations

import numpy as np
import pytest

from perceive.geometry.range_image import (
    beam_inclinations,
    column_azimuths,
    pixels_to_vehicle,
    points_to_range_image_coords,
    polar_to_vehicle,
    range_image_to_points,
)
from perceive.geometry.transforms import euler_to_rotation, invert_transform, make_transform


def test_explicit_inclinations_are_reversed() -> None:
    np.testing.assert_array_equal(
        beam_inclinations(np.array([-0.2, 0.0, 0.1]), 9, 9, 3), [0.1, 0.0, -0.2]
    )
    with pytest.raises(ValueError, match="3 beam inclinations"):
        beam_inclinations(np.array([-0.2, 0.0, 0.1]), 0, 0, 4)


def test_uniform_inclinations() -> None:
    got = beam_inclinations(None, -1.0, 1.0, 4)
    np.testing.assert_allclose(got, [0.75, 0.25, -0.25, -0.75])
    np.testing.assert_allclose(beam_inclinations(np.zeros(0), -1.0, 1.0, 4), got)


def test_column_azimuths_with_yaw() -> None:
    # W = 4: pi * (1 - (2c + 1) / 4) = 3pi/4, pi/4, -pi/4, -3pi/4, then minus the yaw.
    ext = make_transform(euler_to_rotation(0.0, 0.0, 0.3), [0, 0, 0])
    np.testing.assert_allclose(
        column_azimuths(4, ext), np.array([0.75, 0.25, -0.25, -0.75]) * np.pi - 0.3
    )


def test_points_round_trip_through_range_image_coords() -> None:
    h, w = 6, 40
    incl = beam_inclinations(None, -0.3, 0.2, h)
    ext = make_transform(euler_to_rotation(0.01, 0.05, 1.2), [1.0, 0.5, 2.0])
    rng = np.random.default_rng(0)
    ranges = rng.uniform(1, 50, (h, w))
    pts = range_image_to_points(ranges, ext, incl)
    assert pts.shape == (h, w, 3) and pts.dtype == np.float32
    inv = invert_transform(ext)
    laser = pts.reshape(-1, 3).astype(np.float64) @ inv[:3, :3].T + inv[:3, 3]
    row, col, r = points_to_range_image_coords(laser, incl, w, ext)
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    np.testing.assert_array_equal(row, rr.ravel())
    np.testing.assert_array_equal(col, cc.ravel())
    np.testing.assert_allclose(r, ranges.ravel(), rtol=1e-5)


def test_pixel_pose_needs_frame_pose() -> None:
    with pytest.raises(ValueError, match="frame_pose"):
        range_image_to_points(
            np.ones((2, 3)), np.eye(4), np.zeros(2), pixel_pose=np.zeros((2, 3, 6))
        )


def test_identity_pixel_pose_equal_to_frame_pose_changes_nothing() -> None:
    pose = make_transform(euler_to_rotation(0.02, -0.01, 2.0), [10.0, -5.0, 1.0])
    pp = np.zeros((2, 3, 6))
    pp[...] = [0.02, -0.01, 2.0, 10.0, -5.0, 1.0]
    r = np.full((2, 3), 7.0)
    a = range_image_to_points(r, np.eye(4), np.array([0.1, -0.1]))
    b = range_image_to_points(r, np.eye(4), np.array([0.1, -0.1]), pixel_pose=pp, frame_pose=pose)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_fast_pixel_path_equals_polar_to_vehicle() -> None:
    rng = np.random.default_rng(3)
    h, w = 8, 50
    incl = beam_inclinations(rng.uniform(-0.3, 0.05, h), 0, 0, h)
    ext = make_transform(euler_to_rotation(0.01, 0.03, -0.4), [1.4, 0.1, 2.2])
    rows, cols = rng.integers(0, h, 300), rng.integers(0, w, 300)
    r = rng.uniform(1, 70, 300)
    pp = np.c_[rng.normal(0, 0.05, (300, 3)), rng.normal(0, 2, (300, 3))]
    pose = make_transform(euler_to_rotation(0.02, -0.01, 1.0), [3.0, -1.0, 0.5])
    az = column_azimuths(w, ext)
    for kwargs in ({}, {"pixel_pose": pp, "frame_pose": pose}):
        fast = pixels_to_vehicle(r, rows, cols, incl, w, ext, **kwargs)
        ref = polar_to_vehicle(r, incl[rows], az[cols], ext, **kwargs)
        np.testing.assert_allclose(fast, ref, atol=1e-5)
        out = np.full((300, 3), np.nan, np.float32)
        assert pixels_to_vehicle(r, rows, cols, incl, w, ext, out=out, **kwargs) is out
        np.testing.assert_array_equal(out, fast)
    with pytest.raises(ValueError, match="out has shape"):
        pixels_to_vehicle(r, rows, cols, incl, w, ext, out=np.zeros((299, 3), np.float32))
    with pytest.raises(ValueError, match="frame_pose"):
        pixels_to_vehicle(r, rows, cols, incl, w, ext, pixel_pose=pp)
    with pytest.raises(ValueError, match="pixel pose has shape"):
        pixels_to_vehicle(r, rows, cols, incl, w, ext, pixel_pose=pp[:5], frame_pose=pose)
