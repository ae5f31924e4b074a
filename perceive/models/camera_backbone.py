"""A small 2D CNN over the camera images, from torchvision building blocks, trained from scratch.

Stages of a stride-2 ``Conv2dNormActivation`` followed by ResNet ``BasicBlock``s; the
first stage is the stem. The input is the raw uint8 RGB image batch in the layout
of the model's ``images`` input (channels last); normalisation happens inside so
that an exported graph takes the bytes as they come from the decoder.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock
from torchvision.ops import Conv2dNormActivation

from perceive.models.config import CameraConfig

#: Per-channel mean and standard deviation of [0, 1] RGB used to normalise images.
IMAGE_MEAN = (0.45, 0.45, 0.45)
IMAGE_STD = (0.25, 0.25, 0.25)


class CameraBackbone(nn.Module):
    """Images -> feature maps at stride ``config.stride``.

    Args:
        config: stage widths, blocks per stage and output channels.
    """

    def __init__(self, *, config: CameraConfig) -> None:
        super().__init__()
        self.config = config
        stages: list[nn.Module] = []
        prev = 3
        for c, n in zip(config.channels, config.blocks, strict=True):
            stages.append(
                nn.Sequential(
                    Conv2dNormActivation(prev, c, kernel_size=3, stride=2),
                    *[BasicBlock(c, c) for _ in range(n)],
                )
            )
            prev = c
        self.stages = nn.Sequential(*stages)
        self.out = Conv2dNormActivation(prev, config.out_channels, kernel_size=1)
        self.out_channels = config.out_channels
        self.register_buffer(
            "mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False
        )
        self.register_buffer(
            "inv_std", 1.0 / (torch.tensor(IMAGE_STD).view(1, 3, 1, 1) * 255.0), persistent=False
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of every image.

        Args:
            images: (N, H, W, 3) uint8 RGB (any real dtype with 0..255 values also works).

        Returns:
            (N, out_channels, H / stride, W / stride) float32.
        """
        x = images.permute(0, 3, 1, 2).to(torch.float32)
        x = (x - self.mean) * self.inv_std
        return self.out(self.stages(x))
