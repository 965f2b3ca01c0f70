"""Fixed-point arithmetic of the residual stream: rounding, saturation and per-channel units.

All values are two's-complement integers computed in ``torch.int64``. Rounding is round
half up (add ``2^(s−1)``, then arithmetic shift right); saturation clamps to the signed
range of the output width; nothing ever wraps.
"""
from __future__ import annotations

from typing import Any

import torch

from binaryvit.errors import DataError
from binaryvit.golden.intref.validation import (
    as_bit_tensor,
    as_int_tensor,
    check_min_dims,
    check_product_fits,
    check_shift,
    check_width,
    max_abs,
    per_channel,
)


def signed_range(width: int) -> tuple[int, int]:
    """``(−2^(width−1), 2^(width−1) − 1)``: the values a signed ``width``-bit word holds."""
    w = check_width(width, allow_none=False)
    return -(1 << (w - 1)), (1 << (w - 1)) - 1


def rounded_bias(bias: Any, shift: int) -> torch.Tensor:
    """``bias + 2^(shift−1)`` (``bias`` for shift 0): the bias a unit stores so that a plain
    arithmetic shift of ``m·x + rounded_bias`` is ``round_shift(m·x + bias, shift)``."""
    b = as_int_tensor(bias, "bias")
    s = check_shift(shift)
    return b + (1 << (s - 1)) if s else b


def round_shift(x: Any, shift: int) -> torch.Tensor:
    """Divide by ``2^shift`` rounding half up: ``x`` for shift 0, else ``(x + 2^(shift−1)) >> shift``.

    ``>>`` is the arithmetic (floor) shift, so ties go towards +∞: 5→3, −5→−2 for shift 1.
    """
    t = as_int_tensor(x, "x")
    s = check_shift(shift)
    if s == 0:
        return t
    return (t + (1 << (s - 1))) >> s


def saturate(x: Any, width: int | None) -> torch.Tensor:
    """Clamp to the signed ``width``-bit range; ``width=None`` returns ``x`` unchanged."""
    t = as_int_tensor(x, "x")
    if width is None:
        return t
    lo, hi = signed_range(width)
    return t.clamp(lo, hi)


def _channels(x: torch.Tensor, name: str) -> int:
    check_min_dims(x, 1, name, "[..., C]")
    return x.shape[-1]


def affine(x: Any, mul: Any, bias: Any, shift: int, width: int | None) -> torch.Tensor:
    """Per-channel affine unit: ``saturate(round_shift(mul·x + bias, shift), width)``.

    Parameters
    ----------
    x : int tensor ``[..., C]``.
    mul, bias : int ``[C]`` (or scalars), the folded scale and bias (bias already in the
        product's format, i.e. scaled by ``2^shift`` relative to the output).
    shift : right shift ≥ 0.  width : output width (signed) or None.
    """
    t = as_int_tensor(x, "x")
    c = _channels(t, "x")
    m = per_channel(mul, c, "mul")
    b = per_channel(bias, c, "bias")
    s = check_shift(shift)
    check_width(width)
    check_product_fits(max_abs(t) * max_abs(m) + max_abs(b) + (1 << s), "affine mul·x + bias")
    return saturate(round_shift(m * t + b, s), width)


def rprelu(x: Any, pre_bias: Any, mul_pos: Any, mul_neg: Any, post_bias: Any, shift: int,
           width: int | None) -> torch.Tensor:
    """RPReLU in fixed point: ``t = x + pre_bias``; ``m = mul_pos if t >= 0 else mul_neg``;
    ``saturate(round_shift(m·t + post_bias, shift), width)``.

    ``x`` is ``[..., C]``; the four constants are ``[C]`` (or scalars). ``t = 0`` takes
    ``mul_pos`` (irrelevant to the product, stated for the RTL's comparator).
    """
    t0 = as_int_tensor(x, "x")
    c = _channels(t0, "x")
    pre = per_channel(pre_bias, c, "pre_bias")
    mp = per_channel(mul_pos, c, "mul_pos")
    mn = per_channel(mul_neg, c, "mul_neg")
    post = per_channel(post_bias, c, "post_bias")
    s = check_shift(shift)
    check_width(width)
    t = t0 + pre
    check_product_fits(max_abs(t) * max(max_abs(mp), max_abs(mn)) + max_abs(post) + (1 << s),
                       "rprelu m·t + post_bias")
    m = torch.where(t >= 0, mp, mn)
    return saturate(round_shift(m * t + post, s), width)


def threshold(x: Any, thresh: Any, flip: Any) -> torch.Tensor:
    """Per-channel sign unit: bit ``x >= thresh`` where ``flip = 0``, ``x <= thresh`` where ``flip = 1``.

    ``x`` is ``[..., C]``; ``thresh`` int ``[C]``, ``flip`` bits ``[C]`` (scalars broadcast).
    """
    t = as_int_tensor(x, "x")
    c = _channels(t, "x")
    th = per_channel(thresh, c, "thresh")
    f = as_bit_tensor(flip, "flip")
    if f.dim() == 0:
        f = f.expand(c)
    elif f.shape != (c,):
        raise DataError(f"flip: expected shape ({c},) (one per channel) or a scalar, got {tuple(f.shape)}")
    return torch.where(f, t <= th, t >= th)


def residual_add(a: Any, b: Any, width: int | None) -> torch.Tensor:
    """``saturate(a + b, width)``; ``a`` and ``b`` have the same shape and fixed-point format."""
    ta = as_int_tensor(a, "a")
    tb = as_int_tensor(b, "b")
    if ta.shape != tb.shape:
        raise DataError(f"residual_add: a and b must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}")
    check_width(width)
    return saturate(ta + tb, width)
