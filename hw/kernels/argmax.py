"""The class of each image: the index of its largest logit (first one on ties)."""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.streams.fixed_point_stream import fixed_point_layout

__all__ = ["ArgMax"]


class ArgMax(wiring.Component):
    """``argmax`` over the ``classes`` logits of an image, as ``torch.argmax`` (first maximum).

    Parameters
    ----------
    classes, lanes : int
        Logits per image and per input word (``lanes`` divides ``classes``).
    width : int
        Signed logit width.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(width, lanes)))
        ``classes/lanes`` words per image (counted; ``last`` is not read).
    o : Out(stream.Signature(StructLayout({"data": unsigned(bits), "last": 1})))
        One word per image, ``last`` = 1.

    One word per cycle; latency 1 cycle from the image's final word.
    """

    def __init__(self, *, classes: int, lanes: int, width: int):
        self.classes = check_int(classes, "classes", 2)
        self.lanes = check_lanes(lanes, "lanes", self.classes, "classes")
        self.width = check_width(width, "width")
        self.index_bits = self.index_bits_for(self.classes)
        self.out_layout = layout = data.StructLayout({"data": unsigned(self.index_bits),
                                                      "last": 1})
        super().__init__({"i": In(stream.Signature(fixed_point_layout(self.width, self.lanes))),
                          "o": Out(stream.Signature(layout))})

    @staticmethod
    def index_bits_for(classes: int) -> int:
        """Bits of a class index among ``classes``."""
        return (classes - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from the image's final logit word to its class word being valid."""
        return 1

    def model(self, logits: Any) -> torch.Tensor:
        """The class of each image, ``int64 [B]``, for logits ``[B, classes]``: the first
        maximum, as ``golden.intref.int_network.int_predict``."""
        return torch.as_tensor(logits).to(torch.int64).argmax(dim=-1)

    def elaborate(self, platform) -> Module:
        m = Module()
        words = self.classes // self.lanes
        word = Signal(range(words))
        best = Signal(signed(self.width))
        best_index = Signal(unsigned(self.index_bits))
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        value, index = best, best_index
        for lane in range(self.lanes):
            candidate = self.i.payload.data[lane]
            position = word * self.lanes + lane
            better = candidate > value
            if lane == 0:  # the image's first logit starts the search
                better = better | (word == 0)
            next_value = Signal(signed(self.width), name=f"best_after{lane}")
            next_index = Signal(unsigned(self.index_bits), name=f"index_after{lane}")
            m.d.comb += [next_value.eq(Mux(better, candidate, value)),
                         next_index.eq(Mux(better, position, index))]
            value, index = next_value, next_index
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [best.eq(value), best_index.eq(index)]
            with m.If(word == words - 1):
                m.d.sync += [word.eq(0), self.o.valid.eq(1), self.o.payload.data.eq(index),
                             self.o.payload.last.eq(1)]
            with m.Else():
                m.d.sync += word.eq(word + 1)
        return m
