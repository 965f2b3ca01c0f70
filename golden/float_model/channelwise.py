"""Per-channel real-valued layers on token tensors ``[B, T, C]``.

At inference each is a per-channel affine or piecewise-linear map, which the quantizer
folds into the integer ``affine`` / ``rprelu`` operations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TokenBatchNorm(nn.BatchNorm1d):
    """A plain ``nn.BatchNorm1d`` over the last (channel) dimension of ``[..., C]``.

    Statistics are taken over batch x tokens (the paper's ``--replace-ln-bn``). It stays an
    ``nn.BatchNorm1d`` so folding reads ``weight``, ``bias``, ``running_mean``,
    ``running_var`` and ``eps`` directly.
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class RPReLU(nn.Module):
    """ReActNet's RPReLU: ``y = PReLU_c(x - shift_in_c) + shift_out_c`` on the last dimension.

    ``PReLU_c(t) = t`` for ``t >= 0`` and ``slope_c * t`` below. The slope starts at 0.25
    (PyTorch's PReLU default) and is free to become negative.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.shift_in = nn.Parameter(torch.zeros(channels))
        self.slope = nn.Parameter(torch.full((channels,), 0.25))
        self.shift_out = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        # F.prelu is one fused kernel; it wants channels on dimension 1, hence the flat view.
        t = (x - self.shift_in).reshape(-1, x.shape[-1])
        return F.prelu(t, self.slope).reshape(x.shape) + self.shift_out


class ChannelAffine(nn.Module):
    """``y = scale_c * x + bias_c`` on the last dimension (LayerScale and branch affines)."""

    def __init__(self, channels: int, scale_init: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), float(scale_init)))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x + self.bias
