"""The pooling kernels' output stage: ``saturate(round_shift(S·mul, shift), width)`` in logic.

This is ``binaryvit.golden.intref`` pooling's scaling step (round half up, then clamp to the
signed output range), built combinationally from a signed sum ``S``. Widths are derived
from the operands, so nothing wraps before the clamp.
"""
from __future__ import annotations

import numbers

from amaranth.hdl import Const, Module, Signal, Value, signed

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.validation import check_shift
from binaryvit.hw.kernels.saturate import saturate


def check_scale(mul: int, shift: int) -> tuple[int, int]:
    """The quantizer's divisor ``mul / 2^shift``: ``mul`` any integer, ``shift`` in ``[0, 62]``."""
    if isinstance(mul, bool) or not isinstance(mul, numbers.Integral):
        raise ConfigError(f"mul: expected an integer, got {mul!r}")
    return int(mul), check_shift(shift)


def sum_width(element_width: int, count: int) -> int:
    """Width of a signed sum of ``count`` signed ``element_width``-bit values (never overflows)."""
    return element_width + max(count - 1, 0).bit_length()


def multiply_round_shift(m: Module, total: Value, *, mul: int, shift: int, width: int,
                         name: str) -> Signal:
    """A ``signed(width)`` signal equal to ``saturate(round_shift(total·mul, shift), width)``.

    Purely combinational; ``total`` must be a signed value. ``name`` prefixes the
    intermediate signals so waveforms stay readable when a kernel builds one per lane.
    """
    mul_width = abs(mul).bit_length() + 1
    product = Signal(signed(len(total) + mul_width), name=f"{name}_product")
    m.d.comb += product.eq(total * Const(mul, signed(mul_width)))
    if shift:
        rounded = Signal(signed(max(len(product) + 1 - shift, 1)), name=f"{name}_rounded")
        m.d.comb += rounded.eq((product + (1 << (shift - 1))) >> shift)
    else:
        rounded = product
    result = Signal(signed(width), name=name)
    m.d.comb += result.eq(saturate(rounded, width))
    return result
