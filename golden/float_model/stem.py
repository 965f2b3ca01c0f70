"""The float stem: raw pixels -> normalised pixels -> patch tokens with position embedding.

``x`` holds **raw pixel values** (digits: integers 0..16). The model normalises them itself
with fixed buffers, ``(x - mean_c) / std_c`` [input_norm], an affine the quantizer folds
into the stem convolution, so the integer model takes raw integer pixels. Then
``t = BN[norm](conv_pxp(x_n)) + pos_embed`` with a float p x p / stride p convolution with
bias [conv].
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from binaryvit.golden.float_model.channelwise import TokenBatchNorm
from binaryvit.golden.float_model.token_grid import image_to_tokens


class InputNormalization(nn.Module):
    """``(x - mean_c) / std_c`` per input channel of ``[B, C, H, W]``; mean and std are buffers."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class PatchStem(nn.Module):
    """Float patch embedding: ``[B, C_in, H, W]`` raw pixels -> ``[B, (H/p)*(W/p), dim]``."""

    def __init__(self, in_channels: int, dim: int, patch_size: int, num_tokens: int,
                 mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.input_norm = InputNormalization(mean, std)
        self.conv = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size, bias=True)
        self.norm = TokenBatchNorm(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(image_to_tokens(self.conv(self.input_norm(x)))) + self.pos_embed
