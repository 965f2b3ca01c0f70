"""Parameter-free poolings on token tensors, as modules so that each has a name.

The integer model computes each of them as its own step with its own rounding
(``avgpool2d`` for :class:`TokenAvgPool`, ``channel_group_avgpool`` for
:class:`ChannelGroupMean`), under the same name as the module here; being modules lets
hooks see their outputs (the quantizer's fidelity report, hardware-aware fine-tuning).
They hold no parameters, so checkpoints are unaffected.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from binaryvit.golden.float_model.token_grid import image_to_tokens, tokens_to_image


class TokenAvgPool(nn.Module):
    """``size x size`` average pool with stride ``size`` on ``[B, H*W, C]`` tokens of ``grid``;
    returns ``[B, (H/size)*(W/size), C]``."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        return image_to_tokens(F.avg_pool2d(tokens_to_image(x, grid), self.size))


class ChannelGroupMean(nn.Module):
    """``[..., g*C] -> [..., C]``: channel ``c`` is the mean of channels ``c*g ... c*g+g-1``."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-1], -1, self.group).mean(dim=-1)


__all__ = ["TokenAvgPool", "ChannelGroupMean"]
