"""Training loss: penalty-reduced focal loss on the heatmap and L1 on the box codes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from perceive.models.box_coder import Targets
from perceive.models.config import LossConfig

#: Predicted probabilities are clamped to [EPS, 1 - EPS] before the logarithms.
EPS = 1e-4


@dataclass(frozen=True)
class LossOutput:
    """The loss of a batch and its parts (0-d tensors)."""

    total: torch.Tensor
    """Weighted sum, the quantity to minimise."""
    heatmap: torch.Tensor
    """Focal heatmap loss (unweighted)."""
    regression: torch.Tensor
    """L1 regression loss (unweighted, summed over the code, mean over boxes)."""
    num_boxes: torch.Tensor
    """Number of boxes that have targets in the batch (float)."""


def focal_heatmap_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss.

    Args:
        logits: (B, K, H, W) heatmap logits.
        target: (B, K, H, W) in [0, 1]; exactly 1 at object centres.
        alpha: focusing exponent; beta: penalty reduction exponent near centres.

    Returns:
        0-d tensor: the summed loss divided by max(1, number of centres).
    """
    logits = logits.float()
    prob = torch.sigmoid(logits).clamp(EPS, 1 - EPS)
    pos = target.eq(1).to(prob.dtype)
    neg = 1.0 - pos
    pos_loss = torch.log(prob) * (1 - prob).pow(alpha) * pos
    neg_loss = torch.log(1 - prob) * prob.pow(alpha) * (1 - target).pow(beta) * neg
    num_pos = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


class DetectionLoss(nn.Module):
    """Focal heatmap loss + weighted L1 on the codes at the box centres.

    Args:
        config: weights and focal exponents.
    """

    def __init__(self, *, config: LossConfig) -> None:
        super().__init__()
        self.config = config
        weights = tuple(config.code_weights)
        # With the axis_direction heading code, sin 2t and cos 2t share sin t's and cos t's.
        self.register_buffer(
            "code_weights",
            torch.tensor(weights + weights[6:8], dtype=torch.float32),
            persistent=False,
        )

    def forward(
        self, heatmap: torch.Tensor, regression: torch.Tensor, targets: Targets
    ) -> LossOutput:
        """Loss of head outputs against targets.

        Args:
            heatmap: (B, K, H, W) logits.
            regression: (B, S, H, W) codes, ``S`` 8 or 10 (see ``HeadConfig.code_size``).
            targets: from :meth:`perceive.models.box_coder.BoxCoder.encode`.

        Returns:
            :class:`LossOutput`.
        """
        cfg = self.config
        hm = focal_heatmap_loss(heatmap, targets.heatmap, cfg.focal_alpha, cfg.focal_beta)
        b, m = targets.indices.shape
        size = regression.shape[1]
        if targets.regression.shape[-1] != size:
            raise ValueError(
                f"regression has {size} channels but the targets have "
                f"{targets.regression.shape[-1]}: head and box coder disagree on the code"
            )
        pred = torch.gather(
            regression.float().reshape(b, size, -1),
            2,
            targets.indices.unsqueeze(1).expand(b, size, m),
        ).transpose(1, 2)
        mask = targets.mask.to(pred.dtype).unsqueeze(-1)
        l1 = (pred - targets.regression).abs() * mask * self.code_weights[:size]
        num = targets.mask.sum().to(pred.dtype)
        reg = l1.sum() / num.clamp(min=1.0)
        total = cfg.heatmap_weight * hm + cfg.regression_weight * reg
        return LossOutput(
            total=total, heatmap=hm.detach(), regression=reg.detach(), num_boxes=num.detach()
        )
