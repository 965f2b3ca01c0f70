"""RPReLU in fixed point: a per-channel shift, two slopes and a second shift, as
``binaryvit.golden.intref.rprelu``::

    t = x + pre_bias_c;  m = mul_pos_c if t >= 0 else mul_neg_c
    y = saturate(round_shift(m·t + post_bias_c, shift), out_width)
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Module, Mux, Signal, signed
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

__all__ = ["RPReLUUnit"]

IntConstants = Sequence[int] | torch.Tensor


class RPReLUUnit(FixedPointStreamCodec, wiring.Component):
    """Per-channel RPReLU on a fixed-point stream, ``lanes`` channels per word.

    Parameters
    ----------
    channels, lanes : int
        Channels per token ``C``; channels per word (must divide ``C``).
    in_width, out_width : int
        Signed element widths (2…63) of input and output; results saturate to ``out_width``.
    pre_bias, mul_pos, mul_neg, post_bias : int sequences ``[C]``
        The per-channel constants (``post_bias`` in the product's format).
    shift : int
        Right shift with rounding half up, 0…62.
    pre_bias_width, mul_width, post_bias_width : int, optional
        Declared signed widths (``mul_width`` covers both slopes); default the smallest
        that holds the constants; a constant outside its declared width raises ``ConfigError``.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(in_width, lanes)))
    o : Out(stream.Signature(fixed_point_layout(out_width, lanes)))

    Arithmetic: ``t`` has ``max(in_width, pre_bias_width) + 1`` bits, ``m·t`` that plus
    ``mul_width``; the rounding constant ``2^(shift−1)`` is folded into the post-bias ROM;
    nothing wraps before the final clamp. ``t = 0`` takes ``mul_pos``.

    Timing: ``latency`` = 4 cycles (input register + pre-bias ROM, ``t`` register + slope
    ROM, product register, output register); one word per cycle without back-pressure;
    a global stall holds every stage while the output waits. The channel-group counter
    wraps every ``channels / lanes`` words (a stream is whole tokens).
    """

    def __init__(self, *, channels: int, lanes: int, in_width: int, pre_bias: IntConstants,
                 mul_pos: IntConstants, mul_neg: IntConstants, post_bias: IntConstants, shift: int,
                 out_width: int, pre_bias_width: int | None = None, mul_width: int | None = None,
                 post_bias_width: int | None = None):
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.shift = check_shift(shift)
        self.out_width = check_width(out_width, "out_width")
        shape = (self.channels,)
        self.pre_bias, self.pre_bias_width = check_declared_constants(pre_bias, "pre_bias", shape,
                                                                      pre_bias_width)
        self.mul_pos, pos_width = check_declared_constants(mul_pos, "mul_pos", shape, mul_width)
        self.mul_neg, neg_width = check_declared_constants(mul_neg, "mul_neg", shape, mul_width)
        self.mul_width = max(pos_width, neg_width)
        self.post_bias, self.post_bias_width = check_declared_constants(post_bias, "post_bias", shape,
                                                                        post_bias_width)
        self.groups = self.channels // self.lanes
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output word (no back-pressure)."""
        return 4

    def model(self, x: Any) -> torch.Tensor:
        """The expected output for ``x[..., C]``: ``intref.rprelu`` with this unit's constants."""
        return intref.rprelu(x, self.pre_bias, self.mul_pos, self.mul_neg, self.post_bias,
                             self.shift, self.out_width)

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        rounded_post = rounded_bias(self.post_bias, self.shift)
        post_width = signed_width_of(int(rounded_post.min()), int(rounded_post.max()))
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        group = row_counter(m, self.i.valid & advance, self.groups, "group")
        # The slope ROM's address: the group of the word now in stage 1.
        group1 = Signal(group.shape(), name="group1") if self.groups > 1 else group
        if self.groups > 1:
            with m.If(advance):
                m.d.sync += group1.eq(group)
        # Two ROMs read one stage apart, so each constant arrives where it is used and
        # the slopes need no pipeline registers of their own.
        pre = constant_rom(m, "pre_constants", {"pre_bias": (self.pre_bias, signed(self.pre_bias_width))},
                           lanes, addr=group, en=advance)
        slope = constant_rom(m, "slope_constants",
                             {"mul_pos": (self.mul_pos, signed(self.mul_width)),
                              "mul_neg": (self.mul_neg, signed(self.mul_width)),
                              "post_bias": (rounded_post, signed(post_width))},
                             lanes, addr=group1, en=advance)

        t_width = max(self.in_width, self.pre_bias_width) + 1
        x1 = Signal(data.ArrayLayout(signed(self.in_width), lanes))
        t2 = Signal(data.ArrayLayout(signed(t_width), lanes))
        product3 = Signal(data.ArrayLayout(signed(t_width + self.mul_width), lanes))
        post3 = Signal(data.ArrayLayout(signed(post_width), lanes))
        valid1, valid2, valid3 = Signal(), Signal(), Signal()
        last1, last2, last3 = Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload.data),
                         valid1.eq(self.i.valid), last1.eq(self.i.payload.last)]
            m.d.sync += [t2[j].eq(x1[j] + pre.pre_bias[j]) for j in range(lanes)]
            m.d.sync += [valid2.eq(valid1), last2.eq(last1)]
            m.d.sync += [product3[j].eq(
                Mux(t2[j] >= 0, slope.mul_pos[j], slope.mul_neg[j]) * t2[j])
                for j in range(lanes)]
            m.d.sync += [post3.eq(slope.post_bias), valid3.eq(valid2), last3.eq(last2)]
            m.d.sync += [self.o.payload.data[j].eq(
                saturate((product3[j] + post3[j]) >> self.shift, self.out_width))
                for j in range(lanes)]
            m.d.sync += [self.o.payload.last.eq(last3), self.o.valid.eq(valid3)]
        return m
