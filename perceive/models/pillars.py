"""LiDAR points -> a bird's-eye-view pillar feature map, with standard tensor ops only.

Every point falls into one pillar (a BEV grid cell). A small per-point network
encodes each point with its offsets to the pillar centre and to the mean of the
pillar's points, and the pillar's feature is the channel-wise max over its points
(PointPillars). The grouping is a scatter with computed flat indices
(``scatter_add`` for the means, ``scatter_reduce(amax)`` for the max), so the same
code runs in training, in eager inference and inside one ONNX graph
(ScatterElements / GatherElements), for any number of points including zero.

Points outside the grid's range, and all points after the first ``max_points``
in-range points of a frame, are routed to a dummy cell that is dropped: masking
instead of boolean indexing keeps shapes static.

This is the training (and eager inference) formulation. The ONNX export computes the same
function with :class:`perceive.models.inference.FusedPillarEncoder` (the layer split into a
per-point product and a per-pillar term, one scatter-max), which is much cheaper in a
graph runtime.
"""

from __future__ import annotations

import torch
from torch import nn

from perceive.models.config import GridConfig, PillarConfig

#: Columns of the decorated per-point input: the raw features then
#: ``dx_centre, dy_centre, dx_mean, dy_mean, dz_mean``.
NUM_DECORATIONS = 5


class PointLayer(nn.Module):
    """Linear -> ReLU on every point.

    No normalisation per point: batch statistics would mix in padding and out-of-range
    points, and a LayerNorm costs as much as the layer itself on 10^5 points. The
    inputs are scaled to order one instead (see :class:`PillarEncoder`), and the BEV
    backbone normalises the scattered map.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(P, in) -> (P, out) float32, non-negative."""
        return torch.relu(self.linear(x))


