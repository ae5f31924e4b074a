"""CenterPoint-style detection head: a class heatmap and a box regression per BEV cell.

The regression code of a cell is ``dx, dy, z, log l, log w, log h, sin t, cos t`` and,
with ``HeadConfig.heading="axis_direction"``, ``sin 2t, cos 2t`` (``t`` the heading; see
:mod:`perceive.models.box_coder`).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from perceive.models.config import HeadConfig


class CenterHead(nn.Module):
    """BEV features -> heatmap logits and regression.

    Args:
        in_channels: channels of the BEV feature map.
        num_classes: heatmap channels.
        config: width and heatmap bias initialisation.
    """

    def __init__(self, *, in_channels: int, num_classes: int, config: HeadConfig) -> None:
        super().__init__()
        c = config.channels
        self.shared = Conv2dNormActivation(in_channels, c, kernel_size=3)
        self.heatmap = nn.Sequential(
            Conv2dNormActivation(c, c, kernel_size=3), nn.Conv2d(c, num_classes, 1)
        )
        self.regression = nn.Sequential(
            Conv2dNormActivation(c, c, kernel_size=3), nn.Conv2d(c, config.code_size, 1)
        )
        nn.init.constant_(self.heatmap[-1].bias, config.init_bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Head outputs.

        Args:
            x: (B, in_channels, H, W) float32 BEV features.

        Returns:
            ``heatmap`` (B, num_classes, H, W) logits and ``regression`` (B, code_size, H, W).
        """
        x = self.shared(x)
        return self.heatmap(x), self.regression(x)
