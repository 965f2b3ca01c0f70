"""Exact integer matrix products for the reference (int64, never through floats)."""
from __future__ import annotations

import torch

from binaryvit.golden.intref.validation import check_product_fits, max_abs


def int_matmul(a: torch.Tensor, b: torch.Tensor, what: str) -> torch.Tensor:
    """``a @ b`` on int64 tensors (broadcast batch dims), refusing sums that could reach 2^62."""
    check_product_fits(max_abs(a) * max_abs(b) * max(a.shape[-1], 1), what)
    return torch.matmul(a, b)


def bits_to_pm1(bits: torch.Tensor) -> torch.Tensor:
    """bit 1 → +1, bit 0 → −1, as int64."""
    return bits.to(torch.int64) * 2 - 1
