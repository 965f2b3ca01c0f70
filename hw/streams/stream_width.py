"""Re-packing a token stream into words of another width (lanes per word)."""
from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes
from binaryvit.hw.streams.fixed_point_stream import binary_layout, fixed_point_layout

__all__ = ["StreamWidthConverter", "element_layout"]

ELEMENT_KINDS = ("fixed", "binary", "pixel")


def element_layout(kind: str, width: int, lanes: int):
    """The stream payload of ``lanes`` elements: ``fixed`` (signed ``width``), ``binary``
    (``binary_layout``, width 1) or ``pixel`` (unsigned ``width``)."""
    if kind == "fixed":
        return fixed_point_layout(width, lanes)
    if kind == "pixel":
        return fixed_point_layout(width, lanes, is_signed=False)
    if kind == "binary":
        return binary_layout(lanes)
    raise ConfigError(f"kind must be one of {ELEMENT_KINDS}, got {kind!r}")


class StreamWidthConverter(wiring.Component):
    """``in_lanes`` elements per word in, ``out_lanes`` per word out, same element order.

    Parameters
    ----------
    kind : {"fixed", "binary", "pixel"}
        Element type (see ``element_layout``); ``width`` is ignored for ``binary``.
    width : int
        Element width in bits.
    channels : int
        Elements per token; both lane counts divide it, so no word straddles two tokens.
    in_lanes, out_lanes : int

    Members
    -------
    i : In(stream.Signature(element_layout(kind, width, in_lanes)))
    o : Out(stream.Signature(element_layout(kind, width, out_lanes)))
        ``last`` is set on the output word that ends with the final element of an input
        word that had ``last``.

    Structure: a splitter (``out_lanes`` divides ``in_lanes``) holds one input word and
    hands it out a piece per cycle; a gatherer (``in_lanes`` divides ``out_lanes``) fills
    one output register; other ratios go through ``gcd(in_lanes, out_lanes)`` lanes. Both
    move one word per cycle on their narrow side with no bubble; ``valid`` is registered.
    """

    def __init__(self, *, kind: str, width: int, channels: int, in_lanes: int, out_lanes: int):
        self.kind = kind
        self.width = 1 if kind == "binary" else check_int(width, "width", 1)
        self.channels = check_int(channels, "channels", 1)
        self.in_lanes = check_lanes(in_lanes, "in_lanes", self.channels, "channels")
        self.out_lanes = check_lanes(out_lanes, "out_lanes", self.channels, "channels")
        super().__init__({"i": In(stream.Signature(element_layout(kind, self.width, self.in_lanes))),
                          "o": Out(stream.Signature(element_layout(kind, self.width, self.out_lanes)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b = self.in_lanes, self.out_lanes
        if a == b:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
        elif a % b == 0:
            self._split(m, self.i, self.o, a // b)
        elif b % a == 0:
            self._gather(m, self.i, self.o, b // a)
        else:
            g = math.gcd(a, b)
            middle = stream.Signature(element_layout(self.kind, self.width, g)).create()
            self._split(m, self.i, middle, a // g)
            self._gather(m, middle, self.o, b // g)
        return m

    @staticmethod
    def _split(m: Module, i, o, pieces: int) -> None:
        # Shift registers rather than indexed slices: no variable shifts, no wide muxes.
        piece_bits = len(Value.cast(o.payload.data))
        # Named by role: with both a splitter and a gatherer in one module (ratios that are
        # not multiples) the Verilog and the formal harness's probes tell them apart.
        buffer = Signal(pieces * piece_bits, name="split_buffer")
        buffer_last = Signal()
        full = Signal(name="split_full")
        index = Signal(range(pieces))
        final = index == pieces - 1
        m.d.comb += [
            o.valid.eq(full),
            o.payload.data.eq(buffer[:piece_bits]),
            o.payload.last.eq(buffer_last & final),
            i.ready.eq(~full | (o.ready & final)),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += [index.eq(index + 1), buffer.eq(buffer[piece_bits:])]
            with m.If(final):
                m.d.sync += [index.eq(0), full.eq(0)]
        with m.If(i.valid & i.ready):
            m.d.sync += [buffer.eq(i.payload.data), buffer_last.eq(i.payload.last), full.eq(1)]

    @staticmethod
    def _gather(m: Module, i, o, pieces: int) -> None:
        piece_bits = len(Value.cast(i.payload.data))
        buffer = Signal(pieces * piece_bits, name="gather_buffer")
        full = Signal(name="gather_full")
        last = Signal()
        count = Signal(range(pieces))
        m.d.comb += [o.valid.eq(full), o.payload.data.eq(buffer), o.payload.last.eq(last),
                     i.ready.eq(~full | o.ready)]
        with m.If(o.valid & o.ready):
            m.d.sync += full.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += buffer.eq(Cat(buffer[piece_bits:], i.payload.data))
            with m.If(count == pieces - 1):
                m.d.sync += [count.eq(0), full.eq(1), last.eq(i.payload.last)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
