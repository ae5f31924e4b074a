import numpy as np
import pytest
import torch
from torchvision.models.resnet import BasicBlock

from perceive.datasets.waymo.fixtures import camera_calibration
from perceive.errors import ConfigError
from perceive.geometry.camera import project_points
from perceive.models.camera_backbone import CameraBackbone
from perceive.models.config import CameraConfig, DetectorConfig, FusionConfig, GridConfig
from perceive.models.fusion import CameraToBEV, PointPainter, project_to_cameras
from perceive.models.inference import FastCameraLift, FastPointPainter

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


def pixel_ramp_features(camera: CameraConfig) -> torch.Tensor:
    """(1, 2, h, w) feature maps of the real camera backbone, its weights set so that its
    feature channels 0 and 1 are the column and row index of the image pixel that its
    convolutions centre the feature on (their centre taps pass channels 0 and 1 through)."""
    bb = CameraBackbone(config=camera).eval()
    with torch.no_grad():
        bb.mean.zero_()
        bb.inv_std.fill_(1.0)
        for m in bb.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.zero_()
                k = m.kernel_size[0] // 2
                m.weight[0, 0, k, k] = m.weight[1, 1, k, k] = 1.0
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
                m.weight.fill_(1.0)
                m.bias.zero_()
        for m in bb.modules():
            if isinstance(m, BasicBlock):  # residual branch off: the block is the identity
                m.conv1.weight.zero_()
                m.conv2.weight.zero_()
        w, h = camera.image_size
        image = torch.zeros(1, h, w, 3)
        image[..., 0] = torch.arange(w, dtype=torch.float32)
        image[..., 1] = torch.arange(h, dtype=torch.float32)[:, None]
        feats = bb(image)
    s = camera.stride
    # The geometry the alignment is about: feature j comes from image pixel s * j.
    torch.testing.assert_close(feats[0, 0, 0], torch.arange(w // s, dtype=torch.float32) * s)
    torch.testing.assert_close(feats[0, 1, :, 0], torch.arange(h // s, dtype=torch.float32) * s)
    return feats[:, :2]


@pytest.mark.parametrize("alignment", ["conv", "cell"])
def test_camera_features_are_read_where_the_convolutions_put_them(alignment):
    # A pixel ramp through the real backbone: at projected pixel (u, v) (centres at
    # integer + 0.5) "conv" must read the feature of pixel (u - 0.5, v - 0.5), clamped to the
    # outer features; "cell" (the models up to round 6) reads it 3.5 pixels up-left of that.
    camera = CameraConfig(
        cameras=("FRONT",),
        image_size=(W, H),
        channels=(4, 4, 4),
        blocks=(0, 1, 1),
        feature_alignment=alignment,
    )
    feats = pixel_ramp_features(camera)
    cal = camera_calibration("FRONT", W, H)
    intr = torch.tensor(cal.intrinsic[None], dtype=torch.float32)
    ext = torch.tensor(cal.extrinsic[None], dtype=torch.float32)

    def expected(uv):
        if alignment == "conv":
            return np.clip(uv - 0.5, 0.0, [W - 8, H - 8])
        return uv - 4.0

    def check(read, xyz, seen=None):
        uv, _, valid = cal.project(xyz.astype(np.float64))
        seen = valid if seen is None else seen
        ok = valid & seen
        if alignment == "cell":  # away from the zero padding
            ok &= np.all((uv >= 4) & (uv <= [W - 4, H - 4]), axis=1)
        assert ok.sum() > 30 and (valid != seen).sum() <= 3
        np.testing.assert_allclose(read[ok], expected(uv[ok]), atol=2e-3)

    rng = np.random.default_rng(3)
    xyz = rng.uniform([1, -20, -3], [40, 20, 5], (3000, 3)).astype(np.float32)
    pts = torch.from_numpy(xyz)
    fusion = FusionConfig(heights=(0.5, 1.5), bev_channels=4, bev_stride=1)
    p = PointPainter(fusion=fusion, camera=camera)
    out = p(pts, feats, intr, ext).numpy()
    check(out[:, :2], xyz, out[:, 2] > 0)
    fast = FastPointPainter(p)(pts, feats, intr, ext).numpy().T  # the exported formulation
    np.testing.assert_allclose(fast, out, atol=1e-4)

    grid = GridConfig(point_cloud_range=(0.0, -16.0, -2.0, 32.0, 16.0, 4.0), voxel_size=(1.0, 1.0))
    m = CameraToBEV(grid=grid, fusion=fusion, camera=camera, in_channels=2).eval()
    raw = m.sample(feats[None], intr[None], ext[None])[0]  # (2 * Z, ly, lx), channel f * Z + z
    samples = m.samples.view(2, 32, 32, 3)  # heights x rows x columns
    for z in range(2):
        read = torch.stack([raw[z], raw[2 + z]], dim=-1).reshape(-1, 2).numpy()
        check(read, samples[z].reshape(-1, 3).numpy())
    lifted = m(feats[None], intr[None], ext[None])
    torch.testing.assert_close(FastCameraLift(m)(feats, intr, ext), lifted, atol=1e-4, rtol=0)


def test_feature_alignment_is_checked_and_old_configs_keep_theirs():
    with pytest.raises(ConfigError, match="feature_alignment"):
        CameraConfig(feature_alignment="centre")
    assert CameraConfig().feature_alignment == "conv"
    d = DetectorConfig().to_dict()
    assert DetectorConfig.from_dict(d).camera.feature_alignment == "conv"
    del d["camera"]["feature_alignment"]  # a checkpoint from before the field
    assert DetectorConfig.from_dict(d).camera.feature_alignment == "cell"
