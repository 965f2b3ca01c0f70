"""Binary layers: RSign activations and 1-bit linear / convolution layers.

Each binary layer owns the RSign that binarizes its input, so one module is one
XNOR-popcount in hardware: ``bits = (x + move >= 0)``, then a dot product of ±1 values with
±1 weights, scaled per output channel by ``alpha_o``. With ``binary=False`` the same
modules compute the float network (``x + move`` and the real weights), which is the
distillation teacher.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binaryvit.golden.float_model.binarizers import approx_sign, binarize_conv_w, binarize_linear_w


class RSign(nn.Module):
    """ReActNet's RSign: ``sign(x + move_c)`` with a learnable per-channel ``move``.

    Channels are the last dimension of ``x`` (``channel_dim=-1``, tokens) or dimension 1
    (``channel_dim=1``, images). Forward ±1 with sign(0) = +1; ApproxSign gradient.
    With ``binary=False`` it returns ``x + move``.
    """

    def __init__(self, channels: int, binary: bool = True, channel_dim: int = -1):
        super().__init__()
        self.binary = binary
        self.channel_dim = channel_dim
        self.move = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        move = self.move if self.channel_dim == -1 else self.move.view(-1, 1, 1)
        shifted = x + move
        return approx_sign(shifted) if self.binary else shifted


class BinaryLinear(nn.Module):
    """RSign on the input, then a bias-free linear layer with row-centred sign weights.

    Input ``[..., in_features]``, output ``[..., out_features]``. In binary mode the output
    is ``alpha_o * (±1 dot)`` where the dot is an XNOR-popcount of ``input_sign``'s bits and
    ``sign(W_o - mean(W_o))``; see :func:`binarize_linear_w`.
    """

    def __init__(self, in_features: int, out_features: int, binary: bool = True):
        super().__init__()
        self.binary = binary
        self.input_sign = RSign(in_features, binary)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def effective_weight(self) -> Tensor:
        """The weight the forward pass multiplies by: ``alpha_o * sign(W_c)`` or ``W``."""
        return binarize_linear_w(self.weight) if self.binary else self.weight

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.input_sign(x), self.effective_weight())


class BinaryConv2d(nn.Module):
    """RSign on the input, then a bias-free convolution with per-output-channel sign weights.

    Input ``[B, C_in, H, W]``. Used by the 2x2 stride-2 patch merge; see
    :func:`binarize_conv_w` (no centring, ``alpha_o = mean |W_o|``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 binary: bool = True):
        super().__init__()
        self.binary = binary
        self.stride = stride
        self.input_sign = RSign(in_channels, binary, channel_dim=1)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels,
                                               kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def effective_weight(self) -> Tensor:
        return binarize_conv_w(self.weight) if self.binary else self.weight

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.input_sign(x), self.effective_weight(), stride=self.stride)
