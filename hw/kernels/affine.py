"""Per-channel affine unit: ``y = saturate(round_shift(mul_c·x + bias_c, shift), out_width)``.

BatchNorm, the binary weight scale α, LayerScale and the ÷3 / ÷5 of pooling branches all
fold into ``mul`` and ``bias`` (the quantizer's job); this kernel applies them to a
fixed-point stream, ``lanes`` channels per word, as ``binaryvit.golden.intref.affine``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.golden import intref
from binaryvit.golden.intref.fixed_point import rounded_bias
from binaryvit.golden.intref.validation import check_shift
from binaryvit.hw.kernels.constant_rom import constant_rom, row_counter
from binaryvit.hw.streams.fixed_point_stream import FixedPointStreamCodec, fixed_point_layout
from binaryvit.hw.kernels.parameter_checks import (
    check_declared_constants,
    check_int,
    check_lanes,
    check_width,
    signed_width_of,
)
from binaryvit.hw.kernels.saturate import saturate

__all__ = ["AffineUnit"]


class AffineUnit(FixedPointStreamCodec, wiring.Component):
    """Per-channel multiply, add, round half up, saturate, on a fixed-point stream.

    Parameters
    ----------
    channels : int
        Channels ``C`` per token.
    lanes : int
        Channels per stream word; must divide ``channels``.
    in_width : int
        Input element width (signed, 2…63).
    mul, bias : int sequences ``[C]``
        Per-channel constants (``bias`` in the product's format, i.e. before the shift).
    shift : int
        Right shift with rounding half up, 0…62.
    out_width : int
        Output element width (signed, 2…63); results saturate to it.
    mul_width, bias_width : int, optional
        Declared signed widths of the constants; default the smallest that holds them.
        A constant outside its declared width raises ``ConfigError``.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(in_width, lanes)))
    o : Out(stream.Signature(fixed_point_layout(out_width, lanes)))

    Arithmetic: the rounding constant ``2^(shift−1)`` is folded into the bias ROM, so each
    lane computes ``(mul·x + bias') >> shift`` with ``mul·x`` in ``in_width + mul_width``
    bits and the sum one bit wider than the wider operand (never wraps), then clamps to
    ``out_width``.

    Timing: ``latency`` = 3 cycles (input register + ROM read, product register, output
    register); one word per cycle when the output is not back-pressured. A global stall
    (``i.ready = ~o.valid | o.ready``) holds every stage while the output waits. The
    channel-group counter advances per input word and wraps every ``channels / lanes``
    words, so a stream must consist of whole tokens.
    """

    def __init__(self, *, channels: int, lanes: int, in_width: int, mul: Sequence[int] | torch.Tensor,
                 bias: Sequence[int] | torch.Tensor, shift: int, out_width: int,
                 mul_width: int | None = None, bias_width: int | None = None):
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.shift = check_shift(shift)
        self.out_width = check_width(out_width, "out_width")
        self.mul, self.mul_width = check_declared_constants(mul, "mul", (self.channels,), mul_width)
        self.bias, self.bias_width = check_declared_constants(bias, "bias", (self.channels,), bias_width)
        self.groups = self.channels // self.lanes
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output word (no back-pressure)."""
        return 3

    def model(self, x: Any) -> torch.Tensor:
        """The expected output for ``x[..., C]``: ``intref.affine`` with this unit's constants."""
        return intref.affine(x, self.mul, self.bias, self.shift, self.out_width)

    def elaborate(self, platform):
        m = Module()
        bias = rounded_bias(self.bias, self.shift)
        rom_bias_width = signed_width_of(int(bias.min()), int(bias.max()))
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        group = row_counter(m, self.i.valid & advance, self.groups, "group")
        constants = constant_rom(
            m, "constants",
            {"mul": (self.mul, signed(self.mul_width)), "bias": (bias, signed(rom_bias_width))},
            self.lanes, addr=group, en=advance)

        # Stage 1: the input word beside its channel group's constants.
        x1 = Signal(data.ArrayLayout(signed(self.in_width), self.lanes))
        valid1, last1 = Signal(), Signal()
        # Stage 2: products and the rounded bias.
        product_width = self.in_width + self.mul_width
        product2 = Signal(data.ArrayLayout(signed(product_width), self.lanes))
        bias2 = Signal(data.ArrayLayout(signed(rom_bias_width), self.lanes))
        valid2, last2 = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload.data), valid1.eq(self.i.valid),
                         last1.eq(self.i.payload.last)]
            m.d.sync += [product2[j].eq(x1[j] * constants.mul[j]) for j in range(self.lanes)]
            m.d.sync += [bias2.eq(constants.bias), valid2.eq(valid1), last2.eq(last1)]
            m.d.sync += [self.o.payload.data[j].eq(
                saturate((product2[j] + bias2[j]) >> self.shift, self.out_width))
                for j in range(self.lanes)]
            m.d.sync += [self.o.payload.last.eq(last2), self.o.valid.eq(valid2)]
        return m
