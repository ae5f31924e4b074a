"""The detector: parts passed in, assembled into one module with a tensors-only forward.

``forward(points, images, intrinsics, extrinsics) -> (boxes, scores, labels)`` is the
single-frame signature of the exported graph (see ``/work/contracts.md``: inputs and
outputs, their order and names). :meth:`Detector.forward_batch` is the batched
training forward returning raw head outputs.

Which parts exist decides the variant: a LiDAR-only model has no camera parts, a
camera-only model no pillar encoder; every variant keeps the same inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from perceive.models.bev_backbone import BEVBackbone
from perceive.models.box_coder import BoxCoder
from perceive.models.camera_backbone import CameraBackbone
from perceive.models.config import DetectorConfig
from perceive.models.fusion import CameraToBEV, PointPainter
from perceive.models.head import CenterHead
from perceive.models.pillars import PillarEncoder

#: ONNX input names, in the order of :meth:`Detector.forward`'s arguments.
INPUT_NAMES: tuple[str, ...] = ("points", "images", "intrinsics", "extrinsics")
#: ONNX output names, in the order of :meth:`Detector.forward`'s results.
OUTPUT_NAMES: tuple[str, ...] = ("boxes", "scores", "labels")


class Detector(nn.Module):
    """Camera + LiDAR BEV detector.

    Args:
        config: the configuration the parts were built from (kept for checkpoints and export).
        pillars: LiDAR points -> BEV features, or None (camera-only).
        camera: image CNN, or None (LiDAR-only); needs ``lift``.
        lift: camera features -> BEV features, or None; needs ``camera``.
        painter: camera features -> per-point inputs of the pillar encoder, or None; needs
            ``pillars`` (built with the painter's ``out_channels`` extra channels) and ``camera``.
        backbone: BEV CNN taking the concatenation of the pillar and lifted maps.
        head: heatmap and regression.
        coder: target encoding and box decoding.
    """

    def __init__(
        self,
        *,
        config: DetectorConfig,
        pillars: PillarEncoder | None,
        camera: CameraBackbone | None,
        lift: CameraToBEV | None,
        backbone: BEVBackbone,
        painter: PointPainter | None = None,
        head: CenterHead,
        coder: BoxCoder,
    ) -> None:
        super().__init__()
        if (camera is None) != (lift is None):
            raise ValueError("camera and lift go together: pass both or neither")
        if pillars is None and camera is None:
            raise ValueError("a detector needs a pillar encoder, a camera branch, or both")
        if painter is not None and (pillars is None or camera is None):
            raise ValueError("a point painter needs both the pillar encoder and the camera branch")
        extra = 0 if painter is None else painter.out_channels
        if pillars is not None and pillars.extra_channels != extra:
            raise ValueError(
                f"the pillar encoder takes {pillars.extra_channels} extra channels per point, "
                f"the painter gives {extra}"
            )
        self.config = config
        self.pillars = pillars
        self.camera = camera
        self.lift = lift
        self.painter = painter
        self.backbone = backbone
        self.head = head
        self.coder = coder

    def select_batch_points(
        self, points: torch.Tensor, point_batch: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each frame's points as the single-frame graph keeps them (eager, for training).

        Applies :meth:`PillarEncoder.select_points` frame by frame, so a batched forward
        sees exactly the points that :meth:`forward` would (the first ``max_points`` in
        range) and the per-point work is bounded. A camera-only model returns the input.

        Args:
            points: (P, F) float32 points of all frames, each frame's points contiguous.
            point_batch: (P,) int64 frame index of each point.
            batch_size: number of frames B.

        Returns:
            ``(points, point_batch)`` of the kept points.
        """
        if self.pillars is None:
            return points, point_batch
        kept, index = [], []
        for b in range(batch_size):
            sel = self.pillars.select_points(points[point_batch == b])
            kept.append(sel)
            index.append(torch.full((sel.shape[0],), b, dtype=torch.int64, device=points.device))
        return torch.cat(kept), torch.cat(index)

    def forward_batch(
        self,
        points: torch.Tensor,
        point_batch: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Head outputs of a batch of frames.

        Args:
            points: (P, F) float32 points of all frames concatenated, vehicle frame, metres.
            point_batch: (P,) int64 frame index of each point (each frame's points contiguous).
            images: (B, C, H, W, 3) uint8 RGB at the model's image size.
            intrinsics: (B, C, 9) float32 for that image size.
            extrinsics: (B, C, 4, 4) float32 camera -> vehicle.

        Returns:
            ``heatmap`` (B, K, h, w) logits and ``regression`` (B, 8, h, w).
        """
        batch = extrinsics.shape[0]
        feats = None
        if self.camera is not None:
            b, c = images.shape[:2]
            feats = self.camera(images.reshape(b * c, *images.shape[2:]))
            feats = feats.reshape(b, c, *feats.shape[1:])
        maps = []
        if self.pillars is not None:
            extra = None
            if self.painter is not None and feats is not None:
                extra = self.paint(points, point_batch, feats, intrinsics, extrinsics)
            maps.append(self.pillars(points, point_batch, batch, extra))
        if feats is not None and self.lift is not None:
            maps.append(self.lift(feats, intrinsics, extrinsics))
        x = maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)
        return self.head(self.backbone(x))

    def paint(
        self,
        points: torch.Tensor,
        point_batch: torch.Tensor,
        features: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> torch.Tensor:
        """The painter's per-point inputs for a batch, frame by frame.

        Args:
            points: (P, F) float32 points of all frames, each frame's points contiguous and
                the frames in order.
            point_batch: (P,) int64 frame index of each point.
            features: (B, C, F', h, w) float32 camera feature maps.
            intrinsics: (B, C, 9) float32; extrinsics: (B, C, 4, 4) float32 camera -> vehicle.

        Returns:
            (P, painter.out_channels) float32.
        """
        if self.painter is None:
            raise ValueError("this detector has no point painter")
        batch = features.shape[0]
        if batch == 1:  # the single-frame (and exported) path: no data-dependent split
            return self.painter(points[:, :3], features[0], intrinsics[0], extrinsics[0])
        if points.shape[0] > 1 and bool((point_batch[1:] < point_batch[:-1]).any()):
            raise ValueError("painting a batch needs each frame's points contiguous, in order")
        parts = [
            self.painter(points[point_batch == b, :3], features[b], intrinsics[b], extrinsics[b])
            for b in range(batch)
        ]
        return torch.cat(parts)

    def forward(
        self,
        points: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detect in one frame.

        Args:
            points: (N, F) float32, N may be 0; columns ``config.pillars.point_features``
                (x, y, z, intensity, elongation), vehicle frame, metres.
            images: (C, H, W, 3) uint8 RGB, cameras in ``config.camera.cameras`` order, resized
                to ``config.camera.image_size``.
            intrinsics: (C, 9) float32 ``f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3`` for that size.
            extrinsics: (C, 4, 4) float32 camera frame -> vehicle frame.

        Returns:
            ``boxes`` (D, 7) float32 ``x, y, z, l, w, h, heading`` (vehicle frame),
            ``scores`` (D,) float32 sorted descending, ``labels`` (D,) int64 class index;
            ``D = config.head.max_detections``.
        """
        if self.pillars is not None:
            points = self.pillars.select_points(points)
        point_batch = torch.zeros_like(points[:, 0], dtype=torch.int64)
        heatmap, regression = self.forward_batch(
            points,
            point_batch,
            images.unsqueeze(0),
            intrinsics.unsqueeze(0),
            extrinsics.unsqueeze(0),
        )
        boxes, scores, labels = self.coder.decode(heatmap, regression)
        return boxes[0], scores[0], labels[0]
