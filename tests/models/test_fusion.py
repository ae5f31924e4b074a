import numpy as np
import torch

from perceive.datasets.waymo.fixtures import camera_calibration
from perceive.geometry.camera import project_points
from perceive.models.config import CameraConfig, FusionConfig, GridConfig
from perceive.models.fusion import CameraToBEV, PointPainter, project_to_cameras

W, H = 64, 48
CAMS = ("FRONT", "SIDE_LEFT", "FRONT_RIGHT")


def calibs():
    cals = [camera_calibration(n, W, H) for n in CAMS]
    intr = torch.tensor(np.stack([c.intrinsic for c in cals]), dtype=torch.float32)
    ext = torch.tensor(np.stack([c.extrinsic for c in cals]), dtype=torch.float32)
    return cals, intr, ext


def test_projection_matches_the_numpy_waymo_model():
    cals, intr, ext = calibs()
    rng = np.random.default_rng(0)
    xyz = rng.uniform([-30, -30, -2], [30, 30, 4], (2000, 3))
    uv, depth, valid = project_to_cameras(
        torch.tensor(xyz, dtype=torch.float32), intr[None], ext[None], W, H
    )
    for i, cal in enumerate(cals):
        ref_uv, ref_depth, ref_valid = project_points(xyz, cal.intrinsic, cal.extrinsic, W, H)
        assert valid[0, i].sum() > 20
        # Points right on an edge may flip validity in float32; allow a handful.
        assert (valid[0, i].numpy() != ref_valid).sum() <= 3
        both = valid[0, i].numpy() & ref_valid
        np.testing.assert_allclose(uv[0, i].numpy()[both], ref_uv[both], atol=2e-3)
        np.testing.assert_allclose(depth[0, i].numpy(), ref_depth, rtol=1e-5, atol=1e-4)


def lift(stride=1):
    grid = GridConfig(
        point_cloud_range=(-16.0, -16.0, -2.0, 16.0, 16.0, 4.0), voxel_size=(1.0, 1.0)
    )
    fusion = FusionConfig(heights=(0.5, 1.5), bev_channels=4, bev_stride=stride)
    camera = CameraConfig(cameras=CAMS, image_size=(W, H), channels=(4, 4, 4), blocks=(0, 0, 0))
    return CameraToBEV(grid=grid, fusion=fusion, camera=camera, in_channels=2).eval()


