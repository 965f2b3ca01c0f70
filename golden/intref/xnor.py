"""XNOR-popcount dot product of ±1 vectors held as bits."""
from __future__ import annotations

from typing import Any

import torch

from binaryvit.errors import DataError
from binaryvit.golden.intref.exact_matmul import bits_matmul
from binaryvit.golden.intref.validation import as_bit_tensor, check_min_dims


def xnor_popcount_dot(a_bits: Any, w_bits: Any) -> torch.Tensor:
    """``2·popcount(XNOR(a, w_n)) − K`` for every row ``n`` of ``w``: the ±1 dot product.

    Parameters
    ----------
    a_bits : bits ``[..., K]`` (activations, bit 1 ↔ +1).
    w_bits : bits ``[N, K]`` (weights).

    Returns
    -------
    int64 ``[..., N]``, values in ``{−K, −K+2, …, K}``. ``K`` is the true vector length;
    there are no pad bits at this level (packing pads are the RTL's business).
    """
    a = as_bit_tensor(a_bits, "a_bits")
    w = as_bit_tensor(w_bits, "w_bits")
    check_min_dims(a, 1, "a_bits", "[..., K]")
    if w.dim() != 2:
        raise DataError(f"w_bits: expected shape [N, K], got {tuple(w.shape)}")
    if a.shape[-1] != w.shape[1]:
        raise DataError(f"a_bits has K={a.shape[-1]} inputs but w_bits has K={w.shape[1]}")
    return bits_matmul(a, w.T, a_pm1=True, b_pm1=True)
