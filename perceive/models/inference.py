"""The trained detector re-expressed for an inference graph: the same function, cheaper ops.

:class:`InferenceDetector` wraps a trained :class:`~perceive.models.detector.Detector`
(same weights, nothing retrained) and computes its single-frame
:meth:`~perceive.models.detector.Detector.forward` with a formulation that costs much less
in an ONNX runtime, where every operator is a separate pass over memory. It is what
:func:`perceive.deploy.export.export_onnx` exports; the eager model used for training and
PyTorch inference is left as it is. The results are equal up to float32 rounding (the
export parity tests hold them to the same tolerance as before).

The rewrites, each exact in real arithmetic:

* **Pillars** (:class:`FusedPillarEncoder`). The per-point layer is affine in the point's
  features and its decorations (offsets to the pillar centre and to the pillar mean), and
  the decorations are the point's offset to its pillar centre minus per-pillar constants.
  So its pre-activation is ``P @ g_point + t_pillar`` with ``g`` the point's offset to the
  pillar centre, z and (squashed) features, and ``t`` a per-pillar term (bias, centre,
  mean). ReLU and adding a per-pillar constant are monotonic, and so is float rounding, so
  ``max_p relu(P g_p + t) == relu(max_p (P g_p) + t)``: one scatter-max of ``P g`` in a
  channels-first layout, then per-pillar work only; no per-point gather of the means, no
  per-point decorations, no sort to compact the cloud (points past the first ``max_points``
  in range are masked out instead, which gives the same pillars).
* **Camera lift** (:class:`FastCameraLift`). The sample points are a grid (heights x rows x
  columns), so their camera coordinates are sums of three small per-axis terms instead of a
  matrix product over all samples. Only the (camera, sample) pairs the camera sees are
  sampled (a weight-0 pair adds exactly zero to the eager model's sum): they are gathered
  and sampled in one ``grid_sample`` on the camera maps stacked into one image (a zero row
  between maps keeps the bilinear taps at the borders zero), then summed per sample with a
  scatter-add; about an eighth of the bilinear reads for Waymo's five cameras.
* **Point painting** (:class:`FastPointPainter`). The same sampling as the lift's, for the
  LiDAR points: camera coordinates channels-first (one batched matrix product), and only
  the (camera, point) pairs a camera sees sampled, in one ``grid_sample`` of the stacked
  maps, then summed per point with a scatter-add. Most points are seen by one camera or
  none, so this reads about a fifth of the eager model's bilinear taps and never builds
  its (cameras, features, points) tensor.
* **Image normalisation** (:class:`InferenceCameraBackbone`). ``(x - mean) / std`` is folded
  into the first convolution (with its batch norm); its zero padding of the normalised image
  becomes padding of the raw image with the mean, so borders are unchanged.
* **Head** (:class:`InferenceHead`). The regression branch is only needed at the
  ``max_detections`` decoded cells: its 3x3 convolution (batch norm folded) and 1x1
  convolution run on the gathered 3x3 neighbourhoods of those cells instead of the whole
  grid. The heatmap branch runs in full (the peaks need it).

Single frame only (``B = 1``), like the exported graph.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from perceive.models.box_coder import BoxCoder
from perceive.models.camera_backbone import CameraBackbone
from perceive.models.detector import Detector
from perceive.models.fusion import CameraToBEV, PointPainter, distort_to_pixels
from perceive.models.head import CenterHead
from perceive.models.pillars import NUM_DECORATIONS, PillarEncoder

#: Spare columns past the BEV grid that dropped points are scattered into (see
#: :meth:`FusedPillarEncoder.forward`).
DROP_SLOTS = 1024


def _fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (eval-mode statistics), float64."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    bias = bn.bias.double() - bn.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.double() * scale
    return weight, bias


class FusedPillarEncoder(nn.Module):
    """One frame's points -> (1, C, ny, nx) pillar features, equal to a trained
    :class:`~perceive.models.pillars.PillarEncoder` applied to the points that
    :meth:`~perceive.models.pillars.PillarEncoder.select_points` keeps.

    Args:
        encoder: the trained encoder (its weights are copied and folded, float64 then float32).
    """

    def __init__(self, encoder: PillarEncoder) -> None:
        super().__init__()
        cfg = encoder.config
        self.ny, self.nx = encoder.ny, encoder.nx
        self.max_points = int(cfg.max_points)
        self.num_features = len(cfg.point_features)
        r = encoder.grid.point_cloud_range
        vx, vy = encoder.grid.voxel_size
        self.x_min, self.y_min = float(r[0]), float(r[1])
        self.register_buffer("range_min", encoder.range_min.clone(), persistent=False)
        self.register_buffer("range_max", encoder.range_max.clone(), persistent=False)
        self.register_buffer("voxel", encoder.voxel.clone(), persistent=False)
        # Which of the columns after x, y, z are squashed with tanh.
        self.squash = [bool(s) for s in encoder.squash.tolist()[3:]]
        nf = self.num_features
        with torch.no_grad():
            lin = encoder.layers[0].linear
            w = lin.weight.double() * encoder.input_scale.double()  # (C0, nf + 5 + extra)
            if w.shape[1] != nf + NUM_DECORATIONS + encoder.extra_channels:
                raise ValueError("unexpected pillar layer width")
            # Extra per-point inputs (painted camera features) enter the layer linearly.
            extra_weight = w[:, nf + NUM_DECORATIONS :].clone()
            dxc, dyc, dxm, dym, dzm = (nf + i for i in range(NUM_DECORATIONS))
            # Per point: offsets (u, v) to the pillar centre, z, the other features.
            point = w[:, :nf].clone()
            point[:, 0] += w[:, dxc] + w[:, dxm]
            point[:, 1] += w[:, dyc] + w[:, dym]
            point[:, 2] += w[:, dzm]
            # Per pillar: bias + x/y feature of the centre - mean decorations.
            cx = self.x_min + (torch.arange(self.nx, dtype=torch.float64) + 0.5) * vx
            cy = self.y_min + (torch.arange(self.ny, dtype=torch.float64) + 0.5) * vy
            col_term = w[:, 0:1] * cx.view(1, -1)  # (C0, nx)
            row_term = w[:, 1:2] * cy.view(1, -1) + lin.bias.double().view(-1, 1)  # (C0, ny)
            mean_weight = -torch.stack([w[:, dxm], w[:, dym], w[:, dzm]], dim=1)  # (C0, 3)
        self.register_buffer("point_weight", point.float(), persistent=False)
        self.extra_channels = encoder.extra_channels
        self.register_buffer("extra_weight", extra_weight.float(), persistent=False)
        self.register_buffer("col_term", col_term.float().unsqueeze(1), persistent=False)
        self.register_buffer("row_term", row_term.float().unsqueeze(2), persistent=False)
        self.register_buffer("mean_weight", mean_weight.float(), persistent=False)
        # Later layers (VFE style): [point feature, its pillar's max] -> split the weight.
        point_ws, pillar_ws, biases = [], [], []
        for layer in list(encoder.layers)[1:]:
            lw = layer.linear.weight.detach().float()
            half = lw.shape[1] // 2
            point_ws.append(lw[:, :half].clone())
            pillar_ws.append(lw[:, half:].clone())
            biases.append(layer.linear.bias.detach().float().clone().view(-1, 1))
        self.later_point = nn.ParameterList(
            [nn.Parameter(x, requires_grad=False) for x in point_ws]
        )
        self.later_pillar = nn.ParameterList(
            [nn.Parameter(x, requires_grad=False) for x in pillar_ws]
        )
        self.later_bias = nn.ParameterList([nn.Parameter(x, requires_grad=False) for x in biases])
        self.out_channels = encoder.out_channels

    def forward(self, points: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Encode and scatter one frame.

        Args:
            points: (N, F) float32, vehicle frame, metres; N may be 0.
            extra: (extra_channels, N) float32 further inputs of every point, channels first
                (the painted camera features), or None when the encoder has none.

        Returns:
            (1, C, ny, nx) float32 (zero in empty pillars).
        """
        if (extra is None) != (self.extra_channels == 0):
            raise ValueError(
                f"pillar encoder built for {self.extra_channels} extra channels per point, "
                f"got {'none' if extra is None else 'some'}"
            )
        ny, nx = self.ny, self.nx
        cells = ny * nx
        pt = points.t()  # (F, N): rows contiguous
        x, y, z = pt[0], pt[1], pt[2]
        inside = (
            (x >= self.range_min[0])
            & (x < self.range_max[0])
            & (y >= self.range_min[1])
            & (y < self.range_max[1])
            & (z >= self.range_min[2])
            & (z < self.range_max[2])
        )
        for i in range(3, self.num_features):  # x, y, z in range are finite already
            inside = inside & torch.isfinite(pt[i])
        # The first max_points in-range points, in input order (what select_points keeps).
        rank = torch.cumsum(inside.to(torch.int64), dim=0)
        keep = inside & (rank <= self.max_points)
        col = torch.floor((x - self.range_min[0]) / self.voxel[0]).clamp(0, nx - 1)
        row = torch.floor((y - self.range_min[1]) / self.voxel[1]).clamp(0, ny - 1)
        u = x - (self.range_min[0] + (col + 0.5) * self.voxel[0])
        v = y - (self.range_min[1] + (row + 0.5) * self.voxel[1])
        flat = row.to(torch.int64) * nx + col.to(torch.int64)
        # Dropped points go to DROP_SLOTS spare columns past the grid, spread round-robin:
        # on a GPU a scatter with a reduction serialises the updates of one address, and
        # half a cloud (the ground, far points) in one column took ~100 ms on an H200.
        spare = cells + torch.remainder(
            torch.arange(points.shape[0], device=points.device), DROP_SLOTS
        )
        index = torch.where(keep, flat, spare).unsqueeze(0)  # (1, N)
        rows = [u, v, z]
        for i in range(3, self.num_features):
            rows.append(torch.tanh(pt[i]) if self.squash[i - 3] else pt[i])
        g = torch.stack(rows, dim=0)  # (F, N)
        # Pillar means relative to the centre, from sums of (u, v, z) and counts.
        ones = torch.ones_like(u).unsqueeze(0)
        stats = torch.cat([g[:3], ones], dim=0)  # (4, N)
        sums = points.new_zeros(4, cells + DROP_SLOTS).scatter_add(1, index.expand(4, -1), stats)
        means = sums[:3, :cells] / sums[3:, :cells].clamp(min=1.0)  # (3, cells)
        feat = torch.matmul(self.point_weight, g)  # (C0, N) pre-activation minus pillar term
        if extra is not None:
            feat = feat + torch.matmul(self.extra_weight, extra)
        pillar_term = (
            self.row_term + self.col_term + torch.matmul(self.mean_weight, means).view(-1, ny, nx)
        ).reshape(-1, cells)
        pillar = self._max_relu(feat, index, pillar_term)
        for wp, wq, b in zip(self.later_point, self.later_pillar, self.later_bias, strict=True):
            # Per-point output of the previous layer (needs its pillar term at each point).
            padded = functional.pad(pillar_term, (0, DROP_SLOTS))
            prev = torch.relu(feat + padded.index_select(1, index[0]))
            feat = torch.matmul(wp, prev)
            pillar_term = torch.matmul(wq, pillar) + b
            pillar = self._max_relu(feat, index, pillar_term)
        return pillar.reshape(1, -1, ny, nx)

    @staticmethod
    def _max_relu(feat: torch.Tensor, index: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """``relu(max over each pillar's points of feat + term)``, 0 for empty pillars.

        Args:
            feat: (C, N) per-point values; index: (1, N) pillar (``cells`` and above:
            dropped); term: (C, cells) per-pillar addend.

        Returns:
            (C, cells).
        """
        c, cells = term.shape
        init = torch.full((1, 1), float("-inf"), dtype=feat.dtype, device=feat.device)
        best = init.expand(c, cells + DROP_SLOTS).scatter_reduce(
            1, index.expand(c, -1), feat, reduce="amax", include_self=True
        )
        # An empty pillar holds -inf: relu(-inf + term) = 0, as the eager model gives.
        return torch.relu(best[:, :cells] + term)


class InferenceCameraBackbone(nn.Module):
    """A trained :class:`~perceive.models.camera_backbone.CameraBackbone` with the image
    normalisation and the first batch norm folded into its first convolution.

    Args:
        backbone: the trained backbone (its first convolution must be a padded
            ``Conv2d -> BatchNorm2d -> ReLU``; with per-channel means that differ, the
            normalisation is kept as it is).
    """

    def __init__(self, backbone: CameraBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        first = backbone.stages[0][0]
        conv, bn = first[0], first[1]
        mean = backbone.mean.flatten().double()
        inv_std = backbone.inv_std.flatten().double()
        self.folded = bool(
            len(first) == 3
            and isinstance(conv, nn.Conv2d)
            and isinstance(bn, nn.BatchNorm2d)
            and isinstance(first[2], nn.ReLU)
            and conv.groups == 1
            and conv.dilation == (1, 1)
            and conv.padding_mode == "zeros"
            and torch.all(mean == mean[0])
        )
        if not self.folded:
            return
        self.pad = (conv.padding[1], conv.padding[1], conv.padding[0], conv.padding[0])
        self.stride = conv.stride
        self.pad_value = float(mean[0])
        with torch.no_grad():
            w, b = _fold_batch_norm(conv, bn)
            w = w * inv_std.view(1, -1, 1, 1)
            b = b - (w * mean.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        self.register_buffer("weight", w.float(), persistent=False)
        self.register_buffer("bias", b.float(), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 RGB -> (N, out_channels, H / stride, W / stride) float32."""
        if not self.folded:
            return self.backbone(images)
        bb = self.backbone
        x = images.permute(0, 3, 1, 2).to(torch.float32)
        x = functional.pad(x, self.pad, value=self.pad_value)
        x = torch.relu(functional.conv2d(x, self.weight, self.bias, stride=self.stride))
        x = bb.stages[0][1:](x)
        for stage in list(bb.stages)[1:]:
            x = stage(x)
        return bb.out(x)


class FastCameraLift(nn.Module):
    """One frame's camera feature maps -> the BEV map of a trained
    :class:`~perceive.models.fusion.CameraToBEV` (same sample points, same weights).

    Args:
        lift: the trained lift.
    """

    def __init__(self, lift: CameraToBEV) -> None:
        super().__init__()
        self.lift = lift
        samples = lift.samples.view(len(lift.fusion.heights), lift.ly, lift.lx, 3)
        self.register_buffer("xs", samples[0, 0, :, 0].clone(), persistent=False)
        self.register_buffer("ys", samples[0, :, 0, 1].clone(), persistent=False)
        self.register_buffer("zs", samples[:, 0, 0, 2].clone(), persistent=False)

    def forward(
        self, features: torch.Tensor, intrinsics: torch.Tensor, extrinsics: torch.Tensor
    ) -> torch.Tensor:
        """Lift.

        Args:
            features: (C, F, h, w) float32 feature maps of the C cameras.
            intrinsics: (C, 9) float32 for the model's image size.
            extrinsics: (C, 4, 4) float32 camera -> vehicle.

        Returns:
            (1, bev_channels, ny, nx) float32.
        """
        lift = self.lift
        c, f = features.shape[:2]
        nz, ly, lx = self.zs.shape[0], lift.ly, lift.lx
        rot = extrinsics[:, :3, :3]  # (C, 3, 3)
        trans_r = torch.matmul(extrinsics[:, None, :3, 3], rot)  # (C, 1, 3): t @ R
        # Camera coordinates (p - t) @ R of the grid p = (xs[i], ys[j], zs[k]), per axis.
        ax = rot[:, 0, :].unsqueeze(-1) * self.xs  # (C, 3, lx)
        ay = rot[:, 1, :].unsqueeze(-1) * self.ys  # (C, 3, ly)
        az = rot[:, 2, :].unsqueeze(-1) * self.zs - trans_r.transpose(1, 2)  # (C, 3, Z)
        cam = (az.view(c, 3, nz, 1, 1) + ay.view(c, 3, 1, ly, 1) + ax.view(c, 3, 1, 1, lx)).reshape(
            c, 3, -1
        )
        k = intrinsics.unsqueeze(-1).unbind(1)  # nine (C, 1)
        u, v, valid = distort_to_pixels(
            cam[:, 0], cam[:, 1], cam[:, 2], k, lift.fusion.min_depth, lift.width, lift.height
        )
        u, v = lift.feature_pixels(u, v)
        sampled = _sample_seen(features, u, v, valid, lift.width, lift.height)
        bev = sampled.reshape(1, f * nz, ly, lx)
        bev = lift.reduce(bev)
        if (ly, lx) != lift.out_shape:
            bev = functional.interpolate(
                bev, size=lift.out_shape, mode="bilinear", align_corners=False
            )
        return bev if lift.gate is None else bev * lift.gate


def _sample_seen(
    features: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    valid: torch.Tensor,
    width: int,
    height: int,
) -> torch.Tensor:
    """Mean over the cameras that see each point of the bilinear feature there.

    Only the (camera, point) pairs in ``valid`` are sampled, in one ``grid_sample`` of the
    C maps stacked vertically, each followed by a zero row so that taps past a map's border
    read zero as with separate maps; a weight-0 pair adds exactly zero to the eager sum.

    Args:
        features: (C, F, h, w) float32 maps.
        u, v: (C, S) float32 pixels in the ``width`` x ``height`` image frame.
        valid: (C, S) bool.

    Returns:
        (F, S) float32, zero where no camera sees the point.
    """
    c, f, h, w = features.shape
    n = valid.shape[1]
    seen = torch.nonzero(valid)  # (M, 2): camera, sample (no index division in the graph)
    cam_of, sample_of = seen[:, 0], seen[:, 1]
    pairs = cam_of * n + sample_of
    pu = u.reshape(-1).index_select(0, pairs)
    pv = v.reshape(-1).index_select(0, pairs)
    rows = c * (h + 1)
    gx = pu * (2.0 / width) - 1.0
    gy = (cam_of.to(pv.dtype) * (2.0 * (h + 1)) + pv * (2.0 * h / height)) / rows - 1.0
    # One extra pair outside every map, summed into a dropped column: M may be 0.
    gx = torch.cat([gx, gx.new_full((1,), -2.0)])
    gy = torch.cat([gy, gy.new_full((1,), -2.0)])
    sample_of = torch.cat([sample_of, sample_of.new_full((1,), n)])
    stacked = functional.pad(features, (0, 0, 0, 1)).transpose(0, 1).reshape(1, f, rows, w)
    grid = torch.stack([gx, gy], dim=-1).view(1, 1, -1, 2)
    sampled = functional.grid_sample(
        stacked, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    ).reshape(f, -1)  # (F, M + 1)
    total = features.new_zeros(f, n + 1).scatter_add(
        1, sample_of.unsqueeze(0).expand(f, -1), sampled
    )[:, :n]
    count = valid.to(total.dtype).sum(dim=0, keepdim=True).clamp(min=1.0)  # (1, S)
    return total / count


class FastPointPainter(nn.Module):
    """One frame's points painted as a trained :class:`~perceive.models.fusion.PointPainter`
    paints them, channels first; no parameters.

    Args:
        painter: the painter (image size, minimum depth).
    """

    def __init__(self, painter: PointPainter) -> None:
        super().__init__()
        self.feature_pixels = painter.feature_pixels
        self.width, self.height = painter.width, painter.height
        self.min_depth = painter.min_depth
        self.out_channels = painter.out_channels

    def forward(
        self,
        points: torch.Tensor,
        features: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> torch.Tensor:
        """Paint.

        Args:
            points: (N, F') float32, x, y, z first, vehicle frame, metres; N may be 0.
            features: (C, F, h, w) float32 feature maps of the C cameras.
            intrinsics: (C, 9) float32 for the model's image size.
            extrinsics: (C, 4, 4) float32 camera -> vehicle.

        Returns:
            (F + 1, N) float32: the features averaged over the cameras that see the point
            (zero when none does), then the seen flag (1.0 or 0.0).
        """
        rot = extrinsics[:, :3, :3]  # (C, 3, 3)
        trans_r = torch.matmul(extrinsics[:, None, :3, 3], rot)  # (C, 1, 3): t @ R
        # Camera coordinates R^T p - R^T t, channels first: (C, 3, N).
        cam = torch.matmul(rot.transpose(1, 2), points[:, :3].t()) - trans_r.transpose(1, 2)
        k = intrinsics.unsqueeze(-1).unbind(1)  # nine (C, 1)
        u, v, valid = distort_to_pixels(
            cam[:, 0], cam[:, 1], cam[:, 2], k, self.min_depth, self.width, self.height
        )
        u, v = self.feature_pixels(u, v)
        painted = _sample_seen(features, u, v, valid, self.width, self.height)
        seen = valid.any(dim=0, keepdim=True).to(painted.dtype)
        return torch.cat([painted, seen], dim=0)


class InferenceHead(nn.Module):
    """The head and the decoding of a trained detector, with the regression branch evaluated
    only at the decoded cells.

    Args:
        head: the trained :class:`~perceive.models.head.CenterHead`.
        coder: its :class:`~perceive.models.box_coder.BoxCoder`.
    """

    def __init__(self, head: CenterHead, coder: BoxCoder) -> None:
        super().__init__()
        self.shared = head.shared
        self.heatmap = head.heatmap
        self.coder = coder
        block, last = head.regression[0], head.regression[1]
        conv, bn = block[0], block[1]
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1):
            raise ValueError("InferenceHead expects a 3x3, stride 1, padding 1 regression conv")
        with torch.no_grad():
            w, b = _fold_batch_norm(conv, bn)
            cout, cin = w.shape[:2]
            # (cin * 9, cout) with rows ordered (channel, ky, kx)
            self.register_buffer("reg_weight", w.reshape(cout, cin * 9).t().float().contiguous())
            self.register_buffer("reg_bias", b.float().clone())
            self.register_buffer(
                "out_weight", last.weight.detach().reshape(last.out_channels, -1).t().clone()
            )
            self.register_buffer("out_bias", last.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(1, C, H, W) BEV features -> ``boxes`` (D, 7), ``scores`` (D,), ``labels`` (D,)."""
        shared = self.shared(x)
        scores, labels, cell = self.coder.peaks(self.heatmap(shared))
        c, h, w = shared.shape[1:]
        row = cell[0] // w
        col = cell[0] - row * w
        # The 3x3 neighbourhood of every cell (D, 9), zero outside the map (the conv's padding).
        offs = torch.arange(-1, 2, device=x.device)
        nr = (row.view(-1, 1, 1) + offs.view(1, 3, 1)).expand(-1, 3, 3)
        nc = (col.view(-1, 1, 1) + offs.view(1, 1, 3)).expand(-1, 3, 3)
        inside = ((nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)).reshape(1, -1)
        flat = (nr.clamp(0, h - 1) * w + nc.clamp(0, w - 1)).reshape(-1)
        d = row.shape[0]
        patches = shared.reshape(c, h * w).index_select(1, flat) * inside.to(shared.dtype)
        patches = patches.reshape(c, d, 9).permute(1, 0, 2).reshape(d, c * 9)
        hidden = torch.relu(torch.matmul(patches, self.reg_weight) + self.reg_bias)
        code = torch.matmul(hidden, self.out_weight) + self.out_bias  # (D, code size)
        boxes = self.coder.boxes_from_codes(code.t().unsqueeze(0), cell)
        return boxes[0], scores[0], labels[0]


class InferenceDetector(nn.Module):
    """A trained detector's single-frame forward in the inference formulation.

    Args:
        detector: the trained :class:`~perceive.models.detector.Detector` (eval mode is used).

    ``forward(points, images, intrinsics, extrinsics) -> (boxes, scores, labels)`` has the
    inputs, outputs and results of :meth:`Detector.forward`.
    """

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.config = detector.config
        self.pillars = None if detector.pillars is None else FusedPillarEncoder(detector.pillars)
        self.camera = None if detector.camera is None else InferenceCameraBackbone(detector.camera)
        self.lift = None if detector.lift is None else FastCameraLift(detector.lift)
        self.painter = None if detector.painter is None else FastPointPainter(detector.painter)
        self.backbone = detector.backbone
        self.head = InferenceHead(detector.head, detector.coder)

    def forward(
        self,
        points: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detect in one frame: see :meth:`perceive.models.detector.Detector.forward`."""
        feats = None if self.camera is None else self.camera(images)
        maps = []
        if self.pillars is not None:
            extra = None
            if self.painter is not None and feats is not None:
                extra = self.painter(points, feats, intrinsics, extrinsics)
            maps.append(self.pillars(points, extra))
        if feats is not None and self.lift is not None:
            maps.append(self.lift(feats, intrinsics, extrinsics))
        x = maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)
        return self.head(self.backbone(x))