def test_lift_reads_features_where_cells_project_and_is_zero_elsewhere():
    m = lift()
    _, intr, ext = calibs()
    feats = torch.zeros(1, len(CAMS), 2, H // 8, W // 8)
    feats[:, :, 0] = 1.0  # channel 0 constant one: marks visibility
    feats[0, 0, 1] = 2.0  # channel 1: 2 in FRONT only
    raw = m.sample(feats, intr[None], ext[None])
    assert raw.shape == (1, 2 * 2, 32, 32)
    xyz = m.samples.numpy().astype(np.float64)
    cals, _, _ = calibs()
    counts = np.zeros(len(xyz))
    interior = np.zeros(len(xyz), bool)  # seen by a camera away from its border half-cell
    for cal in cals:
        uv, _, v = cal.project(xyz)
        counts += v
        interior |= v & np.all((uv >= 4) & (uv <= [W - 4, H - 4]), axis=1)
    front_uv, _, front = cals[0].project(xyz)
    vis = raw[0, 0:2].reshape(-1).numpy()  # channel 0 at both heights, height-major like samples
    seen = counts > 0
    assert interior.sum() > 50
    # Channel 0 reads 1 at interior points, a bilinear blend with the zero padding near
    # borders, and exactly 0 where no camera sees the point.
    np.testing.assert_allclose(vis[interior & (counts == 1)], 1.0, atol=1e-5)
    assert np.all((vis[seen] > 0) & (vis[seen] <= 1 + 1e-5))
    assert np.all(vis[~seen] == 0)
    # Channel 1 is 2 in FRONT only: the mean over the cameras seeing the point.
    ch1 = raw[0, 2:4].reshape(-1).numpy()
    ok = front & np.all((front_uv >= 4) & (front_uv <= [W - 4, H - 4]), axis=1)
    assert ok.sum() > 20
    np.testing.assert_allclose(ch1[ok], 2.0 / counts[ok], atol=1e-5)
    assert np.all(ch1[~front] == 0)


def test_lift_output_is_on_the_pillar_grid_for_any_stride():
    _, intr, ext = calibs()
    feats = torch.randn(2, len(CAMS), 2, H // 8, W // 8)
    for stride in (1, 2, 4):
        out = lift(stride)(feats, intr[None].repeat(2, 1, 1), ext[None].repeat(2, 1, 1, 1))
        assert out.shape == (2, 4, 32, 32)


def test_projection_is_unchanged_by_a_flipped_scaled_rotated_scene():
    # The training augmentation maps points by A and extrinsics E to A @ E (A: flip, rotation,
    # uniform scale, translation); pixels must not move.
    _, intr, ext = calibs()
    c, s, k = np.cos(0.4), np.sin(0.4), 1.04
    a = np.eye(4)
    a[:3, :3] = k * np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([1.0, -1.0, 1.0])
    a[:3, 3] = [0.3, -0.2, 0.1]
    rng = np.random.default_rng(1)
    xyz = rng.uniform([-30, -30, -1], [30, 30, 3], (500, 3))
    moved = xyz @ a[:3, :3].T + a[:3, 3]
    a_t = torch.tensor(a, dtype=torch.float32)
    uv0, _, v0 = project_to_cameras(
        torch.tensor(xyz, dtype=torch.float32), intr[None], ext[None], W, H
    )
    uv1, _, v1 = project_to_cameras(
        torch.tensor(moved, dtype=torch.float32), intr[None], (a_t @ ext)[None], W, H
    )
    both = v0 & v1
    assert both.sum() > 20 and (v0 != v1).sum() <= 3
    torch.testing.assert_close(uv1[both], uv0[both], atol=2e-3, rtol=0)


def painter():
    fusion = FusionConfig(min_depth=0.5)
    camera = CameraConfig(cameras=CAMS, image_size=(W, H), channels=(4, 4, 4), blocks=(0, 0, 0))
    return PointPainter(fusion=fusion, camera=camera)


def test_painter_reads_features_at_the_points_and_flags_what_no_camera_sees():
    cals, intr, ext = calibs()
    rng = np.random.default_rng(1)
    xyz = rng.uniform([-30, -30, -2], [30, 30, 4], (3000, 3))
    xyz[:5] = np.nan  # non-finite points are seen by no camera
    feats = torch.zeros(len(CAMS), 2, H // 8, W // 8)
    feats[:, 0] = 1.0  # channel 0 constant one
    feats[0, 1] = 2.0  # channel 1: 2 in FRONT only
    p = painter()
    assert (
        p.out_channels
        == CameraConfig(
            cameras=CAMS, image_size=(W, H), channels=(4, 4, 4), blocks=(0, 0, 0)
        ).out_channels
        + 1
    )
    out = p(torch.tensor(xyz, dtype=torch.float32), feats, intr, ext).numpy()
    assert out.shape == (3000, 3)
    counts = np.zeros(len(xyz))
    interior = np.zeros(len(xyz), bool)
    for cal in cals:
        uv, _, v = cal.project(np.nan_to_num(xyz, nan=0.0))
        v &= np.isfinite(xyz).all(axis=1)
        counts += v
        interior |= v & np.all((uv >= 4) & (uv <= [W - 4, H - 4]), axis=1)
    seen = counts > 0
    assert interior.sum() > 100 and (~seen).sum() > 100
    # Points right on an image edge may flip in float32; allow a handful.
    assert (out[:, 2].astype(bool) != seen).sum() <= 3
    agree = out[:, 2].astype(bool) == seen
    assert np.all(out[~seen & agree, :2] == 0) and np.all(out[:5] == 0)
    np.testing.assert_allclose(out[interior & (counts == 1) & agree, 0], 1.0, atol=1e-5)
    front_uv, _, front = cals[0].project(np.nan_to_num(xyz, nan=0.0))
    ok = front & np.all((front_uv >= 4) & (front_uv <= [W - 4, H - 4]), axis=1) & agree
    assert ok.sum() > 20
    # The mean over the cameras that see the point.
    np.testing.assert_allclose(out[ok, 1], 2.0 / counts[ok], atol=1e-5)


def test_painter_takes_zero_points_and_carries_gradients_to_the_features():
    _, intr, ext = calibs()
    feats = torch.rand(len(CAMS), 2, H // 8, W // 8, requires_grad=True)
    p = painter()
    assert p(torch.zeros(0, 3), feats, intr, ext).shape == (0, 3)
    xyz = torch.tensor([[10.0, 0.0, 1.0], [-10.0, 0.0, 1.0]])  # ahead, behind
    out = p(xyz, feats, intr, ext)
    out[:, :2].sum().backward()
    assert out[0, 2] == 1 and feats.grad is not None and feats.grad[0].abs().sum() > 0


def test_gated_lift_starts_closed_and_learns_to_open():
    _, intr, ext = calibs()
    plain = lift()
    grid = GridConfig(
        point_cloud_range=(-16.0, -16.0, -2.0, 16.0, 16.0, 4.0), voxel_size=(1.0, 1.0)
    )
    fusion = FusionConfig(heights=(0.5, 1.5), bev_channels=4, bev_stride=1, gate=True)
    camera = CameraConfig(cameras=CAMS, image_size=(W, H), channels=(4, 4, 4), blocks=(0, 0, 0))
    gated = CameraToBEV(grid=grid, fusion=fusion, camera=camera, in_channels=2, gated=True)
    gated.load_state_dict({**plain.state_dict(), "gate": torch.zeros(1, 4, 1, 1)})
    gated.eval()
    feats = torch.rand(1, len(CAMS), 2, H // 8, W // 8) + 0.5
    out = gated(feats, intr[None], ext[None])
    assert torch.equal(out, torch.zeros_like(out))  # closed: a LiDAR-only start
    (out * torch.randn_like(out)).sum().backward()
    assert gated.gate.grad is not None and gated.gate.grad.abs().sum() > 0  # it can open
    with torch.no_grad():
        gated.gate.fill_(1.0)
        torch.testing.assert_close(
            gated(feats, intr[None], ext[None]), plain(feats, intr[None], ext[None])
        )
    assert plain.gate is None
