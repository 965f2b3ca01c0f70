"""Sign / RSign unit: per-channel threshold compare from a fixed-point stream to a binary one.

Bit ``c`` is ``x_c >= thresh_c`` where ``flip_c = 0`` and ``x_c <= thresh_c`` where
``flip_c = 1`` (``binaryvit.golden.intref.threshold``); bit 1 ↔ +1. A BatchNorm / scale /
bias in front of a sign folds into ``thresh`` (and into ``flip`` when its scale is negative).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.golden import intref
from binaryvit.hw.kernels.constant_rom import constant_rom, row_counter
from binaryvit.hw.streams.fixed_point_stream import (
    binary_layout,
    decode_binary,
    encode_binary,
    encode_fixed_point,
    fixed_point_layout,
)
from binaryvit.hw.kernels.parameter_checks import (
    check_bits,
    check_declared_constants,
    check_int,
    check_lanes,
    check_width,
)

__all__ = ["ThresholdUnit"]


class ThresholdUnit(wiring.Component):
    """Fixed-point stream in, binary stream out: one compare per channel.

    Parameters
    ----------
    channels : int
        Channels ``C`` per token.
    lanes : int
        Channels per word on both sides (the output's ``simd``); must divide ``channels``.
    in_width : int
        Input element width (signed, 2…63).
    thresh : int sequence ``[C]``
        Per-channel thresholds.
    flip : 0/1 sequence ``[C]``, optional
        Per-channel compare direction (default all 0: ``x >= thresh``).
    thresh_width : int, optional
        Declared signed width of ``thresh``; default the smallest that holds it.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(in_width, lanes)))
    o : Out(stream.Signature(binary_layout(lanes)))
        Bit ``j`` of ``data`` is channel ``word_index_within_token·lanes + j``.

    Timing: ``latency`` = 2 cycles (input register + threshold ROM, output register); one
    word per cycle without back-pressure; a global stall holds both stages while the
    output waits. The channel-group counter wraps every ``channels / lanes`` words.
    """

    def __init__(self, *, channels: int, lanes: int, in_width: int,
                 thresh: Sequence[int] | torch.Tensor, flip: Sequence[int] | torch.Tensor | None = None,
                 thresh_width: int | None = None):
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.thresh, self.thresh_width = check_declared_constants(thresh, "thresh", (self.channels,),
                                                                  thresh_width)
        self.flip = (torch.zeros(self.channels, dtype=torch.int64) if flip is None
                     else check_bits(flip, "flip", (self.channels,)))
        self.groups = self.channels // self.lanes
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(binary_layout(self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output word (no back-pressure)."""
        return 2

    def model(self, x: Any) -> torch.Tensor:
        """The expected bits for ``x[..., C]``: ``intref.threshold`` with this unit's constants."""
        return intref.threshold(x, self.thresh, self.flip)

    def encode_input(self, x: Any) -> list[int]:
        """Stream words for ``x`` ``[tokens, C]`` or ``[images, tokens, C]``."""
        return encode_fixed_point(x, self.in_width, self.lanes)

    def encode_output(self, bits: Any) -> list[int]:
        return encode_binary(bits, self.lanes)

    def decode_output(self, words: Sequence[int]) -> torch.Tensor:
        """``[images, tokens, C]`` bool tensor from output words."""
        return decode_binary(words, self.lanes, self.channels)

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        group = row_counter(m, self.i.valid & advance, self.groups, "group")
        constants = constant_rom(
            m, "constants",
            {"thresh": (self.thresh, signed(self.thresh_width)), "flip": (self.flip, unsigned(1))},
            lanes, addr=group, en=advance)

        x1 = Signal(data.ArrayLayout(signed(self.in_width), lanes))
        valid1, last1 = Signal(name="valid1"), Signal(name="last1")
        th, flip = constants.thresh, constants.flip

        def compare(j: int):
            # A one-row table gives plain ints: pick the compare here, not with a mux.
            if isinstance(flip[j], int):
                return x1[j] <= th[j] if flip[j] else x1[j] >= th[j]
            return Mux(flip[j], x1[j] <= th[j], x1[j] >= th[j])

        bits = Cat(compare(j) for j in range(lanes))
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload.data), valid1.eq(self.i.valid),
                         last1.eq(self.i.payload.last)]
            m.d.sync += [self.o.payload.data.eq(bits), self.o.payload.last.eq(last1),
                         self.o.valid.eq(valid1)]
        return m
