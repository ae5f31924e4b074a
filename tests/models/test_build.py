import pytest
import torch

from perceive.models.build import build_detector
from perceive.models.config import tiny_config
from perceive.models.detector import Detector


@pytest.fixture(params=("fusion", "lidar", "camera"))
def model(request):
    torch.manual_seed(0)
    return build_detector(config=tiny_config(), variant=request.param).eval()


def test_build_assembles_the_parts_of_each_variant(model):
    v = model.config.variant
    assert isinstance(model, Detector)
    assert (model.pillars is not None) == (v in ("fusion", "lidar"))
    assert (model.camera is not None) == (v in ("fusion", "camera"))


def test_build_rejects_unknown_variant():
    from perceive.errors import ConfigError

    with pytest.raises(ConfigError):
        build_detector(config=tiny_config(), variant="radar")


def test_fusion_paints_points_unless_configured_off():
    from perceive.models.config import FusionConfig

    cfg = tiny_config()
    painted = build_detector(config=cfg)
    assert painted.painter is not None
    assert painted.pillars.extra_channels == cfg.camera.out_channels + 1
    plain = build_detector(config=cfg.replace(fusion=FusionConfig(bev_channels=8, paint=False)))
    assert plain.painter is None and plain.pillars.extra_channels == 0
    n_in = len(cfg.pillars.point_features) + 5
    assert plain.pillars.layers[0].linear.in_features == n_in
    assert painted.pillars.layers[0].linear.in_features == n_in + cfg.camera.out_channels + 1
    # The images reach the pillar features only through the painter.
    torch.manual_seed(0)
    pts = torch.rand(300, 5) * torch.tensor([20.0, 20.0, 3.0, 1.0, 1.0]) - torch.tensor(
        [10.0, 10.0, 0.0, 0.0, 0.0]
    )
    imgs = torch.randint(0, 255, (1, 2, 32, 64, 3), dtype=torch.uint8)
    from perceive.datasets.waymo.fixtures import camera_calibration

    cals = [camera_calibration(n, 64, 32) for n in cfg.camera.cameras]
    intr = torch.tensor([[list(c.intrinsic) for c in cals]], dtype=torch.float32)
    ext = torch.tensor([[c.extrinsic.tolist() for c in cals]], dtype=torch.float32)
    batch = torch.zeros(300, dtype=torch.int64)
    with torch.no_grad():
        feats = painted.camera(imgs[0]).unsqueeze(0)
        extra = painted.paint(pts, batch, feats, intr, ext)
        assert extra[:, -1].sum() > 0  # some points are seen by a camera
        a = painted.pillars(pts, batch, 1, extra)
        b = painted.pillars(pts, batch, 1, torch.zeros_like(extra))
    assert not torch.equal(a, b)


def test_detector_checks_the_painter_parts():
    from perceive.models.config import FusionConfig

    cfg = tiny_config()
    painted = build_detector(config=cfg)
    plain = build_detector(config=cfg.replace(fusion=FusionConfig(bev_channels=8, paint=False)))
    parts = dict(
        config=cfg,
        camera=painted.camera,
        lift=painted.lift,
        backbone=painted.backbone,
        head=painted.head,
        coder=painted.coder,
    )
    with pytest.raises(ValueError, match="extra channels"):
        Detector(pillars=plain.pillars, painter=painted.painter, **parts)
    with pytest.raises(ValueError, match="needs both"):
        Detector(
            **{**parts, "camera": None, "lift": None},
            pillars=painted.pillars,
            painter=painted.painter,
        )
    with pytest.raises(ValueError, match="pillar encoder built for"):
        painted.pillars(torch.zeros(4, 5), torch.zeros(4, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="contiguous"):
        painted.paint(
            torch.zeros(3, 5),
            torch.tensor([1, 0, 1]),
            torch.zeros(2, 2, 8, 4, 8),
            torch.zeros(2, 2, 9),
            torch.eye(4).expand(2, 2, 4, 4),
        )


def test_the_camera_gate_is_built_for_the_fusion_variant_only():
    from perceive.errors import ConfigError
    from perceive.models.config import FusionConfig

    cfg = tiny_config().replace(fusion=FusionConfig(bev_channels=8, gate=True))
    fused = build_detector(config=cfg)
    assert fused.lift.gate is not None and torch.equal(fused.lift.gate, torch.zeros(1, 8, 1, 1))
    assert build_detector(config=cfg, variant="camera").lift.gate is None
    assert build_detector(config=tiny_config()).lift.gate is None
    with pytest.raises(ConfigError, match="gate"):
        FusionConfig(gate=1)
