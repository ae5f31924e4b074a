"""The inference formulation computes the trained detector's function with cheaper ops."""

import numpy as np
import pytest
import torch

from perceive.deploy.export import compare_detections, parity_inputs
from perceive.models.build import build_detector
from perceive.models.config import (
    BEVBackboneConfig,
    CameraConfig,
    DetectorConfig,
    GridConfig,
    HeadConfig,
    PillarConfig,
    tiny_config,
)
from perceive.models.inference import (
    FastCameraLift,
    FusedPillarEncoder,
    InferenceCameraBackbone,
    InferenceDetector,
    InferenceHead,
)
from tests.models.common import randomised as randomised_with


def randomised(model):
    return randomised_with(model, seed=5, linear_bias=0.5)


def cloud(n, config, seed=0, spread=1.3):
    """(n, F) points uniform over ``spread`` times the grid's range (some fall outside)."""
    rng = np.random.default_rng(seed)
    r = np.asarray(config.grid.point_cloud_range, np.float32)
    centre, half = (r[:3] + r[3:]) / 2, (r[3:] - r[:3]) / 2 * spread
    p = rng.random((n, len(config.pillars.point_features)), dtype=np.float32) * 3
    p[:, :3] = centre + (2 * rng.random((n, 3), dtype=np.float32) - 1) * half
    return torch.from_numpy(p)


@pytest.mark.parametrize("channels", [(8,), (8, 6), (4, 5, 6)])
@pytest.mark.parametrize("n", [0, 1, 40, 700, 3000])
def test_fused_pillars_equal_the_encoder_on_the_points_it_keeps(channels, n):
    config = tiny_config().replace(pillars=PillarConfig(max_points=500, channels=channels))
    torch.manual_seed(len(channels))
    model = randomised(build_detector(config=config, variant="lidar"))
    enc = model.pillars
    fused = FusedPillarEncoder(enc).eval()
    points = cloud(n, config, seed=n)
    points[::7, 3] = 40.0  # intensities far outside tanh's linear range
    with torch.no_grad():
        kept = enc.select_points(points)
        ref = enc(kept, torch.zeros(kept.shape[0], dtype=torch.int64), 1)
        got = fused(points)
    assert got.shape == ref.shape == (1, channels[-1], *config.grid.shape)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-5)
    if n >= 40:
        assert (ref != 0).any()  # not vacuous


def test_fused_pillars_drop_non_finite_points_and_those_past_the_cap():
    config = tiny_config().replace(pillars=PillarConfig(max_points=100, channels=(8,)))
    model = randomised(build_detector(config=config, variant="lidar"))
    fused = FusedPillarEncoder(model.pillars).eval()
    good = cloud(100, config, spread=0.9)  # all inside
    bad = good[:6].clone()
    bad[0, 0] = float("nan")
    bad[1, 1] = float("inf")
    bad[2, 2] = float("-inf")
    bad[3, 3] = float("nan")
    bad[4, 4] = float("inf")
    bad[5, :3] = 1e30
    extra = cloud(50, config, seed=9, spread=0.9)  # past the cap of 100 in-range points
    with torch.no_grad():
        ref = fused(good)
        got = fused(torch.cat([bad[:3], good[:50], bad[3:], good[50:], extra]))
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        assert not torch.equal(fused(torch.cat([good[:50], extra])), ref)


def test_fast_lift_equals_the_lift():
    config = tiny_config()
    model = randomised(build_detector(config=config, variant="camera"))
    (inp,) = parity_inputs(config, count=1, sizes=[0])
    _, images, intr, ext = (torch.from_numpy(x) for x in inp)
    # A camera tilted and shifted: every component of the rotation and translation matters.
    angle = torch.tensor(0.3)
    tilt = torch.eye(4)
    tilt[0, 0], tilt[0, 2], tilt[2, 0], tilt[2, 2] = (
        torch.cos(angle),
        torch.sin(angle),
        -torch.sin(angle),
        torch.cos(angle),
    )
    tilt[:3, 3] = torch.tensor([0.4, -0.2, 0.3])
    ext = ext.clone()
    ext[1] = ext[1] @ tilt
    with torch.no_grad():
        feats = model.camera(images)
        ref = model.lift(feats.unsqueeze(0), intr.unsqueeze(0), ext.unsqueeze(0))
        got = FastCameraLift(model.lift).eval()(feats, intr, ext)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert ref.abs().sum() > 0


@pytest.mark.parametrize("equal_means", [True, False])
def test_camera_backbone_with_the_normalisation_folded_in(equal_means):
    model = randomised(build_detector(config=tiny_config(), variant="camera"))
    backbone = model.camera
    if not equal_means:  # then the normalisation cannot become a constant padding: kept
        backbone.mean.copy_(torch.tensor([100.0, 120.0, 140.0]).view(1, 3, 1, 1))
    folded = InferenceCameraBackbone(backbone).eval()
    assert folded.folded == equal_means
    images = torch.randint(0, 256, (3, 32, 64, 3), dtype=torch.uint8)
    images[0] = 255  # saturated and dark images: borders matter most there
    images[1] = 0
    with torch.no_grad():
        torch.testing.assert_close(folded(images), backbone(images), atol=2e-5, rtol=1e-5)


def test_head_with_regression_at_the_peaks_equals_the_full_head():
    config = tiny_config()
    model = randomised(build_detector(config=config, variant="lidar"))
    head = InferenceHead(model.head, model.coder).eval()
    h, w = config.grid.shape
    on_border = 0
    for seed in range(3):
        x = torch.randn(
            1, model.backbone.out_channels, h, w, generator=torch.Generator().manual_seed(seed)
        )
        with torch.no_grad():
            ref = [t[0] for t in model.coder.decode(*model.head(x))]
            got = head(x)
            cell = model.coder.peaks(model.head(x)[0])[2][0]
        res = compare_detections([t.numpy() for t in ref], [t.numpy() for t in got])
        assert res.within(box_atol=1e-4, score_atol=1e-6) and res.num_compared > 10, res
        row, col = cell // w, cell % w
        on_border += int(((row == 0) | (row == h - 1) | (col == 0) | (col == w - 1)).sum())
    assert on_border > 0  # the zero padding of the 3x3 neighbourhoods was exercised


