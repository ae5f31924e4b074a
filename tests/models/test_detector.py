import numpy as np
import pytest
import torch

from perceive.models.build import build_detector, build_loss
from perceive.models.config import tiny_config

VARIANTS = ("fusion", "lidar", "camera")


def inputs(cfg, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.tensor(cfg.grid.point_cloud_range)
    pts = torch.rand(n, 5, generator=g)
    pts[:, :3] = r[:3] + pts[:, :3] * (r[3:] - r[:3])
    w, h = cfg.camera.image_size
    c = len(cfg.camera.cameras)
    images = torch.randint(0, 256, (c, h, w, 3), generator=g, dtype=torch.uint8)
    intr = torch.tensor([60.0, 60.0, w / 2, h / 2, 0.0, 0.0, 0.0, 0.0, 0.0]).repeat(c, 1)
    ext = torch.eye(4).repeat(c, 1, 1)
    ext[1, :2, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    return pts, images, intr, ext


@pytest.fixture(params=VARIANTS)
def model(request):
    torch.manual_seed(0)
    return build_detector(config=tiny_config(), variant=request.param).eval()


def test_forward_signature_shapes_and_dtypes(model):
    cfg = model.config
    with torch.no_grad():
        boxes, scores, labels = model(*inputs(cfg))
    k = cfg.head.max_detections
    assert boxes.shape == (k, 7) and boxes.dtype == torch.float32
    assert scores.shape == (k,) and labels.shape == (k,) and labels.dtype == torch.int64
    assert torch.all(scores[:-1] >= scores[1:])
    assert ((labels >= 0) & (labels < cfg.num_classes)).all()
    assert (boxes[:, 3:6] > 0).all() and torch.isfinite(boxes).all()


def test_zero_points_are_accepted(model):
    pts, images, intr, ext = inputs(model.config)
    with torch.no_grad():
        boxes, scores, _ = model(pts[:0], images, intr, ext)
    assert torch.isfinite(boxes).all() and torch.isfinite(scores).all()


def test_the_variants_ignore_the_inputs_they_do_not_use():
    cfg = tiny_config()
    pts, images, intr, ext = inputs(cfg)
    lidar = build_detector(config=cfg, variant="lidar").eval()
    camera = build_detector(config=cfg, variant="camera").eval()
    with torch.no_grad():
        a = lidar(pts, images, intr, ext)
        b = lidar(pts, 255 - images, intr, ext)
        c = camera(pts, images, intr, ext)
        d = camera(pts[:10] * 0.5, images, intr, ext)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)
    for x, y in zip(c, d, strict=True):
        torch.testing.assert_close(x, y)


def test_batched_forward_equals_single_frames(model):
    cfg = model.config
    a, b = inputs(cfg, 200, seed=1), inputs(cfg, 120, seed=2)
    points = torch.cat([a[0], b[0]])
    point_batch = torch.tensor([0] * 200 + [1] * 120)
    stacked = [torch.stack([x, y]) for x, y in zip(a[1:], b[1:], strict=True)]
    with torch.no_grad():
        hm, reg = model.forward_batch(points, point_batch, *stacked)
        boxes, scores, _labels = model.coder.decode(hm, reg)
        for i, inp in enumerate((a, b)):
            one = model(*inp)
            torch.testing.assert_close(scores[i], one[1], atol=1e-5, rtol=1e-5)
            np.testing.assert_allclose(boxes[i][:3].numpy(), one[0][:3].numpy(), atol=1e-4)


def test_one_optimizer_step_lowers_the_loss_on_a_fixed_batch(model):
    torch.manual_seed(0)
    cfg = model.config
    model.train()
    loss_fn = build_loss(config=cfg)
    pts, images, intr, ext = inputs(cfg, 400)
    boxes = torch.tensor(
        [[[2.0, 3.0, 0.5, 4.0, 2.0, 1.5, 0.3], [-5.0, -4.0, 0.8, 0.8, 0.8, 1.7, 1.0]]]
    )
    labels = torch.tensor([[0, 1]])
    targets = model.coder.encode(boxes, labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    args = (pts, torch.zeros(len(pts), dtype=torch.int64), images[None], intr[None], ext[None])
    losses = []
    for _ in range(5):
        hm, reg = model.forward_batch(*args)
        out = loss_fn(hm, reg, targets)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        losses.append(float(out.total.detach()))
    assert losses[-1] < losses[0]


def test_select_batch_points_matches_the_single_frame_selection(model):
    cfg = model.config
    a, b = inputs(cfg, 900, seed=3), inputs(cfg, 50, seed=4)
    points = torch.cat([a[0], b[0]])
    point_batch = torch.tensor([0] * 900 + [1] * 50)
    kept, kept_batch = model.select_batch_points(points, point_batch, 2)
    if model.pillars is None:
        assert kept is points
        return
    torch.testing.assert_close(kept[kept_batch == 0], model.pillars.select_points(a[0]))
    torch.testing.assert_close(kept[kept_batch == 1], model.pillars.select_points(b[0]))
    assert (kept_batch == 0).sum() == min(900, cfg.pillars.max_points)
