"""Multi-bit fixed-point multiply-accumulate: the stem convolution and the classifier."""
from __future__ import annotations

from typing import Any

import torch

from binaryvit.errors import DataError
from binaryvit.golden.intref.exact_matmul import int_matmul
from binaryvit.golden.intref.fixed_point import round_shift, saturate
from binaryvit.golden.intref.validation import as_int_tensor, check_min_dims, check_shift, check_width


def fixed_mac(x: Any, w: Any, bias: Any, shift: int, width: int | None) -> torch.Tensor:
    """``saturate(round_shift(Σ_k w[n,k]·x[k] + bias[n], shift), width)``.

    Parameters
    ----------
    x : int ``[..., K]``.  w : int ``[N, K]``.  bias : int ``[N]`` (in the accumulator's
        format).  shift : ≥ 0.  width : output width or None.

    Returns
    -------
    int64 ``[..., N]``.
    """
    tx = as_int_tensor(x, "x")
    tw = as_int_tensor(w, "w")
    tb = as_int_tensor(bias, "bias")
    check_min_dims(tx, 1, "x", "[..., K]")
    if tw.dim() != 2:
        raise DataError(f"w: expected shape [N, K], got {tuple(tw.shape)}")
    if tx.shape[-1] != tw.shape[1]:
        raise DataError(f"x has K={tx.shape[-1]} inputs but w has K={tw.shape[1]}")
    if tb.shape != (tw.shape[0],):
        raise DataError(f"bias: expected shape ({tw.shape[0]},), got {tuple(tb.shape)}")
    s = check_shift(shift)
    check_width(width)
    acc = int_matmul(tx, tw.T, "fixed_mac accumulator") + tb
    return saturate(round_shift(acc, s), width)
