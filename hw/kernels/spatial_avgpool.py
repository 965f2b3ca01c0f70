"""``SpatialAvgPool``: r×r average pooling with stride r over a token grid, streaming.

Used for the spatial-reduction (SR) pooling of attention keys/values and the 2×2
patch-merge shortcut. Integer definition: ``binaryvit.golden.intref.avgpool2d`` with
``kh = kw = stride = r`` and no padding.
"""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Module

from binaryvit.errors import ConfigError
from binaryvit.golden import intref
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.kernels.average_pool import AveragePool, accumulate_windows
from binaryvit.hw.kernels.multiply_round_shift import sum_width
from binaryvit.hw.kernels.parameter_checks import check_int
from binaryvit.hw.kernels.position_counter import position_counter


class SpatialAvgPool(AveragePool):
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
                raise ConfigError(f"factor: must divide the grid {side} = {length}; valid "
                                  f"values are {divisors(length)[1:]}, got {self.factor}")
        super().__init__(channels=channels, lanes=lanes, in_width=in_width, out_width=out_width,
                         mul=mul, shift=shift)
        self.out_grid_height = self.height // self.factor
        self.out_grid_width = self.width // self.factor

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
        # The position of the next input word; its row sum is one of (W/r)·C/lanes.
        word = position_counter(cw, "word")
        column = position_counter(self.width, "column")
        row = position_counter(self.height, "row")
        column_in_window = position_counter(r, "column_in_window")
        row_in_window = position_counter(r, "row_in_window")
        out_column = position_counter(self.out_grid_width, "out_column")
        accumulate_windows(
            m, self, sum_width=sum_width(self.in_width, r * r), entries=self.out_grid_width * cw,
            address=out_column * cw + word,
            starts=(row_in_window == 0) & (column_in_window == 0),
            completes=(row_in_window == r - 1) & (column_in_window == r - 1),
            last=(row == self.height - 1) & (column == self.width - 1) & (word == cw - 1))

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += word.eq(word + 1)
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
