"""Helpers shared by the model and export tests."""

import torch


def randomised(model: torch.nn.Module, *, seed: int, linear_bias: float = 0.0) -> torch.nn.Module:
    """Random batch-norm statistics and affine terms (no flat heatmaps, no score ties), and
    with ``linear_bias`` > 0 random biases of the linear layers at that scale; eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
        if linear_bias > 0 and isinstance(m, torch.nn.Linear):
            m.bias.data.copy_(torch.randn(m.out_features, generator=g) * linear_bias)
    return model.eval()
