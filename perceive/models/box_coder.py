"""Boxes <-> CenterPoint heatmap and regression targets, and decoding inside the model.

Heatmap cell ``(row, col)`` of the head grid covers
``x in [x_min + col * cx, x_min + (col + 1) * cx)``, ``y in [y_min + row * cy, ...)``
(``cx, cy`` the head cell size, metres). A box is represented at the cell holding its
centre by the regression code

``dx, dy`` (centre offset in the cell, cells, in [0, 1)), ``z`` (centre height,
metres), ``log l, log w, log h`` (metres), ``sin(heading), cos(heading)``.

Decoding keeps local heatmap maxima (max pooling), takes the top ``max_detections``
scores over classes and cells with ``topk`` and gathers their codes: no Python
loops and no data-dependent shapes, so it runs inside the exported graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from perceive.models.config import GridConfig, HeadConfig

#: Bounds of the decoded log sizes (exp of them is 7 mm .. 150 m): keeps exp finite.
LOG_SIZE_RANGE = (-5.0, 5.0)


@dataclass(frozen=True)
class Targets:
    """Training targets of a batch (all tensors, on the model's device)."""

    heatmap: torch.Tensor
    """(B, K, H, W) float32 in [0, 1]: 1 at box centres, Gaussian bumps around."""
    indices: torch.Tensor
    """(B, M) int64 flat cell index ``row * W + col`` of each box (0 where masked)."""
    mask: torch.Tensor
    """(B, M) bool: the box is real and its centre is on the grid."""
    regression: torch.Tensor
    """(B, M, S) float32 regression code of each box (``S = HeadConfig.code_size``)."""


def gaussian_radius(length: torch.Tensor, width: torch.Tensor, min_overlap: float) -> torch.Tensor:
    """CenterNet's Gaussian radius: the largest corner shift keeping IoU >= ``min_overlap``.

    Args:
        length, width: (...) box extents in heatmap cells.
        min_overlap: IoU in (0, 1).

    Returns:
        (...) float32 radius in cells (the minimum over CornerNet's three cases).
    """
    h, w, o = length, width, min_overlap
    b1 = h + w
    c1 = w * h * (1 - o) / (1 + o)
    r1 = (b1 + torch.sqrt((b1 * b1 - 4 * c1).clamp(min=0))) / 2
    b2 = 2 * (h + w)
    c2 = (1 - o) * w * h
    r2 = (b2 + torch.sqrt((b2 * b2 - 16 * c2).clamp(min=0))) / 2
    a3 = 4 * o
    b3 = -2 * o * (h + w)
    c3 = (o - 1) * w * h
    r3 = (b3 + torch.sqrt((b3 * b3 - 4 * a3 * c3).clamp(min=0))) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


class BoxCoder(nn.Module):
    """Encodes training targets and decodes head outputs to boxes.

    Args:
        grid: the pillar grid (range).
        head: decoding and target parameters.
        out_stride: heatmap stride relative to the pillar grid.
        num_classes: heatmap channels K.
    """

    def __init__(
        self, *, grid: GridConfig, head: HeadConfig, out_stride: int, num_classes: int
    ) -> None:
        super().__init__()
        self.head = head
        self.num_classes = num_classes
        ny, nx = grid.shape
        self.h, self.w = ny // out_stride, nx // out_stride
        r = grid.point_cloud_range
        self.x_min, self.y_min = float(r[0]), float(r[1])
        self.cell_x = grid.voxel_size[0] * out_stride
        self.cell_y = grid.voxel_size[1] * out_stride
        self.axis_direction = head.heading == "axis_direction"
        self.code_size = head.code_size

    def encode(self, boxes: torch.Tensor, labels: torch.Tensor) -> Targets:
        """Targets of a padded batch of boxes.

        Args:
            boxes: (B, M, 7) float32 ``x, y, z, l, w, h, heading``, vehicle frame, metres, radians.
            labels: (B, M) int64 class index, -1 for padding.

        Returns:
            :class:`Targets`.
        """
        b, m = labels.shape
        k, h, w = self.num_classes, self.h, self.w
        gx = (boxes[..., 0] - self.x_min) / self.cell_x
        gy = (boxes[..., 1] - self.y_min) / self.cell_y
        col = torch.floor(gx)
        row = torch.floor(gy)
        mask = (labels >= 0) & (labels < k) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        mask = mask & torch.isfinite(boxes).all(dim=-1) & (boxes[..., 3:6] > 0).all(dim=-1)
        col_i = torch.where(mask, col, torch.zeros_like(col)).to(torch.int64)
        row_i = torch.where(mask, row, torch.zeros_like(row)).to(torch.int64)
        indices = row_i * w + col_i
        size = boxes[..., 3:6].clamp(min=1e-3)
        heading = boxes[..., 6]
        code = torch.stack(
            [
                gx - col,
                gy - row,
                boxes[..., 2],
                *torch.log(size).unbind(-1),
                torch.sin(heading),
                torch.cos(heading),
                *((torch.sin(2 * heading), torch.cos(2 * heading)) if self.axis_direction else ()),
            ],
            dim=-1,
        )
        code = torch.where(mask.unsqueeze(-1), code, torch.zeros_like(code))
        # Gaussian bumps: separable in x and y, then a max over boxes per class.
        radius = gaussian_radius(
            size[..., 0] / self.cell_x, size[..., 1] / self.cell_y, self.head.gaussian_overlap
        )
        radius = torch.floor(radius).clamp(min=self.head.min_radius)
        sigma = (2 * radius + 1) / 6
        xs = torch.arange(w, device=boxes.device, dtype=boxes.dtype)
        ys = torch.arange(h, device=boxes.device, dtype=boxes.dtype)
        dx = xs.view(1, 1, w) - col_i.unsqueeze(-1).to(boxes.dtype)
        dy = ys.view(1, 1, h) - row_i.unsqueeze(-1).to(boxes.dtype)
        s2 = (2 * sigma * sigma).unsqueeze(-1)
        ex = torch.exp(-dx * dx / s2) * (dx.abs() <= radius.unsqueeze(-1))
        ey = torch.exp(-dy * dy / s2) * (dy.abs() <= radius.unsqueeze(-1))
        bump = ey.unsqueeze(-1) * ex.unsqueeze(-2)  # (B, M, H, W)
        bump = bump * mask.view(b, m, 1, 1)
        cls = torch.where(mask, labels, torch.full_like(labels, k))
        heat = boxes.new_zeros(b, k + 1, h * w)
        heat = heat.scatter_reduce(
            1,
            cls.view(b, m, 1).expand(b, m, h * w),
            bump.reshape(b, m, h * w),
            reduce="amax",
            include_self=True,
        )
        return Targets(
            heatmap=heat[:, :k].reshape(b, k, h, w), indices=indices, mask=mask, regression=code
        )

    def decode(
        self, heatmap: torch.Tensor, regression: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes of the highest local heatmap maxima.

        Args:
            heatmap: (B, K, H, W) logits.
            regression: (B, S, H, W) codes (``S = HeadConfig.code_size``).

        Returns:
            ``boxes`` (B, D, 7) float32 ``x, y, z, l, w, h, heading`` (vehicle frame, metres,
            radians in [-pi, pi]), ``scores`` (B, D) float32 in [0, 1] sorted descending and
            ``labels`` (B, D) int64 class index, with ``D = min(max_detections, K * H * W)``.
        """
        b = heatmap.shape[0]
        scores, labels, cell = self.peaks(heatmap)
        d = cell.shape[1]
        code = torch.gather(
            regression.reshape(b, self.code_size, -1),
            2,
            cell.unsqueeze(1).expand(b, self.code_size, d),
        )
        return self.boxes_from_codes(code, cell), scores, labels

    def peaks(self, heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The highest local maxima of the heatmap (the first half of :meth:`decode`).

        Args:
            heatmap: (B, K, H, W) logits.

        Returns:
            ``scores`` (B, D) float32 sorted descending, ``labels`` (B, D) int64 class index and
            ``cell`` (B, D) int64 flat cell index ``row * W + col``.
        """
        b, k, h, w = heatmap.shape
        prob = torch.sigmoid(heatmap)
        pad = self.head.nms_kernel // 2
        peak = functional.max_pool2d(prob, kernel_size=self.head.nms_kernel, stride=1, padding=pad)
        prob = torch.where(prob == peak, prob, 0.0)
        d = min(self.head.max_detections, k * h * w)
        scores, index = torch.topk(prob.reshape(b, k * h * w), d, dim=1, largest=True, sorted=True)
        labels = index // (h * w)  # integer ops in an exported graph (float16 variants too)
        cell = index - labels * (h * w)
        return scores, labels, cell

    def boxes_from_codes(self, code: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Boxes from the regression codes at heatmap cells (the second half of :meth:`decode`).

        Args:
            code: (B, S, D) float32 regression codes of the cells (``S = HeadConfig.code_size``).
            cell: (B, D) int64 flat cell index ``row * W + col``.

        Returns:
            (B, D, 7) float32 ``x, y, z, l, w, h, heading``, vehicle frame, metres, radians.
        """
        row = cell // self.w
        col = cell - row * self.w
        x = self.x_min + (col.to(code.dtype) + code[:, 0]) * self.cell_x
        y = self.y_min + (row.to(code.dtype) + code[:, 1]) * self.cell_y
        size = torch.exp(code[:, 3:6].clamp(*LOG_SIZE_RANGE))
        if self.axis_direction:
            axis = 0.5 * torch.atan2(code[:, 8], code[:, 9])  # [-pi/2, pi/2]
            agree = torch.cos(axis) * code[:, 7] + torch.sin(axis) * code[:, 6]
            turned = torch.where(axis > 0, axis - math.pi, axis + math.pi)
            heading = torch.where(agree < 0, turned, axis)
        else:
            heading = torch.atan2(code[:, 6], code[:, 7])
        return torch.stack([x, y, code[:, 2], size[:, 0], size[:, 1], size[:, 2], heading], dim=-1)
