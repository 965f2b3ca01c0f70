"""``SpatialAvgPool``: r×r average pooling with stride r over a token grid, streaming.

Used for the spatial-reduction (SR) pooling of attention keys/values and the 2×2
patch-merge shortcut. Integer definition: ``binaryvit.golden.intref.avgpool2d`` with
``kh = kw = stride = r`` and no padding.
"""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.golden import intref
from binaryvit.hw.fixed_point_stream import FixedPointStreamCodec, fixed_point_layout
from binaryvit.hw.multiply_round_shift import check_scale, multiply_round_shift, sum_width
from binaryvit.hw.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.position_counter import position_counter


class SpatialAvgPool(FixedPointStreamCodec, wiring.Component):
    """Average pooling of an ``H × W`` token grid over ``r × r`` windows with stride ``r``.

    Output token ``(i, j)`` of the ``(H/r) × (W/r)`` grid is
    ``saturate(round_shift(S·mul, shift), out_width)`` per channel, ``S`` the exact sum of
    input tokens ``(i·r + a, j·r + b)``, ``0 ≤ a, b < r`` (``mul / 2^shift ≈ 1/r²``).

    Parameters
    ----------
    height, width : int
        Input grid; both multiples of ``factor``.
    channels, lanes : int
        Channels per token and per stream word (``lanes`` divides ``channels``).
    factor : int
        ``r ≥ 2``: window side and stride.
    in_width, out_width : int
        Signed element widths of the input and output words, in ``[2, 63]``.
    mul, shift : int
        The divisor as ``mul / 2^shift``; ``shift`` in ``[0, 62]``.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(in_width, lanes)))``
        ``H·W·C/lanes`` words per image, tokens in raster order; ``last`` is not used
        (the kernel counts positions).
    o : ``Out(stream.Signature(fixed_point_layout(out_width, lanes)))``
        ``(H/r)·(W/r)·C/lanes`` words per image; ``last`` on the final one.

    Window sums are accumulated exactly (``in_width + ⌈log2 r²⌉`` bits per lane) in a row
    accumulator of ``(W/r)·C/lanes`` words, a memory with a synchronous, write-transparent
    read port (block RAM): taking a word issues the read of its row sum, and the next cycle
    adds and writes back. Throughput: one input word per cycle, with no stall of its own.
    Latency: 2 cycles from the window's last input word to its output word. Back-pressure
    stalls the input only behind a word that completes a window.
    """

    def __init__(self, *, height: int, width: int, channels: int, lanes: int, factor: int,
                 in_width: int, out_width: int, mul: int, shift: int):
        self.factor = check_int(factor, "factor", 2)
        self.height = check_int(height, "height", 1)
        self.width = check_int(width, "width", 1)
        for side, length in (("height", self.height), ("width", self.width)):
            if length % self.factor:
                divisors = [d for d in range(2, length + 1) if length % d == 0]
                raise ConfigError(f"factor: must divide the grid {side} = {length}; valid "
                                  f"values are {divisors}, got {self.factor}")
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.out_width = check_width(out_width, "out_width")
        self.mul, self.shift = check_scale(mul, shift)
        self.words_per_token = self.channels // self.lanes
        self.out_grid_height = self.height // self.factor
        self.out_grid_width = self.width // self.factor
        self.sum_width = sum_width(self.in_width, self.factor * self.factor)
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from the input word that completes a window to its output word being valid."""
        return 2

    @property
    def input_words_per_image(self) -> int:
        return self.height * self.width * self.words_per_token

    @property
    def output_words_per_image(self) -> int:
        return self.out_grid_height * self.out_grid_width * self.words_per_token

    def model(self, x: Any) -> torch.Tensor:
        """Expected output tokens ``[B, (H/r)·(W/r), C]`` for input tokens ``x[B, H·W, C]``."""
        grid = intref.tokens_to_grid(x, self.height, self.width)
        pooled = intref.avgpool2d(grid, self.factor, self.factor, self.factor, 0, 0,
                                  self.mul, self.shift, self.out_width)
        return intref.grid_to_tokens(pooled)

    def elaborate(self, platform):
        m = Module()
        r, cw = self.factor, self.words_per_token
        sums_layout = data.ArrayLayout(signed(self.sum_width), self.lanes)
        m.submodules.row_sums = row_sums = Memory(
            shape=sums_layout, depth=max(self.out_grid_width * cw, 2), init=[])
        write = row_sums.write_port()
        # Synchronous read (block RAM). Transparent, because the word read right after a
        # write may be the same row sum (one word per token, two tokens in a window row).
        read = row_sums.read_port(transparent_for=(write,))

        # Stage A: the position of the next input word; taking it issues the read of its
        # row sum. Stage B: the word with its row sum, added, then written back or scaled
        # into the output register.
        word = position_counter(cw, "word")
        column = position_counter(self.width, "column")
        row = position_counter(self.height, "row")
        column_in_window = position_counter(r, "column_in_window")
        row_in_window = position_counter(r, "row_in_window")
        out_column = position_counter(self.out_grid_width, "out_column")

        b_valid = Signal()
        b_data = Signal.like(self.i.payload.data)
        b_starts = Signal()
        b_completes = Signal()
        b_last = Signal()
        b_address = Signal.like(read.addr)
        b_fires = Signal()
        advance = Signal()
        m.d.comb += [
            b_fires.eq(b_valid & (~b_completes | ~self.o.valid | self.o.ready)),
            advance.eq(~b_valid | b_fires),
            self.i.ready.eq(advance),
            read.en.eq(advance),
            read.addr.eq(out_column * cw + word),
        ]

        sums = Signal(sums_layout)
        for lane in range(self.lanes):
            m.d.comb += sums[lane].eq(Mux(b_starts, 0, read.data[lane]) + b_data[lane])
        m.d.comb += [
            write.addr.eq(b_address),
            write.data.eq(sums),
            write.en.eq(b_fires & ~b_completes),
        ]
        averages = [multiply_round_shift(m, sums[lane], mul=self.mul, shift=self.shift,
                                         width=self.out_width, name=f"average_{lane}")
                    for lane in range(self.lanes)]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(b_fires & b_completes):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.last.eq(b_last)]
            for lane, value in enumerate(averages):
                m.d.sync += self.o.payload.data[lane].eq(value)

        with m.If(advance):
            m.d.sync += b_valid.eq(self.i.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                b_data.eq(self.i.payload.data),
                b_starts.eq((row_in_window == 0) & (column_in_window == 0)),
                b_completes.eq((row_in_window == r - 1) & (column_in_window == r - 1)),
                b_last.eq((row == self.height - 1) & (column == self.width - 1) & (word == cw - 1)),
                b_address.eq(read.addr),
                word.eq(word + 1),
            ]
            with m.If(word == cw - 1):
                m.d.sync += [word.eq(0), column.eq(column + 1),
                             column_in_window.eq(column_in_window + 1)]
                with m.If(column_in_window == r - 1):
                    m.d.sync += [column_in_window.eq(0), out_column.eq(out_column + 1)]
                with m.If(column == self.width - 1):
                    m.d.sync += [column.eq(0), out_column.eq(0), row.eq(row + 1),
                                 row_in_window.eq(row_in_window + 1)]
                    with m.If(row_in_window == r - 1):
                        m.d.sync += row_in_window.eq(0)
                    with m.If(row == self.height - 1):
                        m.d.sync += row.eq(0)
        return m
