"""``GlobalAvgPool``: the mean over all tokens of an image, per channel, streaming.

The classifier head's GAP. Integer definition: ``binaryvit.golden.intref.global_avgpool``
(``mul / 2^shift ≈ 1/T``).
"""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.golden import intref
from binaryvit.hw.fixed_point_stream import FixedPointStreamCodec, fixed_point_layout
from binaryvit.hw.multiply_round_shift import check_scale, multiply_round_shift, sum_width
from binaryvit.hw.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.position_counter import position_counter


class GlobalAvgPool(FixedPointStreamCodec, wiring.Component):
    """Per-channel ``saturate(round_shift(S·mul, shift), out_width)``, ``S`` the sum over the
    ``tokens`` tokens of an image; one output token per image.

    Parameters
    ----------
    tokens : int
        Tokens per image (``T ≥ 1``).
    channels, lanes : int
        Channels per token and per stream word (``lanes`` divides ``channels``).
    in_width, out_width : int
        Signed element widths of the input and output words, in ``[2, 63]``.
    mul, shift : int
        The divisor as ``mul / 2^shift``; ``shift`` in ``[0, 62]``.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(in_width, lanes)))``
        ``T·C/lanes`` words per image; ``last`` is not used (the kernel counts tokens).
    o : ``Out(stream.Signature(fixed_point_layout(out_width, lanes)))``
        ``C/lanes`` words per image (the pooled token); ``last`` on the final one.

    The ``C/lanes`` running sums (``in_width + ⌈log2 T⌉`` bits per lane) sit in a small
    memory with a synchronous, write-transparent read port (block RAM): taking a word
    issues the read of its sum, and the next cycle adds and writes back. Output word ``w``
    leaves 2 cycles (``latency``) after input word ``w`` of the last token, so the kernel
    takes one input word per cycle with no stall of its own; back-pressure stalls the
    input only behind words of the last token.
    """

    def __init__(self, *, tokens: int, channels: int, lanes: int, in_width: int,
                 out_width: int, mul: int, shift: int):
        self.tokens = check_int(tokens, "tokens", 1)
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.out_width = check_width(out_width, "out_width")
        self.mul, self.shift = check_scale(mul, shift)
        self.words_per_token = self.channels // self.lanes
        self.sum_width = sum_width(self.in_width, self.tokens)
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input word of the last token to the matching output word being valid."""
        return 2

    @property
    def input_words_per_image(self) -> int:
        return self.tokens * self.words_per_token

    @property
    def output_words_per_image(self) -> int:
        return self.words_per_token

    def model(self, x: Any) -> torch.Tensor:
        """Expected output ``[B, 1, C]`` (one token per image) for input ``x[B, T, C]``."""
        return intref.global_avgpool(x, self.mul, self.shift, self.out_width).unsqueeze(1)

    def elaborate(self, platform):
        m = Module()
        cw = self.words_per_token
        sums_layout = data.ArrayLayout(signed(self.sum_width), self.lanes)
        m.submodules.sums = sums_memory = Memory(shape=sums_layout, depth=max(cw, 2), init=[])
        write = sums_memory.write_port()
        # Synchronous read (block RAM); transparent, because with one word per token the
        # next word reads the sum being written.
        read = sums_memory.read_port(transparent_for=(write,))

        # Stage A: the position of the next input word; taking it issues the read of its
        # running sum. Stage B: the word with its sum, added, then written back or (last
        # token) scaled into the output register.
        word = position_counter(cw, "word")
        token = position_counter(self.tokens, "token")
        b_valid = Signal()
        b_data = Signal.like(self.i.payload.data)
        b_first = Signal()
        b_final = Signal()
        b_last = Signal()
        b_word = Signal.like(word)
        b_fires = Signal()
        advance = Signal()
        m.d.comb += [
            b_fires.eq(b_valid & (~b_final | ~self.o.valid | self.o.ready)),
            advance.eq(~b_valid | b_fires),
            self.i.ready.eq(advance),
            read.en.eq(advance),
            read.addr.eq(word),
        ]

        sums = Signal(sums_layout)
        for lane in range(self.lanes):
            m.d.comb += sums[lane].eq(Mux(b_first, 0, read.data[lane]) + b_data[lane])
        m.d.comb += [
            write.addr.eq(b_word),
            write.data.eq(sums),
            write.en.eq(b_fires & ~b_final),
        ]
        averages = [multiply_round_shift(m, sums[lane], mul=self.mul, shift=self.shift,
                                         width=self.out_width, name=f"average_{lane}")
                    for lane in range(self.lanes)]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(b_fires & b_final):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.last.eq(b_last)]
            for lane, value in enumerate(averages):
                m.d.sync += self.o.payload.data[lane].eq(value)

        with m.If(advance):
            m.d.sync += b_valid.eq(self.i.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                b_data.eq(self.i.payload.data),
                b_first.eq(token == 0),
                b_final.eq(token == self.tokens - 1),
                b_last.eq(word == cw - 1),
                b_word.eq(word),
                word.eq(word + 1),
            ]
            with m.If(word == cw - 1):
                m.d.sync += [word.eq(0), token.eq(token + 1)]
                with m.If(token == self.tokens - 1):
                    m.d.sync += token.eq(0)
        return m
