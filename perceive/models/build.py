"""Keyword-only builders: a :class:`~perceive.models.config.DetectorConfig` -> modules.

The variant decides which parts are built (an explicit if/elif, no registry):

* ``"lidar"``: pillar encoder -> BEV backbone -> head;
* ``"camera"``: camera CNN -> lift to BEV -> BEV backbone -> head;
* ``"fusion"``: both maps concatenated -> BEV backbone -> head; with ``fusion.paint`` the
  points also carry the camera features where they project (a point painter).
"""

from __future__ import annotations

from perceive.errors import ConfigError
from perceive.models.bev_backbone import BEVBackbone
from perceive.models.box_coder import BoxCoder
from perceive.models.camera_backbone import CameraBackbone
from perceive.models.config import VARIANTS, DetectorConfig
from perceive.models.detector import Detector
from perceive.models.fusion import CameraToBEV, PointPainter
from perceive.models.head import CenterHead
from perceive.models.loss import DetectionLoss
from perceive.models.pillars import PillarEncoder


def build_detector(*, config: DetectorConfig | None = None, variant: str | None = None) -> Detector:
    """Build a detector with freshly initialised weights.

    Args:
        config: the configuration (defaults if None).
        variant: ``"fusion"``, ``"lidar"`` or ``"camera"``; overrides ``config.variant`` when given.

    Returns:
        The :class:`Detector` (in training mode, on the CPU).
    """
    config = DetectorConfig() if config is None else config
    if variant is not None:
        if variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {variant!r}")
        config = config.replace(variant=variant)
    pillars = camera = lift = painter = None
    in_channels = 0
    if config.variant == "fusion" and config.fusion.paint:
        painter = PointPainter(fusion=config.fusion, camera=config.camera)
    if config.variant in ("lidar", "fusion"):
        extra = 0 if painter is None else painter.out_channels
        pillars = PillarEncoder(grid=config.grid, config=config.pillars, extra_channels=extra)
        in_channels += pillars.out_channels
    if config.variant in ("camera", "fusion"):
        camera = CameraBackbone(config=config.camera)
        lift = CameraToBEV(
            grid=config.grid,
            fusion=config.fusion,
            camera=config.camera,
            in_channels=camera.out_channels,
            gated=config.variant == "fusion" and config.fusion.gate,
        )
        in_channels += lift.out_channels
    backbone = BEVBackbone(in_channels=in_channels, config=config.bev)
    head = CenterHead(
        in_channels=backbone.out_channels, num_classes=config.num_classes, config=config.head
    )
    coder = BoxCoder(
        grid=config.grid,
        head=config.head,
        out_stride=config.bev.out_stride,
        num_classes=config.num_classes,
    )
    return Detector(
        config=config,
        pillars=pillars,
        camera=camera,
        lift=lift,
        painter=painter,
        backbone=backbone,
        head=head,
        coder=coder,
    )


def build_loss(*, config: DetectorConfig) -> DetectionLoss:
    """The training loss of a detector configuration."""
    return DetectionLoss(config=config.loss)
