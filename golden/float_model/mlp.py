"""The binary MLP of a BinaryViT block (no GELU: RPReLU supplies the non-linearity).

For input ``z = norm2(h)`` of shape ``[B, T, C]`` and MLP width ``m = g * C``:

1. ``t = RP[fc1_act](BN[fc1_norm](BL[fc1](z)) + tile_g(z))`` -- ``tile_g`` concatenates g
   copies of z along channels (``[z, z, ...]``: channel ``j`` of the shortcut is ``z[j mod C]``)
2. ``o = RP[fc2_act](BN[fc2_norm](BL[fc2](t)) + groupmean_g(t))`` -- channel ``c`` of the
   shortcut [fc2_shortcut] is the mean of t's channels ``c*g ... c*g+g-1``
"""
from __future__ import annotations

from torch import Tensor, nn

from binaryvit.golden.float_model.binary_layers import BinaryLinear
from binaryvit.golden.float_model.channelwise import RPReLU, TokenBatchNorm
from binaryvit.golden.float_model.token_pools import ChannelGroupMean


class BinaryMLP(nn.Module):
    """C -> m -> C binary MLP with real-valued tiling / group-mean shortcuts."""

    def __init__(self, dim: int, mlp_dim: int, binary: bool):
        super().__init__()
        self.group = mlp_dim // dim
        self.fc1 = BinaryLinear(dim, mlp_dim, binary)
        self.fc1_norm = TokenBatchNorm(mlp_dim)
        self.fc1_act = RPReLU(mlp_dim)
        self.fc2 = BinaryLinear(mlp_dim, dim, binary)
        self.fc2_norm = TokenBatchNorm(dim)
        self.fc2_act = RPReLU(dim)
        self.fc2_shortcut = ChannelGroupMean(self.group)

    def forward(self, z: Tensor) -> Tensor:
        t = self.fc1_act(self.fc1_norm(self.fc1(z)) + z.repeat(1, 1, self.group))
        return self.fc2_act(self.fc2_norm(self.fc2(t)) + self.fc2_shortcut(t))
