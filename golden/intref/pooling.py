"""Average pooling as integer window sums followed by one multiply-round-shift.

A division by ``n`` becomes ``mul / 2^shift ≈ 1/n`` (exact shifts for powers of two), applied
once to the integer sum: ``saturate(round_shift(S·mul, shift), width)``. Padding is zero and
counts in the divisor (PyTorch's ``count_include_pad=True``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref.fixed_point import round_shift, saturate
from binaryvit.golden.intref.validation import (
    as_int_tensor,
    check_nonnegative_int,
    check_positive_int,
    check_product_fits,
    check_shift,
    check_width,
    divisors,
    is_integer,
    max_abs,
)


def _scale(sums: torch.Tensor, mul: int, shift: int, width: int | None) -> torch.Tensor:
    if not is_integer(mul):
        raise ConfigError(f"mul: expected an integer, got {mul!r}")
    mul = int(mul)
    s = check_shift(shift)
    check_width(width)
    check_product_fits(max_abs(sums) * abs(mul) + (1 << s), "pooling S·mul")
    return saturate(round_shift(sums * mul, s), width)


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name}: expected an integer or a pair (rows, columns), got {value!r}")
        return check_positive_int(value[0], name), check_positive_int(value[1], name)
    v = check_positive_int(value, name)
    return v, v


def tokens_to_grid(x: Any, height: int, width: int) -> torch.Tensor:
    """``[B, T, C]`` tokens in raster order → ``[B, H, W, C]`` grid (``T = H·W``)."""
    t = as_int_tensor(x, "x")
    h = check_positive_int(height, "height")
    w = check_positive_int(width, "width")
    if t.dim() != 3 or t.shape[1] != h * w:
        raise DataError(f"x: expected shape [B, {h * w}, C] for a {h}×{w} grid, got {tuple(t.shape)}")
    return t.reshape(t.shape[0], h, w, t.shape[2])


def grid_to_tokens(x: Any) -> torch.Tensor:
    """``[B, H, W, C]`` grid → ``[B, H·W, C]`` tokens in raster order."""
    t = as_int_tensor(x, "x")
    if t.dim() != 4:
        raise DataError(f"x: expected shape [B, H, W, C], got {tuple(t.shape)}")
    return t.reshape(t.shape[0], t.shape[1] * t.shape[2], t.shape[3])


def window_sum2d(x: Any, kh: int, kw: int, stride: int | tuple[int, int], pad_h: int, pad_w: int) -> torch.Tensor:
    """Sums over ``kh × kw`` windows of a zero-padded ``[B, H, W, C]`` grid.

    Output ``[B, Ho, Wo, C]`` with ``Ho = (H + 2·pad_h − kh) // stride_h + 1`` (likewise
    ``Wo``); ``stride`` is an int or ``(stride_h, stride_w)``.
    """
    t = as_int_tensor(x, "x")
    if t.dim() != 4:
        raise DataError(f"x: expected shape [B, H, W, C], got {tuple(t.shape)}")
    kh = check_positive_int(kh, "kh")
    kw = check_positive_int(kw, "kw")
    sh, sw = _pair(stride, "stride")
    ph = check_nonnegative_int(pad_h, "pad_h")
    pw = check_nonnegative_int(pad_w, "pad_w")
    h, w = t.shape[1], t.shape[2]
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ConfigError(f"a {kh}×{kw} window does not fit the padded {h + 2 * ph}×{w + 2 * pw} grid")
    padded = F.pad(t, (0, 0, pw, pw, ph, ph))
    windows = padded.unfold(1, kh, sh).unfold(2, kw, sw)
    return windows.sum(dim=(-2, -1))


def avgpool2d(x: Any, kh: int, kw: int, stride: int | tuple[int, int], pad_h: int, pad_w: int,
              mul: int, shift: int, width: int | None) -> torch.Tensor:
    """Average pooling of a ``[B, H, W, C]`` grid: ``saturate(round_shift(S·mul, shift), width)``
    with ``S`` the zero-padded window sum (:func:`window_sum2d`)."""
    return _scale(window_sum2d(x, kh, kw, stride, pad_h, pad_w), mul, shift, width)


def global_avgpool(x: Any, mul: int, shift: int, width: int | None) -> torch.Tensor:
    """``[B, T, C]`` → ``[B, C]``: the sum over tokens, then the multiply-round-shift."""
    t = as_int_tensor(x, "x")
    if t.dim() != 3:
        raise DataError(f"x: expected shape [B, T, C], got {tuple(t.shape)}")
    return _scale(t.sum(dim=1), mul, shift, width)


def channel_group_avgpool(x: Any, group: int, mul: int, shift: int, width: int | None) -> torch.Tensor:
    """``[B, T, C]`` → ``[B, T, C/group]``: output channel ``c`` sums input channels
    ``c·group … c·group + group − 1``, then the multiply-round-shift."""
    t = as_int_tensor(x, "x")
    if t.dim() != 3:
        raise DataError(f"x: expected shape [B, T, C], got {tuple(t.shape)}")
    g = check_positive_int(group, "group")
    c = t.shape[2]
    if c % g:
        raise ConfigError(f"group: must divide the {c} channels; valid values are "
                          f"{divisors(c)}, got {g}")
    sums = t.reshape(t.shape[0], t.shape[1], c // g, g).sum(dim=-1)
    return _scale(sums, mul, shift, width)


def nearest_upsample(x: Any, h: int, w: int, factor: int) -> torch.Tensor:
    """``[B, h·w, C]`` → ``[B, (h·factor)·(w·factor), C]``: token ``(i, j)`` of the larger grid
    copies token ``(i // factor, j // factor)``; tokens in raster order."""
    grid = tokens_to_grid(x, h, w)
    f = check_positive_int(factor, "factor")
    up = grid.repeat_interleave(f, dim=1).repeat_interleave(f, dim=2)
    return grid_to_tokens(up)
