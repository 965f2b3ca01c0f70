"""Binary attention in integers: ±1 scores, an exp LUT, a per-row threshold, AND-popcount.

With ±1 queries and keys of length ``d`` the scores take only ``d + 1`` values, so the
softmax numerator is a table; the BiT-style {0, α} binarized softmax becomes
``exp(s_ik) > θ·Σ_k exp(s_ik)``, evaluated without a divide.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref.exact_matmul import bits_matmul
from binaryvit.golden.intref.validation import (
    as_bit_tensor,
    as_int_tensor,
    check_min_dims,
    check_nonnegative_int,
    check_positive_int,
    check_product_fits,
    check_shift,
    max_abs,
)


def attention_scores(q_bits: Any, k_bits: Any) -> torch.Tensor:
    """``Q·Kᵀ`` of ±1 vectors: ``[..., Tq, d]`` × ``[..., Tk, d]`` → int64 ``[..., Tq, Tk]``.

    Each score is an XNOR-popcount dot, in ``{−d, −d+2, …, d}``. Batch dims broadcast.
    """
    q = as_bit_tensor(q_bits, "q_bits")
    k = as_bit_tensor(k_bits, "k_bits")
    check_min_dims(q, 2, "q_bits", "[..., Tq, d]")
    check_min_dims(k, 2, "k_bits", "[..., Tk, d]")
    if q.shape[-1] != k.shape[-1]:
        raise DataError(f"q_bits has d={q.shape[-1]} but k_bits has d={k.shape[-1]}")
    return bits_matmul(q, k.transpose(-1, -2), a_pm1=True, b_pm1=True)


def exp_lut(d: int, frac: int, width: int) -> torch.Tensor:
    """The exp table indexed by ``j = (s + d) / 2``: ``E[j] = round_half_up(2^frac·exp((s_j − d)/√d))``.

    ``s_j = 2j − d`` runs over the ``d + 1`` possible scores; subtracting the maximum ``d``
    keeps every entry ≤ ``E[d] = 2^frac``. Entries are unsigned ``width``-bit values;
    ``round_half_up(v) = floor(v + 1/2)`` evaluated in IEEE double precision (the table is a
    constant, so the RTL takes it from here rather than recomputing it).

    Raises ``ConfigError`` if ``2^frac`` does not fit ``width`` unsigned bits.
    """
    d = check_positive_int(d, "d")
    frac = check_nonnegative_int(frac, "frac")
    width = check_positive_int(width, "width")
    if frac > 62 or width > 62:
        raise ConfigError(f"frac and width must be at most 62, got frac={frac}, width={width}")
    if (1 << frac) >= (1 << width):
        raise ConfigError(f"width: the largest exp LUT entry 2^{frac} needs {frac + 1} unsigned bits, got width={width}")
    scale = float(1 << frac)
    root = math.sqrt(d)
    values = [math.floor(scale * math.exp((2 * j - 2 * d) / root) + 0.5) for j in range(d + 1)]
    values[d] = 1 << frac  # exp(0) = 1 exactly; stated so no float path can disagree
    return torch.tensor(values, dtype=torch.int64)


def attention_mask(scores: Any, lut: Any, theta: int, theta_shift: int) -> torch.Tensor:
    """The binarized softmax: ``b_ik = (e_ik · 2^theta_shift) > theta · Σ_k e_ik`` (strict).

    Parameters
    ----------
    scores : int ``[..., Tq, Tk]`` from :func:`attention_scores`, in ``{−d, −d+2, …, d}``.
    lut : int ``[d + 1]`` from :func:`exp_lut`; ``e_ik = lut[(s_ik + d) / 2]``.
    theta, theta_shift : the threshold ``θ = theta / 2^theta_shift`` (≈ α_att / 2), theta ≥ 0.

    Returns
    -------
    bool ``[..., Tq, Tk]``: the attention bits (1 ↔ probability α, 0 ↔ 0).
    """
    s = as_int_tensor(scores, "scores")
    table = as_int_tensor(lut, "lut")
    check_min_dims(s, 2, "scores", "[..., Tq, Tk]")
    if table.dim() != 1 or table.shape[0] < 2:
        raise DataError(f"lut: expected a 1-D table of d + 1 ≥ 2 entries, got shape {tuple(table.shape)}")
    if bool((table < 0).any()):
        raise DataError("lut: entries must be non-negative")
    theta = check_nonnegative_int(theta, "theta")
    ts = check_shift(theta_shift, "theta_shift")
    d = table.shape[0] - 1
    if s.numel() and (bool((s < -d).any()) or bool((s > d).any()) or bool(((s + d) % 2).any())):
        raise DataError(f"scores: must lie in {{-{d}, -{d}+2, …, {d}}} for a {d + 1}-entry lut")
    e = table[(s + d) // 2]
    row_sum = e.sum(dim=-1, keepdim=True)
    check_product_fits(max(max_abs(e) << ts, max_abs(row_sum) * theta), "attention_mask threshold compare")
    return (e << ts) > theta * row_sum


def and_popcount_context(b: Any, v_bits: Any) -> torch.Tensor:
    """``Σ_k b_ik·v_kc`` with ``v`` ±1: ``2·popcount(b_i AND v⁺_c) − popcount(b_i)``.

    ``b`` bits ``[..., Tq, Tk]``, ``v_bits`` bits ``[..., Tk, dv]`` → int64 ``[..., Tq, dv]``,
    values in ``[−Tk, Tk]``.
    """
    tb = as_bit_tensor(b, "b")
    tv = as_bit_tensor(v_bits, "v_bits")
    check_min_dims(tb, 2, "b", "[..., Tq, Tk]")
    check_min_dims(tv, 2, "v_bits", "[..., Tk, dv]")
    if tb.shape[-1] != tv.shape[-2]:
        raise DataError(f"b has Tk={tb.shape[-1]} keys but v_bits has Tk={tv.shape[-2]}")
    return bits_matmul(tb, tv, a_pm1=False, b_pm1=True)
