"""Binary 2x2 patch merging between stages: grid halves, channels double.

For ``h`` of shape ``[B, H*W, C]``::

    z     = BN[norm](h)
    main  = BN[conv_norm](BinaryConv2x2/s2[conv](z))     # C -> 2C, sign(z + move) inside conv
    short = concat(avgpool2x2(z), avgpool2x2(z))         # [shortcut_pool], tiled: channel j reads channel j mod C
    out   = RP[act](main + short) + pos_embed            # new position embedding, new grid
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from binaryvit.golden.float_model.binary_layers import BinaryConv2d
from binaryvit.golden.float_model.channelwise import RPReLU, TokenBatchNorm
from binaryvit.golden.float_model.token_grid import image_to_tokens, tokens_to_image
from binaryvit.golden.float_model.token_pools import TokenAvgPool


class BinaryPatchMerge(nn.Module):
    """``[B, H*W, C]`` on grid (H, W) -> ``[B, (H/2)*(W/2), 2C]``; see the module docstring."""

    def __init__(self, dim: int, num_tokens_out: int, binary: bool):
        super().__init__()
        self.norm = TokenBatchNorm(dim)
        self.conv = BinaryConv2d(dim, 2 * dim, kernel_size=2, stride=2, binary=binary)
        self.conv_norm = TokenBatchNorm(2 * dim)
        self.act = RPReLU(2 * dim)
        self.shortcut_pool = TokenAvgPool(2)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens_out, 2 * dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, h: Tensor, grid: tuple[int, int]) -> Tensor:
        z = self.norm(h)
        main = self.conv_norm(image_to_tokens(self.conv(tokens_to_image(z, grid))))
        short = self.shortcut_pool(z, grid)
        return self.act(main + torch.cat([short, short], dim=-1)) + self.pos_embed
