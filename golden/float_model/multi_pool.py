"""Multi-pooling branches: 1xk and kx1 average pools, each with its own per-channel affine.

For each odd ``k`` in ``pool_kernels`` there are two branches, ``1xk`` (a row window) and
``kx1`` (a column window): stride 1, zero padding ``(k-1)/2``, always divided by ``k``
(padding counts, PyTorch's ``count_include_pad``). Each branch output passes through its
own :class:`ChannelAffine` (scale and bias start at 0), and the block adds the sum of all
branches to its residual stream. The branches read ``z = norm2(h)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from binaryvit.golden.float_model.channelwise import ChannelAffine
from binaryvit.golden.float_model.token_grid import image_to_tokens, tokens_to_image


def branch_names(pool_kernels: tuple[int, ...]) -> list[str]:
    """Branch keys in order: ``1x3, 3x1, 1x5, 5x1`` for kernels (3, 5)."""
    return [name for k in pool_kernels for name in (f"1x{k}", f"{k}x1")]


class MultiPoolBranches(nn.Module):
    """Sum of the affine-scaled 1xk / kx1 average pools of ``z`` on its grid.

    Input ``[B, T, C]``. With ``extra_tokens`` leading non-grid tokens (a class token),
    those rows get 0 from every branch: they have no spatial neighbourhood.
    """

    def __init__(self, dim: int, pool_kernels: tuple[int, ...]):
        super().__init__()
        self.affines = nn.ModuleDict({name: ChannelAffine(dim, 0.0)
                                      for name in branch_names(pool_kernels)})

    def forward(self, z: Tensor, grid: tuple[int, int], extra_tokens: int = 0) -> Tensor:
        image = tokens_to_image(z[:, extra_tokens:], grid)
        total = torch.zeros_like(z[:, extra_tokens:])
        for name, affine in self.affines.items():
            kh, kw = (int(s) for s in name.split("x"))
            pooled = F.avg_pool2d(image, (kh, kw), stride=1, padding=(kh // 2, kw // 2),
                                  count_include_pad=True)
            total = total + affine(image_to_tokens(pooled))
        return torch.cat([torch.zeros_like(z[:, :extra_tokens]), total], dim=1)
