import pytest
import torch

from perceive.models.box_coder import BoxCoder
from perceive.models.config import GridConfig, HeadConfig, LossConfig
from perceive.models.loss import DetectionLoss, focal_heatmap_loss

GRID = GridConfig(point_cloud_range=(-8.0, -8.0, -2.0, 8.0, 8.0, 4.0), voxel_size=(1.0, 1.0))


def targets():
    coder = BoxCoder(grid=GRID, head=HeadConfig(), out_stride=1, num_classes=2)
    boxes = torch.tensor([[[1.2, -3.4, 0.9, 4.0, 2.0, 1.5, 0.4], [0.0] * 7]])
    labels = torch.tensor([[1, -1]])
    return coder.encode(boxes, labels)


def test_focal_loss_prefers_the_target_heatmap():
    t = targets()
    good = torch.logit(t.heatmap.clamp(1e-3, 1 - 1e-3))
    flat = torch.full_like(t.heatmap, -2.0)
    wrong = torch.roll(good, shifts=3, dims=-1)
    lg, lf, lw = (focal_heatmap_loss(x, t.heatmap) for x in (good, flat, wrong))
    assert lg < lf and lg < lw
    assert torch.isfinite(lg)


def test_focal_loss_without_objects_is_finite_and_falls_with_lower_scores():
    target = torch.zeros(1, 2, 8, 8)
    assert focal_heatmap_loss(torch.full_like(target, -5.0), target) < focal_heatmap_loss(
        torch.full_like(target, 0.0), target
    )


def test_regression_loss_is_zero_at_the_targets_and_counts_only_real_boxes():
    t = targets()
    loss = DetectionLoss(config=LossConfig())
    size = HeadConfig().code_size
    reg = torch.zeros(1, size, 16, 16)
    reg.view(1, size, -1)[0, :, t.indices[0, 0]] = t.regression[0, 0]
    out = loss(torch.zeros(1, 2, 16, 16), reg, t)
    assert out.regression == 0
    assert out.num_boxes == 1
    reg2 = reg.clone()
    reg2.view(1, size, -1)[0, 2, t.indices[0, 0]] += 0.5  # z off by 0.5
    assert torch.isclose(loss(torch.zeros(1, 2, 16, 16), reg2, t).regression, torch.tensor(0.5))
    # sin 2t takes the weight of sin t.
    weighted = DetectionLoss(config=LossConfig(code_weights=(1.0,) * 6 + (3.0, 1.0)))
    reg3 = reg.clone()
    reg3.view(1, size, -1)[0, 8, t.indices[0, 0]] += 0.5
    assert torch.isclose(weighted(torch.zeros(1, 2, 16, 16), reg3, t).regression, torch.tensor(1.5))
    with pytest.raises(ValueError, match="disagree"):
        loss(torch.zeros(1, 2, 16, 16), reg[:, :8], t)


def test_total_is_the_weighted_sum_and_differentiable():
    t = targets()
    cfg = LossConfig(heatmap_weight=2.0, regression_weight=0.5)
    hm = torch.randn(1, 2, 16, 16, requires_grad=True)
    reg = torch.randn(1, HeadConfig().code_size, 16, 16, requires_grad=True)
    out = DetectionLoss(config=cfg)(hm, reg, t)
    torch.testing.assert_close(out.total, 2.0 * out.heatmap + 0.5 * out.regression)
    out.total.backward()
    assert hm.grad.abs().sum() > 0 and reg.grad.abs().sum() > 0
