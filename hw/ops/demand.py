"""Token demands of kernel ports: which input token a kernel needs before each output token.

A *demand* of a kernel port is an integer array over the kernel's output tokens of one
image: entry ``t`` is the last input token (on that port) the kernel must have taken before
it can emit output token ``t``. FIFO sizing (``binaryvit.hw.network.fifo_sizing``) composes
them to find the skew a fork must absorb.
"""
from __future__ import annotations

import numpy as np

from binaryvit.errors import ConfigError
from binaryvit.hw.ops.tensor_info import TensorInfo

__all__ = ["Demand", "token_demand"]

Demand = np.ndarray


def token_demand(kind: str, x: TensorInfo, out: TensorInfo, *, factor: int = 1,
                 reach: tuple[int, int] = (0, 0)) -> Demand:
    """Demand of one kernel port reading ``x`` for output ``out``.

    kind : ``pointwise`` (token ``t`` from token ``t``), ``spatial_pool`` (``factor × factor``
        windows, emitted on their last token), ``strip_pool`` (a window reaching ``reach``
        tokens down and right, clipped at the grid), ``whole_image`` (nothing before the
        image's last token).
    """
    if kind == "pointwise":
        return np.arange(out.tokens, dtype=np.int64)
    if kind == "whole_image":
        return np.full(out.tokens, x.tokens - 1, dtype=np.int64)
    h, w = x.grid
    if kind == "spatial_pool":
        i, j = np.divmod(np.arange(out.tokens, dtype=np.int64), w // factor)
        return ((i + 1) * factor - 1) * w + (j + 1) * factor - 1
    if kind == "strip_pool":
        i, j = np.divmod(np.arange(out.tokens, dtype=np.int64), w)
        return np.minimum(i + reach[0], h - 1) * w + np.minimum(j + reach[1], w - 1)
    raise ConfigError(f"unknown demand kind {kind!r}")
