"""``StripAvgPool``: 1×k and k×1 average pooling, stride 1, zero padding (k−1)/2, streaming.

The multi-pooling branches of the BinaryViT MLP (1×3, 3×1, 1×5, 5×1). Integer definition:
``binaryvit.golden.intref.avgpool2d`` with stride 1 and padding ``(k−1)/2`` on the long side
of the window; padding is zero and counts in the divisor (``mul / 2^shift ≈ 1/k``).
"""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.golden import intref
from binaryvit.hw.fixed_point_stream import FixedPointStreamCodec, fixed_point_layout
from binaryvit.hw.multiply_round_shift import check_scale, multiply_round_shift, sum_width
from binaryvit.hw.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.position_counter import position_counter


class StripAvgPool(FixedPointStreamCodec, wiring.Component):
    """Average pooling over a ``kernel_h × kernel_w`` strip (one side 1, the other odd k ≥ 3).

    Output token ``(i, j)`` (same ``H × W`` grid) is ``saturate(round_shift(S·mul, shift),
    out_width)`` per channel, ``S`` the sum of the ``k`` inputs centred on ``(i, j)`` along
    the row (1×k) or the column (k×1), inputs outside the grid counting as zero.

    Parameters
    ----------
    height, width : int
        The token grid.
    channels, lanes : int
        Channels per token and per stream word (``lanes`` divides ``channels``).
    kernel_h, kernel_w : int
        ``(1, k)`` pools along rows, ``(k, 1)`` along columns; ``k`` odd, ``3 ≤ k``.
    in_width, out_width : int
        Signed element widths of the input and output words, in ``[2, 63]``.
    mul, shift : int
        The divisor as ``mul / 2^shift``; ``shift`` in ``[0, 62]``.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(in_width, lanes)))``
        ``H·W·C/lanes`` words per image in raster order; ``last`` is not used.
    o : ``Out(stream.Signature(fixed_point_layout(out_width, lanes)))``
        ``H·W·C/lanes`` words per image in raster order; ``last`` on the final one.

    A delay line keeps the previous ``k − 1`` inputs of each word position along the
    pooled axis: ``C/lanes`` entries for 1×k, ``W·C/lanes`` entries (``k − 1`` token rows)
    for k×1, each ``(k − 1)·lanes`` elements wide, in a memory with a synchronous,
    write-transparent read port (block RAM): a step issues the read of its entry, and the
    next cycle sums the window and writes the shifted entry back. Output ``(i, j)`` leaves
    with input ``(i, j + p)`` (1×k) or ``(i + p, j)`` (k×1), ``p = (k − 1)/2``; where that
    input lies beyond the grid, the kernel flushes with zeros on its own, taking no input
    meanwhile.
    Cycles per image with no stalls: ``H·(W + p)·C/lanes`` (1×k) or ``(H + p)·W·C/lanes``
    (k×1), against ``H·W·C/lanes`` words in. Latency: 2 cycles from the input word that
    completes a window (or the flush step standing in for it) to the output word.
    """

    def __init__(self, *, height: int, width: int, channels: int, lanes: int, kernel_h: int,
                 kernel_w: int, in_width: int, out_width: int, mul: int, shift: int):
        self.height = check_int(height, "height", 1)
        self.width = check_int(width, "width", 1)
        self.kernel_h = check_int(kernel_h, "kernel_h", 1)
        self.kernel_w = check_int(kernel_w, "kernel_w", 1)
        if (self.kernel_h == 1) == (self.kernel_w == 1):
            raise ConfigError(f"kernel_h, kernel_w: exactly one must be 1 (a 1×k or k×1 strip), "
                              f"got {self.kernel_h}×{self.kernel_w}")
        self.vertical = self.kernel_w == 1
        self.length = self.kernel_h if self.vertical else self.kernel_w
        name = "kernel_h" if self.vertical else "kernel_w"
        if self.length % 2 == 0:
            raise ConfigError(f"{name}: the strip length must be odd (3, 5, 7, …) so the window "
                              f"centres on its token, got {self.length}")
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.out_width = check_width(out_width, "out_width")
        self.mul, self.shift = check_scale(mul, shift)
        self.pad = (self.length - 1) // 2
        self.words_per_token = self.channels // self.lanes
        self.sum_width = sum_width(self.in_width, self.length)
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from the input word that completes a window to its output word being valid."""
        return 2

    @property
    def words_per_image(self) -> int:
        """Input and output words per image (the grid does not change)."""
        return self.height * self.width * self.words_per_token

    @property
    def cycles_per_image(self) -> int:
        """Cycles per image with no bubbles or back-pressure, flush steps included."""
        if self.vertical:
            return (self.height + self.pad) * self.width * self.words_per_token
        return self.height * (self.width + self.pad) * self.words_per_token

    def model(self, x: Any) -> torch.Tensor:
        """Expected output tokens ``[B, H·W, C]`` for input tokens ``x[B, H·W, C]``."""
        grid = intref.tokens_to_grid(x, self.height, self.width)
        pooled = intref.avgpool2d(grid, self.kernel_h, self.kernel_w, 1,
                                  (self.kernel_h - 1) // 2, (self.kernel_w - 1) // 2,
                                  self.mul, self.shift, self.out_width)
        return intref.grid_to_tokens(pooled)

    def elaborate(self, platform):
        m = Module()
        cw, k, p = self.words_per_token, self.length, self.pad
        element = data.ArrayLayout(signed(self.in_width), self.lanes)
        history_layout = data.ArrayLayout(element, k - 1)

        # Step counters: outer × middle × word, with the pooled axis extended by p flush
        # steps (rows for k×1, columns for 1×k) that stand in for inputs beyond the grid.
        if self.vertical:
            outer_extent, middle_extent, axis_length = self.height + p, self.width, self.height
        else:
            outer_extent, middle_extent, axis_length = self.height, self.width + p, self.width
        word = position_counter(cw, "word")
        middle = position_counter(middle_extent, "middle")
        outer = position_counter(outer_extent, "outer")
        axis = outer if self.vertical else middle

        m.submodules.history = history = Memory(
            shape=history_layout, depth=max(self.width * cw if self.vertical else cw, 2), init=[])
        write = history.write_port()
        # Synchronous read (block RAM); transparent, because with one word per token a 1×k
        # step reads the entry the previous step is writing.
        read = history.read_port(transparent_for=(write,))

        # Stage A: the next step (an input word, or a flush step standing in for an input
        # beyond the grid); issuing it reads its delay-line entry. Stage B: the step with
        # its entry: the window sum goes to the output register, the shifted entry back.
        flushing = Signal()
        b_valid = Signal()
        b_newest = Signal(element)
        b_inside = Signal(k - 1)  # bit d: the input d + 1 steps back lies inside the grid
        b_emits = Signal()
        b_last = Signal()
        b_address = Signal.like(read.addr)
        b_fires = Signal()
        advance = Signal()
        issue = Signal()
        m.d.comb += [
            flushing.eq(axis >= axis_length),
            b_fires.eq(b_valid & (~b_emits | ~self.o.valid | self.o.ready)),
            advance.eq(~b_valid | b_fires),
            self.i.ready.eq(advance & ~flushing),
            issue.eq(advance & (flushing | self.i.valid)),
            read.en.eq(advance),
            read.addr.eq(middle * cw + word if self.vertical else word),
        ]

        # Before the axis start the entry holds the previous row's or image's data, which
        # must count as zero padding: b_inside masks it.
        m.d.comb += [
            write.addr.eq(b_address),
            write.en.eq(b_fires),
            write.data[0].eq(b_newest),
        ]
        for delay in range(1, k - 1):
            m.d.comb += write.data[delay].eq(read.data[delay - 1])
        sums = Signal(data.ArrayLayout(signed(self.sum_width), self.lanes))
        for lane in range(self.lanes):
            terms = [b_newest[lane]] + [Mux(b_inside[delay], read.data[delay][lane], 0)
                                        for delay in range(k - 1)]
            m.d.comb += sums[lane].eq(sum(terms))
        averages = [multiply_round_shift(m, sums[lane], mul=self.mul, shift=self.shift,
                                         width=self.out_width, name=f"average_{lane}")
                    for lane in range(self.lanes)]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(b_fires & b_emits):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.last.eq(b_last)]
            for lane, value in enumerate(averages):
                m.d.sync += self.o.payload.data[lane].eq(value)

        with m.If(advance):
            m.d.sync += b_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [
                b_newest.eq(Mux(flushing, 0, self.i.payload.data)),
                b_inside.eq(Cat(axis > delay for delay in range(k - 1))),
                b_emits.eq(axis >= p),
                b_last.eq((outer == outer_extent - 1) & (middle == middle_extent - 1)
                          & (word == cw - 1)),
                b_address.eq(read.addr),
                word.eq(word + 1),
            ]
            with m.If(word == cw - 1):
                m.d.sync += [word.eq(0), middle.eq(middle + 1)]
                with m.If(middle == middle_extent - 1):
                    m.d.sync += [middle.eq(0), outer.eq(outer + 1)]
                    with m.If(outer == outer_extent - 1):
                        m.d.sync += outer.eq(0)
        return m