@pytest.mark.parametrize("variant", ["fusion", "lidar", "camera", "fusion_gated"])
def test_inference_detector_matches_the_detector(variant):
    from perceive.models.config import FusionConfig

    torch.manual_seed(2)
    config = tiny_config()
    if variant == "fusion_gated":
        config = config.replace(fusion=FusionConfig(bev_channels=8, gate=True))
        variant = "fusion"
    model = randomised(build_detector(config=config, variant=variant))
    if model.lift is not None and model.lift.gate is not None:
        model.lift.gate.data.uniform_(-1.0, 1.0)  # an opened gate, one value per channel
    fast = InferenceDetector(model).eval()
    cap = config.pillars.max_points
    sizes = [0, 1, 17, None, cap + 1, 20 * cap]
    compared = 0
    for inp in parity_inputs(config, count=len(sizes), sizes=sizes):
        with torch.no_grad():
            args = [torch.from_numpy(x) for x in inp]
            ref = [t.numpy() for t in model(*args)]
            got = [t.numpy() for t in fast(*args)]
        res = compare_detections(ref, got, score_atol=1e-5)
        assert res.within(box_atol=1e-3, score_atol=1e-5), res
        compared += res.num_compared > 0
    assert compared >= len(sizes) - 2


def test_inference_detector_with_a_coarser_head_grid():
    config = DetectorConfig(
        variant="lidar",
        grid=GridConfig(point_cloud_range=(-6.4, -6.4, -2.0, 6.4, 6.4, 4.0), voxel_size=(0.4, 0.4)),
        pillars=PillarConfig(max_points=400, channels=(8,)),
        camera=CameraConfig(cameras=("FRONT",), image_size=(32, 16), channels=(8,), blocks=(0,)),
        bev=BEVBackboneConfig(
            channels=(8, 16), strides=(2, 2), blocks=(0, 1), neck_channels=8, out_stride=2
        ),
        head=HeadConfig(channels=8, max_detections=15),
    )
    model = randomised(build_detector(config=config))
    fast = InferenceDetector(model).eval()
    (inp,) = parity_inputs(config, count=1, sizes=[300])
    with torch.no_grad():
        args = [torch.from_numpy(x) for x in inp]
        res = compare_detections(
            [t.numpy() for t in model(*args)], [t.numpy() for t in fast(*args)]
        )
    assert res.within(box_atol=1e-3, score_atol=1e-5) and res.num_compared > 5, res


@pytest.mark.parametrize("n", [0, 60, 900])
def test_fused_pillars_with_extra_inputs_equal_the_encoder(n):
    from perceive.models.pillars import PillarEncoder

    config = tiny_config().replace(pillars=PillarConfig(max_points=500, channels=(8, 6)))
    torch.manual_seed(3)
    enc = randomised(PillarEncoder(grid=config.grid, config=config.pillars, extra_channels=4))
    fused = FusedPillarEncoder(enc).eval()
    points = cloud(n, config, seed=n + 1)
    extra = torch.rand(n, 4) * 3 - 1
    with torch.no_grad():
        kept = enc.select_points(points)
        # select_points keeps the first in-range points in order: their rows of ``extra``.
        order = torch.tensor(
            [i for i in range(n) if bool(enc.inside(points[i : i + 1])[0])][: kept.shape[0]]
            + [i for i in range(n) if not bool(enc.inside(points[i : i + 1])[0])],
            dtype=torch.int64,
        )[: kept.shape[0]]
        torch.testing.assert_close(points[order], kept)
        ref = enc(kept, torch.zeros(kept.shape[0], dtype=torch.int64), 1, extra[order])
        got = fused(points, extra.t())
        without = fused(points, torch.zeros_like(extra.t()))
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-5)
    if n >= 60:
        assert not torch.equal(got, without)  # the extra inputs matter
    with pytest.raises(ValueError, match="extra channels"):
        fused(points)


@pytest.mark.parametrize("n", [0, 1, 2000])
def test_fast_painter_equals_the_painter(n):
    from perceive.datasets.waymo.fixtures import camera_calibration
    from perceive.models.inference import FastPointPainter

    config = tiny_config()
    model = build_detector(config=config)
    w, h = config.camera.image_size
    cals = [camera_calibration(name, w, h) for name in config.camera.cameras]
    intr = torch.tensor(np.stack([c.intrinsic for c in cals]), dtype=torch.float32)
    ext = torch.tensor(np.stack([c.extrinsic for c in cals]), dtype=torch.float32)
    torch.manual_seed(n)
    feats = torch.rand(len(cals), config.camera.out_channels, h // 4, w // 4)
    points = cloud(n, config, seed=n, spread=2.0)
    with torch.no_grad():
        ref = model.painter(points[:, :3], feats, intr, ext)
        got = FastPointPainter(model.painter)(points, feats, intr, ext)
    assert got.shape == (config.camera.out_channels + 1, n)
    # A point right on an image edge may flip in float32 (different operation order).
    same = got[-1] == ref[:, -1]
    assert int((~same).sum()) <= max(2, n // 500)
    torch.testing.assert_close(got[:, same], ref[same].t(), atol=1e-5, rtol=1e-5)
    if n == 2000:
        assert 100 < int(got[-1].sum()) < 2000  # some points seen, some not
