"""Binarizers of BinaryViT: forward values and straight-through gradients.

Every sign here maps 0 to +1 (``sign(x) = +1 if x >= 0 else -1``), in training and in
inference, as the integer contract requires; PyTorch's ``torch.sign`` would give 0.

=========================  ==================================  ==============================
binarizer                  forward                             backward (straight-through)
=========================  ==================================  ==============================
:func:`approx_sign`        sign(x)                             g * max(0, 2 - 2|x|)  (ApproxSign)
:func:`binarize_linear_w`  alpha_o * sign(W - rowmean(W))      g through clamp(W_c, -1, 1),
                           alpha_o = mean_i |W_oi| (detached)  then through the centring
:func:`binarize_conv_w`    alpha_o * sign(W)                   g where |W| <= 1
                           alpha_o = mean |W_o| (detached)
:func:`binarize_attention` alpha * [P > alpha / 2]             dP: g where 0 <= P/alpha <= 1;
                                                               dalpha: see the function
=========================  ==================================  ==============================
"""
from __future__ import annotations

import torch
from torch import Tensor


def sign_pm1(x: Tensor) -> Tensor:
    """+1 where ``x >= 0``, -1 elsewhere, in the dtype of ``x``; no gradient."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class _ApproxSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return sign_pm1(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


def approx_sign(x: Tensor) -> Tensor:
    """Binary activation: sign(x) forward, Bi-Real's ApproxSign derivative backward.

    The derivative is 2 + 2x on [-1, 0], 2 - 2x on (0, 1] and 0 elsewhere.
    """
    return _ApproxSign.apply(x)


def binarize_linear_w(weight: Tensor) -> Tensor:
    """Row-centred sign weights times the row scale, with the clipped straight-through estimator.

    ``weight`` is ``[out, in]``. Forward: ``alpha_o * sign(W_o - mean_i W_oi)`` with
    ``alpha_o = mean_i |W_oi|`` taken on the **un-centred** row and detached. Backward: the
    gradient reaches the centred weight through ``clamp(., -1, 1)`` (zero where
    ``|W_c| > 1``) and then the centring, as in ReActNet / BinaryViT.
    """
    centred = weight - weight.mean(dim=-1, keepdim=True)
    alpha = weight.abs().mean(dim=-1, keepdim=True).detach()
    clipped = centred.clamp(-1.0, 1.0)
    return (alpha * sign_pm1(centred)).detach() + clipped - clipped.detach()


def binarize_conv_w(weight: Tensor) -> Tensor:
    """Sign weights with a per-output-channel scale (ReActNet's ``HardBinaryConv``).

    ``weight`` is ``[out, in, kh, kw]``; no centring. Forward: ``alpha_o * sign(W)`` with
    ``alpha_o = mean |W_o|`` over in x kh x kw, detached. Backward: clipped STE.
    """
    alpha = weight.abs().mean(dim=(1, 2, 3), keepdim=True).detach()
    clipped = weight.clamp(-1.0, 1.0)
    return (alpha * sign_pm1(weight)).detach() + clipped - clipped.detach()


class _AttentionBinarizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, probs: Tensor, alpha: Tensor) -> Tensor:
        # 2P > alpha is exact in floating point (doubling is exact) and equals
        # round(clamp(P / alpha, 0, 1)) under round-half-to-even: P = alpha/2 gives 0.
        bits = (2.0 * probs > alpha).to(probs.dtype)
        ctx.save_for_backward(probs, alpha, bits)
        return alpha * bits

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        probs, alpha, bits = ctx.saved_tensors
        ratio = probs / alpha
        inside = (ratio >= 0) & (ratio <= 1)
        grad_probs = grad * inside.to(grad.dtype)
        per_entry = torch.where(inside, bits - ratio, (ratio > 1).to(grad.dtype))
        grad_alpha = (grad * per_entry).sum().reshape(alpha.shape)
        return grad_probs, grad_alpha


def binarize_attention(probs: Tensor, alpha: Tensor) -> Tensor:
    """BiT-style elastic {0, alpha} binarizer of attention probabilities.

    Forward: ``alpha * [P > alpha / 2]`` (strict). Backward (BiT, without LSQ scaling):
    ``dL/dP = g`` where ``0 <= P/alpha <= 1`` else 0; ``dL/dalpha = sum(g * (b - P/alpha))``
    over entries with ``0 <= P/alpha <= 1`` plus ``sum(g)`` over entries with ``P/alpha > 1``,
    ``b`` the forward bit. ``alpha`` is a positive scalar tensor.
    """
    return _AttentionBinarizer.apply(probs, alpha)