class PillarEncoder(nn.Module):
    """Points of a batch of frames -> (B, C, ny, nx) BEV features.

    Args:
        grid: the BEV grid (range, voxel size).
        config: per-point features, ``max_points`` and layer widths.
        extra_channels: width of per-point inputs computed elsewhere and passed to
            :meth:`forward` (the camera features of painted points), 0 for none. They are
            the last input columns of the first layer, after the decorations, unscaled.
    """

    def __init__(self, *, grid: GridConfig, config: PillarConfig, extra_channels: int = 0) -> None:
        super().__init__()
        if extra_channels < 0:
            raise ValueError(f"extra_channels must be >= 0, got {extra_channels}")
        self.grid = grid
        self.config = config
        self.extra_channels = extra_channels
        self.ny, self.nx = grid.shape
        r = grid.point_cloud_range
        self.register_buffer(
            "range_min", torch.tensor(r[:3], dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "range_max", torch.tensor(r[3:], dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "voxel", torch.tensor(grid.voxel_size, dtype=torch.float32), persistent=False
        )
        # Scale of each input column so that the network sees numbers of order one.
        half = [(r[3] - r[0]) / 2, (r[4] - r[1]) / 2, (r[5] - r[2]) / 2]
        scale = []
        for name in config.point_features:
            scale.append({"x": 1 / half[0], "y": 1 / half[1], "z": 1 / half[2]}.get(name, 1.0))
        vx, vy = grid.voxel_size
        scale += [1 / vx, 1 / vy, 1 / vx, 1 / vy, 1 / half[2]]
        scale += [1.0] * extra_channels
        self.register_buffer(
            "input_scale", torch.tensor(scale, dtype=torch.float32), persistent=False
        )
        # Intensity is unbounded (Waymo: up to tens of thousands): squash it with tanh.
        squash = [n == "intensity" for n in config.point_features]
        self.register_buffer("squash", torch.tensor(squash, dtype=torch.bool), persistent=False)
        # Layers after the first see [point feature, its pillar's max] (2x the previous width).
        in_ch = len(config.point_features) + NUM_DECORATIONS + extra_channels
        layers = []
        for c in config.channels:
            layers.append(PointLayer(in_ch, c))
            in_ch = 2 * c
        self.layers = nn.ModuleList(layers)
        self.out_channels = config.channels[-1]

    def select_points(self, points: torch.Tensor) -> torch.Tensor:
        """The first ``max_points`` points of one frame inside the range, in input order.

        Compacts a frame's cloud before the per-point network, so that its cost is bounded
        by ``max_points`` whatever N is: a top-k of distinct keys (index, or index + N for
        points outside the range), exported as one ONNX ``TopK`` with a dynamic k.

        Args:
            points: (N, F) float32 points of one frame, N may be 0.

        Returns:
            (min(N, max_points), F) float32; in-range points first. When fewer than
            ``max_points`` points are in range, out-of-range ones follow and are masked later.
        """
        n = points.shape[0]
        inside = self.inside(points)
        order = torch.arange(n, device=points.device)
        key = torch.where(inside, order, order + n)
        k = torch.sym_min(n, self.config.max_points)
        _, index = torch.topk(key, k, largest=False, sorted=True)
        return points.index_select(0, index)

    def inside(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the point is finite and inside the range (min inclusive, max exclusive)."""
        xyz = points[:, :3]
        inside = ((xyz >= self.range_min) & (xyz < self.range_max)).all(dim=1)
        return inside & torch.isfinite(points).all(dim=1)

    def point_cells(
        self, points: torch.Tensor, point_batch: torch.Tensor, batch_size: int
    ) -> torch.Tensor:
        """Flat pillar index of every point, or the dummy index ``batch_size * ny * nx``.

        Args:
            points: (P, F) float32, columns as ``config.point_features``; vehicle frame, metres.
            point_batch: (P,) int64 frame index of each point; points of a frame are contiguous.
            batch_size: number of frames B.

        Returns:
            (P,) int64 in ``[0, B * ny * nx]``: ``b * ny * nx + row * nx + col`` for a kept point.
        """
        xyz = points[:, :3]
        inside = self.inside(points)
        # Rank of each in-range point within its frame (1-based): keep the first max_points.
        valid = inside.to(torch.int64)
        running = torch.cumsum(valid, dim=0)
        per_frame = torch.zeros(batch_size, dtype=torch.int64, device=points.device)
        per_frame = per_frame.scatter_add(0, point_batch, valid)
        before = torch.cumsum(per_frame, dim=0) - per_frame
        rank = running - before.gather(0, point_batch)
        keep = inside & (rank <= self.config.max_points)
        safe = torch.where(keep.unsqueeze(1), xyz[:, :2], self.range_min[:2])
        col = torch.floor((safe[:, 0] - self.range_min[0]) / self.voxel[0]).to(torch.int64)
        row = torch.floor((safe[:, 1] - self.range_min[1]) / self.voxel[1]).to(torch.int64)
        col = col.clamp(0, self.nx - 1)
        row = row.clamp(0, self.ny - 1)
        flat = point_batch * (self.ny * self.nx) + row * self.nx + col
        dummy = torch.full_like(flat, batch_size * self.ny * self.nx)
        return torch.where(keep, flat, dummy)

    def forward(
        self,
        points: torch.Tensor,
        point_batch: torch.Tensor,
        batch_size: int,
        extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode and scatter.

        Args:
            points: (P, F) float32 points of all frames, vehicle frame, metres; P may be 0.
            point_batch: (P,) int64 frame index of each point (points of a frame contiguous).
            batch_size: number of frames B.
            extra: (P, extra_channels) float32 further inputs of every point (finite), or
                None when ``extra_channels`` is 0.

        Returns:
            (B, C, ny, nx) float32 BEV features (zero in empty pillars).
        """
        if (extra is None) != (self.extra_channels == 0) or (
            extra is not None and extra.shape != (points.shape[0], self.extra_channels)
        ):
            got = None if extra is None else tuple(extra.shape)
            raise ValueError(
                f"pillar encoder built for {self.extra_channels} extra channels per point "
                f"({points.shape[0]} points) got extra inputs of shape {got}"
            )
        cells = self.point_cells(points, point_batch, batch_size)
        num_cells = batch_size * self.ny * self.nx + 1
        pts = torch.where(torch.isfinite(points), points, torch.zeros_like(points))
        xyz = pts[:, :3]
        # Pillar means of x, y, z (scatter_add of coordinates and counts).
        ones = torch.ones_like(xyz[:, :1])
        sums = torch.zeros(num_cells, 4, dtype=pts.dtype, device=pts.device)
        sums = sums.scatter_add(0, cells.unsqueeze(1).expand(-1, 4), torch.cat([xyz, ones], dim=1))
        means = sums[:, :3] / sums[:, 3:].clamp(min=1.0)
        point_mean = means.index_select(0, cells)
        # Pillar centre of each point.
        local = cells % (self.ny * self.nx)
        col = (local % self.nx).to(pts.dtype)
        row = torch.div(local, self.nx, rounding_mode="floor").to(pts.dtype)
        cx = self.range_min[0] + (col + 0.5) * self.voxel[0]
        cy = self.range_min[1] + (row + 0.5) * self.voxel[1]
        feats = torch.where(self.squash, torch.tanh(pts), pts)
        deco = torch.stack(
            [xyz[:, 0] - cx, xyz[:, 1] - cy, *(xyz - point_mean).unbind(dim=1)], dim=1
        )
        columns = [feats, deco] if extra is None else [feats, deco, extra]
        x = torch.cat(columns, dim=1) * self.input_scale
        index = cells.unsqueeze(1)
        pillar = x.new_zeros(0)
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = torch.cat([x, pillar.index_select(0, cells)], dim=1)
            x = layer(x)
            pillar = x.new_zeros(num_cells, x.shape[1])
            pillar = pillar.scatter_reduce(
                0, index.expand(-1, x.shape[1]), x, reduce="amax", include_self=True
            )
        bev = pillar[:-1].reshape(batch_size, self.ny, self.nx, self.out_channels)
        return bev.permute(0, 3, 1, 2).contiguous()
