"""Ray-cast LiDAR: calibrations, exact pixel directions, returns, measurement model."""

from __future__ import annotations

import numpy as np

from perceive.geometry.range_image import column_azimuths
from perceive.synth import lidar as lid
from perceive.synth import materials as mtl
from perceive.synth.config import LidarConfig


def test_top_inclinations_are_waymo_like():
    incl = lid.top_inclinations(64)
    assert incl.shape == (64,)
    assert np.all(np.diff(incl) > 0)
    np.testing.assert_allclose([incl[0], incl[-1]], lid.TOP_INCLINATION)
    gaps = np.diff(incl)
    assert gaps[0] > 2 * gaps[-1]  # denser near the horizon


def test_calibrations():
    cals = lid.laser_calibrations(LidarConfig())
    assert list(cals) == ["TOP", "FRONT", "SIDE_LEFT", "SIDE_RIGHT", "REAR"]
    assert cals["TOP"].beam_inclinations.shape == (64,)
    assert cals["FRONT"].beam_inclinations.size == 0
    assert cals["FRONT"].inclinations(200).shape == (200,)


def test_points_lie_along_their_pixel_rays(tiny_frames, tiny_generator):
    """Short-range lasers have no pixel pose: each point is range x its pixel direction."""
    sf = tiny_frames[0]
    for laser in ("FRONT", "REAR"):
        ri = sf.returns[(laser, 1)].range_image
        cal = tiny_generator.lasers[laser]
        h, w = ri.shape
        rows, cols = np.nonzero(ri.values[..., 0] > 0)
        incl = cal.inclinations(h)[rows]
        az = column_azimuths(w, cal.extrinsic)[cols]
        p = sf.returns[(laser, 1)].xyz.astype(np.float64) - cal.extrinsic[:3, 3]
        p = p @ cal.extrinsic[:3, :3]  # into the laser frame
        r = np.linalg.norm(p, axis=1)
        np.testing.assert_allclose(r, ri.values[rows, cols, 0], rtol=1e-5)
        np.testing.assert_allclose(np.arcsin(p[:, 2] / r), incl, atol=1e-5)
        np.testing.assert_allclose(
            np.angle(np.exp(1j * (np.arctan2(p[:, 1], p[:, 0]) - az))), 0, atol=1e-5
        )


def test_second_returns_lie_behind_first(tiny_frames):
    for sf in tiny_frames:
        for laser in ("TOP", "FRONT"):
            r1 = sf.returns[(laser, 1)].range_image.values[..., 0]
            r2 = sf.returns[(laser, 2)].range_image.values[..., 0]
            both = r2 > 0
            assert (r1[both] > 0).all() and (r2[both] > r1[both]).all()


def test_range_limits_and_field_of_view(tiny_frames, tiny_config):
    cfg = tiny_config.lidar
    sf = tiny_frames[0]
    top = sf.returns[("TOP", 1)].range_image.values[..., 0]
    assert top[top > 0].max() <= cfg.top_max_range
    front = sf.returns[("FRONT", 1)].range_image
    r = front.values[..., 0]
    # the limits hold for the stored (noisy) ranges, on every laser and return
    for (laser, _), ret in sf.returns.items():
        rr = ret.range_image.values[..., 0]
        limit = cfg.top_max_range if laser == "TOP" else cfg.side_max_range
        assert rr[rr > 0].max(initial=0.0) <= limit and rr[rr > 0].min(initial=1.0) > 0
    w = front.shape[1]
    cols = np.nonzero((r > 0).any(0))[0]
    az = column_azimuths(w, np.eye(4))[cols]  # FRONT looks along +x
    assert np.abs(az).max() <= np.deg2rad(cfg.side_fov_deg) / 2 + 1e-9


def test_top_has_per_pixel_pose_that_changes_with_column(tiny_frames):
    ri = tiny_frames[1].returns[("TOP", 1)].range_image
    assert ri.pixel_pose is not None and ri.pixel_pose.shape == (*ri.shape, 6)
    assert tiny_frames[1].returns[("TOP", 2)].range_image.pixel_pose is None
    assert tiny_frames[1].returns[("FRONT", 1)].range_image.pixel_pose is None
    x = ri.pixel_pose[0, :, 3]
    if np.ptp(x) > 0:  # a moving ego: positions follow the sweep order
        assert np.all(np.diff(x) >= 0) or np.all(np.diff(x) <= 0)


def test_channels_are_plausible(tiny_frames):
    ri = tiny_frames[0].returns[("TOP", 1)].range_image
    v = ri.values
    pts = v[..., 0] > 0
    assert (v[pts, 1] >= 0).all() and (v[pts, 1] <= 1.5).all()
    assert (v[pts, 2] >= 0).all()
    assert (v[..., 3] == -1).all()
    cp = ri.camera_projection
    assert set(np.unique(cp[..., 0]).tolist()) <= {0, 1, 2, 3, 4, 5}
    assert (cp[~pts] == 0).all()


def test_dark_surfaces_reflect_less():
    white = mtl.surface_reflectivity(np.array([mtl.PAINT]), np.array([[0.9, 0.9, 0.9]]))
    black = mtl.surface_reflectivity(np.array([mtl.PAINT]), np.array([[0.02, 0.02, 0.02]]))
    glass = mtl.surface_reflectivity(np.array([mtl.GLASS]), np.array([[0.9, 0.9, 0.9]]))
    assert black[0] < 0.3 * white[0] and glass[0] < white[0]
