"""Binary spatial-reduction attention (the attention half of a BinaryViT block).

Dataflow for input ``u = norm1(h)`` of shape ``[B, T, C]`` on grid ``(H, W)``; module
names in brackets; ``BN`` a :class:`TokenBatchNorm`, ``RP`` an :class:`RPReLU`, each binary
linear reads the ``sign(x + move)`` of its own input:

1. ``q~ = RP[q_act](BN[q_norm](BL[q_proj](u)) + u)``
2. if ``r > 1``: ``u_ = avgpool_rxr(u)`` [sr_pool] (stride r); ``u_ = RP[sr_act](BN[sr_norm](BL[sr_proj](u_)) + u_)``;
   else ``u_ = u``
3. ``k~ = RP[k_act](BN[k_norm](BL[k_proj](u_)) + u_)``, ``v~`` likewise with ``v_*``
4. ``Q, K, V = RSign[q_sign](q~), RSign[k_sign](k~), RSign[v_sign](v~)``: ±1, no scale
5. per head (``d = C / heads``): ``P = softmax(Q K^T / sqrt(d))``,
   ``P_b = alpha * [P > alpha/2]`` [prob_binarizer]
6. ``ctx = concat_heads(P_b V)``;
   ``ctx = RP[ctx_act](BN[ctx_norm](ctx) + q~ + up(k~) + up(v~))``, ``up`` nearest x r
7. ``a = RP[out_act](BN[out_norm](BL[out_proj](ctx)) + ctx)``, returned
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from binaryvit.golden.float_model.binarizers import binarize_attention
from binaryvit.golden.float_model.binary_layers import BinaryLinear, RSign
from binaryvit.golden.float_model.channelwise import RPReLU, TokenBatchNorm
from binaryvit.golden.float_model.token_grid import nearest_upsample_tokens
from binaryvit.golden.float_model.token_pools import TokenAvgPool

# Keeps alpha strictly positive whatever sign the raw parameter takes.
ALPHA_EPS = 1e-6


class AttentionBinarizer(nn.Module):
    """{0, alpha} binarizer of attention probabilities with one learnable alpha.

    ``alpha = |alpha_raw| + 1e-6`` (:meth:`alpha`). With ``binary=False`` it passes P through.
    """

    def __init__(self, alpha_init: float, binary: bool = True):
        super().__init__()
        self.binary = binary
        self.alpha_raw = nn.Parameter(torch.tensor(float(alpha_init)))

    def alpha(self) -> Tensor:
        return self.alpha_raw.abs() + ALPHA_EPS

    def forward(self, probs: Tensor) -> Tensor:
        return binarize_attention(probs, self.alpha()) if self.binary else probs


class BinaryAttention(nn.Module):
    """Binary multi-head attention with r x r spatial reduction of keys and values.

    Parameters
    ----------
    dim : int
        Channels C of the input and output tokens ``[B, T, C]``.
    heads : int
        Heads; head dimension ``d = C / heads``.
    sr_ratio : int
        Spatial reduction r: keys and values come from the r x r average-pooled grid.
    alpha_init : float
        Initial attention-binarizer alpha.
    binary : bool
        ``False`` for the float teacher.
    """

    def __init__(self, dim: int, heads: int, sr_ratio: int, alpha_init: float, binary: bool):
        super().__init__()
        self.heads = heads
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr_pool = TokenAvgPool(sr_ratio)
        for name in ("q", "k", "v") + (("sr",) if sr_ratio > 1 else ()):
            self.add_module(f"{name}_proj", BinaryLinear(dim, dim, binary))
            self.add_module(f"{name}_norm", TokenBatchNorm(dim))
            self.add_module(f"{name}_act", RPReLU(dim))
        self.q_sign = RSign(dim, binary)
        self.k_sign = RSign(dim, binary)
        self.v_sign = RSign(dim, binary)
        self.prob_binarizer = AttentionBinarizer(alpha_init, binary)
        self.ctx_norm = TokenBatchNorm(dim)
        self.ctx_act = RPReLU(dim)
        self.out_proj = BinaryLinear(dim, dim, binary)
        self.out_norm = TokenBatchNorm(dim)
        self.out_act = RPReLU(dim)

    def _unit(self, name: str, x: Tensor) -> Tensor:
        proj, norm, act = (getattr(self, f"{name}_{part}") for part in ("proj", "norm", "act"))
        return act(norm(proj(x)) + x)

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, tokens, channels = x.shape
        return x.reshape(batch, tokens, self.heads, channels // self.heads).transpose(1, 2)

    def forward(self, u: Tensor, grid: tuple[int, int]) -> Tensor:
        q = self._unit("q", u)
        if self.sr_ratio > 1:
            reduced = self._unit("sr", self.sr_pool(u, grid))
        else:
            reduced = u
        k = self._unit("k", reduced)
        v = self._unit("v", reduced)
        q_bits = self._split_heads(self.q_sign(q))
        k_bits = self._split_heads(self.k_sign(k))
        v_bits = self._split_heads(self.v_sign(v))
        scores = q_bits @ k_bits.transpose(-2, -1) / math.sqrt(q_bits.shape[-1])
        probs = self.prob_binarizer(torch.softmax(scores, dim=-1))
        ctx = (probs @ v_bits).transpose(1, 2).reshape(u.shape)
        if self.sr_ratio > 1:
            small = (grid[0] // self.sr_ratio, grid[1] // self.sr_ratio)
            k = nearest_upsample_tokens(k, small, self.sr_ratio)
            v = nearest_upsample_tokens(v, small, self.sr_ratio)
        ctx = self.ctx_act(self.ctx_norm(ctx) + q + k + v)
        return self._unit("out", ctx)
