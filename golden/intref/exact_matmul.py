"""Exact integer matrix products for the reference.

Floating-point BLAS is exact on integers as long as every partial sum is an integer the
format represents: all partial sums are bounded by ``max|a|·max|b|·K``, so below 2^24
(float32) or 2^53 (float64) any summation order gives the exact integer. That is ~10× faster
than int64 matmul; beyond 2^53 the product runs in int64.
"""
from __future__ import annotations

import torch

from binaryvit.golden.intref.validation import check_product_fits, max_abs

_FLOAT32_EXACT = 1 << 24
_FLOAT64_EXACT = 1 << 53


def int_matmul(a: torch.Tensor, b: torch.Tensor, what: str) -> torch.Tensor:
    """``a @ b`` of int64 tensors (batch dims broadcast), exact; refuses sums that could reach 2^62."""
    bound = max_abs(a) * max_abs(b) * max(a.shape[-1], 1)
    check_product_fits(bound, what)
    if a.device.type == "cpu" and b.device.type == "cpu":
        for limit, dtype in ((_FLOAT32_EXACT, torch.float32), (_FLOAT64_EXACT, torch.float64)):
            if bound < limit:
                return torch.matmul(a.to(dtype), b.to(dtype)).to(torch.int64)
    return torch.matmul(a, b)


def bits_matmul(a_bits: torch.Tensor, b_bits: torch.Tensor, a_pm1: bool, b_pm1: bool) -> torch.Tensor:
    """``a @ b`` of bit tensors read as ±1 (``*_pm1``: bit 1 → +1, bit 0 → −1) or as 0/1; int64.

    Every partial sum is bounded by the inner length, so float32 is exact below 2^24 terms.
    """
    k = a_bits.shape[-1]
    dtype = torch.float32 if k < _FLOAT32_EXACT else torch.float64
    a = a_bits.to(dtype)
    b = b_bits.to(dtype)
    if a_pm1:
        a = a * 2 - 1
    if b_pm1:
        b = b * 2 - 1
    return torch.matmul(a, b).to(torch.int64)
