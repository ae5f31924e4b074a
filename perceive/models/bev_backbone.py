"""2D CNN over the bird's-eye-view grid with an upsampling neck (SECOND / PointPillars style).

Stages of 3x3 convolutions at growing strides; every stage's output is brought to
the output stride (transposed convolution up, strided convolution down, 1x1 at the
same stride) and the results are concatenated, mixing fine detail with context.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from perceive.models.config import BEVBackboneConfig


class BEVBackbone(nn.Module):
    """(B, in_channels, ny, nx) -> (B, out_channels, ny / out_stride, nx / out_stride).

    Args:
        in_channels: channels of the BEV input (LiDAR and/or lifted camera features).
        config: stage widths, strides, blocks, neck width and output stride.
    """

    def __init__(self, *, in_channels: int, config: BEVBackboneConfig) -> None:
        super().__init__()
        self.config = config
        stages, necks = [], []
        prev = in_channels
        for c, s, n, total in zip(
            config.channels, config.strides, config.blocks, config.cumulative_strides, strict=True
        ):
            layers = [Conv2dNormActivation(prev, c, kernel_size=3, stride=s)]
            layers += [Conv2dNormActivation(c, c, kernel_size=3) for _ in range(n)]
            stages.append(nn.Sequential(*layers))
            necks.append(self._neck(c, config.neck_channels, total, config.out_stride))
            prev = c
        self.stages = nn.ModuleList(stages)
        self.necks = nn.ModuleList(necks)
        self.out_channels = config.neck_channels * len(stages)

    @staticmethod
    def _neck(cin: int, cout: int, stride: int, out_stride: int) -> nn.Module:
        if stride > out_stride:
            k = stride // out_stride
            return nn.Sequential(
                nn.ConvTranspose2d(cin, cout, kernel_size=k, stride=k, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )
        if stride < out_stride:
            k = out_stride // stride
            return Conv2dNormActivation(cin, cout, kernel_size=k, stride=k, padding=0)
        return Conv2dNormActivation(cin, cout, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at ``config.out_stride``, (B, out_channels, ny / s, nx / s) float32."""
        outs = []
        for stage, neck in zip(self.stages, self.necks, strict=True):
            x = stage(x)
            outs.append(neck(x))
        return torch.cat(outs, dim=1)
