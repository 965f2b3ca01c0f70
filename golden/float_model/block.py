"""One BinaryViT block: binary attention, binary MLP, LayerScales and multi-pooling.

For the residual stream ``h`` of shape ``[B, T, C]``::

    u   = BN[norm1](h)
    a   = attention(u)                          # see attention.py
    a   = LS[layer_scale1](a)                   # if layer_scale
    h1  = h + a                                 # main residual add 1
    z   = BN[norm2](h1)
    o   = mlp(z)                                # see mlp.py
    o   = LS[layer_scale2](o)                   # if layer_scale
    out = h1 + o (+ pool_branches(z))           # main residual add 2 (+ branches if multi_pool)
"""
from __future__ import annotations

from torch import Tensor, nn

from binaryvit.golden.float_model.attention import BinaryAttention
from binaryvit.golden.float_model.channelwise import ChannelAffine, TokenBatchNorm
from binaryvit.golden.float_model.mlp import BinaryMLP
from binaryvit.golden.float_model.multi_pool import MultiPoolBranches


class BinaryViTBlock(nn.Module):
    """A transformer block of width ``dim`` on a fixed grid; see the module docstring."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, sr_ratio: int, alpha_init: float,
                 binary: bool, layer_scale: bool, layer_scale_init: float,
                 multi_pool: bool, pool_kernels: tuple[int, ...]):
        super().__init__()
        self.norm1 = TokenBatchNorm(dim)
        self.attention = BinaryAttention(dim, heads, sr_ratio, alpha_init, binary)
        self.norm2 = TokenBatchNorm(dim)
        self.mlp = BinaryMLP(dim, mlp_dim, binary)
        if layer_scale:
            self.layer_scale1 = ChannelAffine(dim, layer_scale_init)
            self.layer_scale2 = ChannelAffine(dim, layer_scale_init)
        else:
            self.layer_scale1 = self.layer_scale2 = None
        self.pool_branches = MultiPoolBranches(dim, pool_kernels) if multi_pool else None

    def forward(self, h: Tensor, grid: tuple[int, int], extra_tokens: int = 0) -> Tensor:
        """``h``: ``[B, extra_tokens + H*W, C]``; grid tokens follow the extra (class) tokens."""
        a = self.attention(self.norm1(h), grid)
        if self.layer_scale1 is not None:
            a = self.layer_scale1(a)
        h = h + a
        z = self.norm2(h)
        o = self.mlp(z)
        if self.layer_scale2 is not None:
            o = self.layer_scale2(o)
        out = h + o
        if self.pool_branches is not None:
            out = out + self.pool_branches(z, grid, extra_tokens)
        return out
