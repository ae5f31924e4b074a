import torch

from perceive.models.config import GridConfig, PillarConfig
from perceive.models.pillars import PillarEncoder

GRID = GridConfig(point_cloud_range=(-4.0, -4.0, -2.0, 4.0, 4.0, 2.0), voxel_size=(1.0, 1.0))


def make(max_points=1000, seed=0):
    torch.manual_seed(seed)
    return PillarEncoder(
        grid=GRID, config=PillarConfig(max_points=max_points, channels=(8, 6))
    ).eval()


def pts(xyz):
    xyz = torch.as_tensor(xyz, dtype=torch.float32).reshape(-1, 3)
    return torch.cat([xyz, torch.rand(len(xyz), 2)], dim=1)


def test_features_land_in_the_cell_of_their_points():
    enc = make()
    p = pts([[0.5, 0.5, 0.0], [0.6, 0.4, 1.0], [-3.5, 2.5, 0.0]])
    bev = enc(p, torch.zeros(3, dtype=torch.int64), 1)
    assert bev.shape == (1, 6, 8, 8)
    occupied = (bev[0].abs().sum(0) > 0).nonzero().tolist()
    # row = floor((y + 4) / 1), col = floor((x + 4) / 1)
    assert sorted(occupied) == sorted([[4, 4], [6, 0]])


def test_points_outside_range_or_non_finite_are_ignored():
    enc = make()
    inside = pts([[0.5, 0.5, 0.0], [1.5, -2.5, 0.5]])
    outside = pts([[10.0, 0.0, 0.0], [0.5, 0.5, 5.0], [-4.5, 0.0, 0.0], [4.0, 0.0, 0.0]])
    bad = pts([[float("nan"), 0.5, 0.0], [0.5, float("inf"), 0.0]])
    both = torch.cat([outside[:2], inside[:1], bad, outside[2:], inside[1:]])
    ref = enc(inside, torch.zeros(2, dtype=torch.int64), 1)
    got = enc(both, torch.zeros(len(both), dtype=torch.int64), 1)
    torch.testing.assert_close(got, ref)


def test_zero_points_give_an_empty_map():
    enc = make()
    bev = enc(torch.zeros(0, 5), torch.zeros(0, dtype=torch.int64), 2)
    assert bev.shape == (2, 6, 8, 8)
    assert (bev == 0).all()


def test_max_points_keeps_the_first_in_range_points_of_each_frame():
    enc = make(max_points=3)
    torch.manual_seed(1)
    a = pts(torch.rand(6, 3) * 6 - 3)
    b = pts(torch.rand(5, 3) * 6 - 3)
    far = pts([[20.0, 0.0, 0.0]])
    # frame 0: an out-of-range point first, it must not count against the budget.
    cat = torch.cat([far, a, b])
    batch = torch.tensor([0] * 7 + [1] * 5)
    got = enc(cat, batch, 2)
    ref0 = enc(a[:3], torch.zeros(3, dtype=torch.int64), 1)
    ref1 = enc(b[:3], torch.zeros(3, dtype=torch.int64), 1)
    torch.testing.assert_close(got, torch.cat([ref0, ref1]))


def test_batched_equals_single_frames_and_point_order_within_a_frame_does_not_matter():
    enc = make()
    torch.manual_seed(2)
    a = pts(torch.rand(50, 3) * 8 - 4)
    b = pts(torch.rand(30, 3) * 8 - 4)
    got = enc(torch.cat([a, b]), torch.tensor([0] * 50 + [1] * 30), 2)
    ref_a = enc(a[torch.randperm(50)], torch.zeros(50, dtype=torch.int64), 1)
    ref_b = enc(b, torch.zeros(30, dtype=torch.int64), 1)
    torch.testing.assert_close(got, torch.cat([ref_a, ref_b]), rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_point_layers():
    enc = make().train()
    p = pts(torch.rand(20, 3) * 8 - 4)
    enc(p, torch.zeros(20, dtype=torch.int64), 1).sum().backward()
    assert all(prm.grad is not None and prm.grad.abs().sum() > 0 for prm in enc.parameters())


def test_select_points_keeps_the_first_in_range_points_in_order():
    enc = make(max_points=4)
    p = pts([[9.0, 0, 0], [0.5, 0.5, 0], [1.5, 0.5, 0], [0, 9.0, 0], [2.5, 0.5, 0], [3.5, 0.5, 0]])
    p = torch.cat([p, pts([[-0.5, 0.5, 0], [float("nan"), 0, 0]])])
    got = enc.select_points(p)
    torch.testing.assert_close(got, p[[1, 2, 4, 5]])
    few = enc.select_points(p[:3])  # fewer in range than the cap: in-range first, then the rest
    torch.testing.assert_close(few, p[[1, 2, 0]])
    assert enc.select_points(p[:0]).shape == (0, 5)


def test_selection_does_not_change_the_map():
    enc = make(max_points=30)
    torch.manual_seed(3)
    p = pts(torch.rand(100, 3) * 12 - 6)
    sel = enc.select_points(p)
    a = enc(p, torch.zeros(len(p), dtype=torch.int64), 1)
    b = enc(sel, torch.zeros(len(sel), dtype=torch.int64), 1)
    torch.testing.assert_close(a, b)
