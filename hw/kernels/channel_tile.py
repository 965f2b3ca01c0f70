"""Channel tiling: each token's ``C`` channels repeated ``copies`` times (the MLP shortcut)."""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.streams.fixed_point_stream import fixed_point_layout

__all__ = ["ChannelTile"]


class ChannelTile(wiring.Component):
    """Output token = input token's channels ``copies`` times: channel ``c`` of the output is
    input channel ``c mod C`` (``intref``-free: pure wiring of ``x.repeat(1, 1, copies)``).

    Parameters
    ----------
    channels, lanes : int
        Input channels per token ``C`` and per word (``lanes`` divides ``C``).
    width : int
        Signed element width.
    copies : int
        ``≥ 2``.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(width, lanes)))
    o : Out(stream.Signature(fixed_point_layout(width, lanes)))
        ``copies·C/lanes`` words per token; ``last`` on the final word of a token whose
        final input word had it.

    The first copy passes through (and is kept in ``C/lanes`` registers); the others
    replay the registers with the input stalled: ``copies·C/lanes`` cycles per token,
    one word per cycle. Latency 1 cycle (output register).
    """

    def __init__(self, *, channels: int, lanes: int, width: int, copies: int):
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.width = check_width(width, "width")
        self.copies = check_int(copies, "copies", 2)
        self.words = self.channels // self.lanes
        layout = fixed_point_layout(self.width, self.lanes)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @property
    def latency(self) -> int:
        """Cycles from an input word to its pass-through copy being valid (output register)."""
        return 1

    def model(self, x: Any) -> torch.Tensor:
        """The output tokens ``[B, T, copies·C]`` for input tokens ``x[B, T, C]``."""
        return torch.as_tensor(x).to(torch.int64).repeat(1, 1, self.copies)

    def elaborate(self, platform) -> Module:
        m = Module()
        bits = self.width * self.lanes
        # A ring of registers instead of an indexed memory: storing shifts a word in,
        # replaying rotates by one word, and after ``words`` steps the ring is back in order.
        ring = [Signal(bits, name=f"word{k}") for k in range(self.words)]
        word = Signal(range(self.words)) if self.words > 1 else None
        copy = Signal(range(self.copies))
        token_last = Signal()
        free = ~self.o.valid | self.o.ready
        end_word = (word == self.words - 1) if word is not None else 1
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.i.ready.eq(free & (copy == 0))
        with m.If(copy == 0):
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [ring[-1].eq(self.i.payload.data.as_value()),
                             *(ring[k].eq(ring[k + 1]) for k in range(self.words - 1)),
                             self.o.payload.data.eq(self.i.payload.data), self.o.valid.eq(1),
                             self.o.payload.last.eq(0)]
                self._advance(m, word, end_word, copy)
                with m.If(end_word):
                    m.d.sync += token_last.eq(self.i.payload.last)
        with m.Elif(free):
            final_copy = copy == self.copies - 1
            m.d.sync += [self.o.payload.data.as_value().eq(ring[0]), self.o.valid.eq(1),
                         self.o.payload.last.eq(token_last & final_copy & end_word),
                         ring[-1].eq(ring[0]),
                         *(ring[k].eq(ring[k + 1]) for k in range(self.words - 1))]
            self._advance(m, word, end_word, copy)
        return m

    def _advance(self, m: Module, word, end_word, copy) -> None:
        if word is not None:
            m.d.sync += word.eq(Mux(end_word, 0, word + 1))
        with m.If(end_word):
            m.d.sync += copy.eq(Mux(copy == self.copies - 1, 0, copy + 1))
