import math

import pytest
import torch

from perceive.models.box_coder import BoxCoder, gaussian_radius
from perceive.models.config import GridConfig, HeadConfig

GRID = GridConfig(point_cloud_range=(-16.0, -16.0, -2.0, 16.0, 16.0, 4.0), voxel_size=(0.5, 0.5))


def coder(**head):
    return BoxCoder(
        grid=GRID, head=HeadConfig(max_detections=10, **head), out_stride=2, num_classes=3
    )


def boxes_and_labels():
    boxes = torch.tensor(
        [
            [[3.3, -5.1, 0.8, 4.5, 1.9, 1.6, 0.3], [-10.2, 7.7, 1.0, 0.8, 0.7, 1.8, -2.9]],
            [[0.1, 0.1, 0.5, 1.8, 0.6, 1.7, 3.0], [40.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0]],
        ]
    )
    labels = torch.tensor([[0, 1], [2, -1]])
    return boxes, labels


def test_encode_puts_unit_peaks_at_centre_cells_and_masks_padding_and_outside_boxes():
    c = coder()
    boxes, labels = boxes_and_labels()
    boxes[1, 1, :] = torch.tensor([40.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0])  # outside the grid
    labels[1, 1] = 0
    t = c.encode(boxes, labels)
    assert t.heatmap.shape == (2, 3, 32, 32)
    assert t.mask.tolist() == [[True, True], [True, False]]
    # Head cells: 0.5 m voxels at stride 2 = 1 m; the 32 m grid has 32 x 32 cells.
    col = math.floor((3.3 + 16) / 1.0)
    row = math.floor((-5.1 + 16) / 1.0)
    assert t.indices[0, 0] == row * 32 + col
    assert t.heatmap[0, 0, row, col] == 1.0
    assert (t.heatmap == 1.0).sum() == 3
    assert t.heatmap.max() <= 1.0 and t.heatmap.min() >= 0.0
    # A class channel only has bumps of its own boxes.
    assert t.heatmap[0, 2].max() == 0 and t.heatmap[1, 0].max() == 0
    torch.testing.assert_close(
        t.regression[0, 0, 6:],
        torch.tensor([math.sin(0.3), math.cos(0.3), math.sin(0.6), math.cos(0.6)]),
    )
    assert (t.regression[1, 1] == 0).all()


@pytest.mark.parametrize("heading", ["axis_direction", "sin_cos"])
def test_decode_inverts_encode(heading):
    c = coder(heading=heading)
    boxes, labels = boxes_and_labels()
    labels[1, 1] = -1
    t = c.encode(boxes, labels)
    b, _k, h, w = t.heatmap.shape
    size = HeadConfig(heading=heading).code_size
    assert t.regression.shape[-1] == size
    logits = torch.logit(t.heatmap.clamp(1e-4, 1 - 1e-4))
    reg = torch.zeros(b, size, h * w)
    for i in range(b):
        for j in range(2):
            if t.mask[i, j]:
                reg[i, :, t.indices[i, j]] = t.regression[i, j]
    out_boxes, scores, out_labels = c.decode(logits, reg.reshape(b, size, h, w))
    assert (
        out_boxes.shape == (2, 10, 7)
        and scores.shape == (2, 10)
        and out_labels.dtype == torch.int64
    )
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    for i, n in ((0, 2), (1, 1)):
        top = scores[i] > 0.99
        assert top.sum() == n
        got = out_boxes[i][top]
        want = boxes[i][labels[i] >= 0]
        order = torch.argsort(got[:, 0])
        worder = torch.argsort(want[:, 0])
        torch.testing.assert_close(got[order], want[worder], atol=1e-4, rtol=1e-4)
        assert sorted(out_labels[i][top].tolist()) == sorted(labels[i][labels[i] >= 0].tolist())


def test_axis_code_keeps_the_axis_when_the_direction_is_uncertain():
    # A model torn between t and t + pi regresses a short (sin t, cos t) vector; the
    # doubled angle still holds the axis, and the short vector's sign picks the end.
    c = coder(heading="axis_direction")
    cell = torch.tensor([[0, 1, 2, 3]])
    t = torch.tensor([0.7, 0.7, -2.5, 1.6])
    weak = torch.tensor([0.05, -0.05, 0.02, -0.01])  # agreement with t, times a sign
    code = torch.zeros(1, 10, 4)
    code[0, 6], code[0, 7] = weak * torch.sin(t), weak * torch.cos(t)
    code[0, 8], code[0, 9] = torch.sin(2 * t), torch.cos(2 * t)
    got = c.boxes_from_codes(code, cell)[0, :, 6]
    want = torch.where(weak > 0, t, t + math.pi)
    diff = torch.remainder(got - want + math.pi, 2 * math.pi) - math.pi
    assert diff.abs().max() < 1e-5
    assert got.abs().max() <= math.pi + 1e-6


def test_decode_keeps_only_local_maxima():
    c = coder(nms_kernel=3)
    logits = torch.full((1, 3, 32, 32), -10.0)
    logits[0, 1, 5, 5] = 3.0
    logits[0, 1, 5, 6] = 2.0  # neighbour of a higher peak: suppressed
    logits[0, 2, 10, 10] = 1.0
    _, scores, labels = c.decode(logits, torch.zeros(1, c.code_size, 32, 32))
    assert labels[0, :2].tolist() == [1, 2]
    assert scores[0, 2] < 1e-3


def test_gaussian_radius_grows_with_size_and_is_positive():
    small = gaussian_radius(torch.tensor(2.0), torch.tensor(1.0), 0.1)
    big = gaussian_radius(torch.tensor(8.0), torch.tensor(4.0), 0.1)
    assert 0 < small < big
