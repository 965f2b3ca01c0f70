"""Saturating adds on fixed-point streams: the residual connection and the position embedding.

``ResidualAdd`` adds two streams word by word; ``PositionEmbeddingAdd`` adds a constant per
(token, channel) from a ROM. Both compute ``binaryvit.golden.intref.residual_add``:
``saturate(a + b, out_width)``, operands in the same fixed-point format.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.golden import intref
from binaryvit.hw.kernels.constant_rom import constant_rom, row_counter
from binaryvit.hw.streams.fixed_point_stream import FixedPointStreamCodec, encode_fixed_point, fixed_point_layout
from binaryvit.hw.kernels.parameter_checks import (
    check_declared_constants,
    check_int,
    check_lanes,
    check_width,
    matrix_shape,
)
from binaryvit.hw.kernels.saturate import saturate

__all__ = ["ResidualAdd", "PositionEmbeddingAdd"]


class ResidualAdd(FixedPointStreamCodec, wiring.Component):
    """``o = saturate(i + residual, out_width)``, lane by lane, the two inputs in lock-step.

    Parameters
    ----------
    channels, lanes : int
        Channels per token; channels per word (must divide ``channels``).
    in_width : int
        Element width of ``i`` (signed, 2…63).
    out_width : int
        Output element width (signed, 2…63).
    residual_width : int, optional
        Element width of ``residual`` (default ``in_width``).

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(in_width, lanes)))
    residual : In(stream.Signature(fixed_point_layout(residual_width, lanes)))
    o : Out(stream.Signature(fixed_point_layout(out_width, lanes)))
        ``last`` is copied from ``i`` (``residual.last`` is not looked at).

    Timing: ``latency`` = 1 cycle (the adder and clamp feed the output register); one word
    per cycle without back-pressure. A word is taken from both inputs on the same cycle,
    only when both are valid and the output can move (``i.ready`` and ``residual.ready``
    depend on the other input's ``valid``, never on their own).
    """

    def __init__(self, *, channels: int, lanes: int, in_width: int, out_width: int,
                 residual_width: int | None = None):
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.residual_width = (self.in_width if residual_width is None
                               else check_width(residual_width, "residual_width"))
        self.out_width = check_width(out_width, "out_width")
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "residual": In(stream.Signature(fixed_point_layout(self.residual_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from the input transfer to its output word (no back-pressure)."""
        return 1

    def model(self, x: Any, residual: Any) -> torch.Tensor:
        """``intref.residual_add(x, residual, out_width)``."""
        return intref.residual_add(x, residual, self.out_width)

    def encode_residual(self, residual: Any) -> list[int]:
        """Words for port ``residual``."""
        return encode_fixed_point(residual, self.residual_width, self.lanes)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready),
                     self.i.ready.eq(advance & self.residual.valid),
                     self.residual.ready.eq(advance & self.i.valid)]
        a, b = self.i.payload.data, self.residual.payload.data
        with m.If(advance):
            m.d.sync += [self.o.payload.data[j].eq(saturate(a[j] + b[j], self.out_width))
                         for j in range(self.lanes)]
            m.d.sync += [self.o.payload.last.eq(self.i.payload.last),
                         self.o.valid.eq(self.i.valid & self.residual.valid)]
        return m


class PositionEmbeddingAdd(FixedPointStreamCodec, wiring.Component):
    """``o = saturate(i + embedding[token, c], out_width)`` with the embedding in a ROM.

    Parameters
    ----------
    embedding : int tensor ``[tokens, C]``
        One constant per (token, channel), in the input's fixed-point format.
    lanes : int
        Channels per word; must divide ``C``.
    in_width, out_width : int
        Signed element widths (2…63).
    embedding_width : int, optional
        Declared signed width of the embedding; default the smallest that holds it.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(in_width, lanes)))
    o : Out(stream.Signature(fixed_point_layout(out_width, lanes)))

    The ROM row counter walks ``tokens · C / lanes`` rows and wraps, so each image must
    have exactly ``tokens`` tokens (``last`` is passed through, not used for counting).

    Timing: ``latency`` = 2 cycles (input register + ROM read, output register); one word
    per cycle without back-pressure; a global stall holds both stages.
    """

    def __init__(self, *, embedding: Sequence[Sequence[int]] | torch.Tensor, lanes: int,
                 in_width: int, out_width: int, embedding_width: int | None = None):
        shape = matrix_shape(embedding, "embedding", "[tokens, C]")
        self.tokens, self.channels = shape
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.out_width = check_width(out_width, "out_width")
        self.embedding, self.embedding_width = check_declared_constants(embedding, "embedding", shape,
                                                                        embedding_width)
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output word (no back-pressure)."""
        return 2

    def model(self, x: Any) -> torch.Tensor:
        """``intref.residual_add(x, embedding, out_width)``; ``x`` is ``[tokens, C]`` or
        ``[images, tokens, C]`` (the embedding repeats per image)."""
        t = torch.as_tensor(x)
        embedding = self.embedding.expand(t.shape) if t.dim() == 3 else self.embedding
        return intref.residual_add(t, embedding, self.out_width)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        row = row_counter(m, self.i.valid & advance, self.tokens * self.channels // self.lanes, "row")
        table = constant_rom(
            m, "embedding", {"embedding": (self.embedding.reshape(-1), signed(self.embedding_width))},
            self.lanes, addr=row, en=advance)

        x1 = Signal(data.ArrayLayout(signed(self.in_width), self.lanes))
        valid1, last1 = Signal(name="valid1"), Signal(name="last1")
        with m.If(advance):
            m.d.sync += [x1.eq(self.i.payload.data), valid1.eq(self.i.valid),
                         last1.eq(self.i.payload.last)]
            m.d.sync += [self.o.payload.data[j].eq(
                saturate(x1[j] + table.embedding[j], self.out_width)) for j in range(self.lanes)]
            m.d.sync += [self.o.payload.last.eq(last1), self.o.valid.eq(valid1)]
        return m
