"""One edge of the network as built: FIFO of producer words, width converter, FIFO of
consumer words (each optional)."""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.kernels.parameter_checks import check_int
from binaryvit.hw.streams.stream_fifo import StreamFIFO
from binaryvit.hw.streams.stream_width import StreamWidthConverter, element_layout

__all__ = ["StreamEdge"]


class StreamEdge(wiring.Component):
    """``i`` (``in_lanes`` elements per word) → ``o`` (``out_lanes`` per word), same elements
    in the same order, through ``[StreamFIFO(input_depth)] → [StreamWidthConverter] →
    [StreamFIFO(output_depth)]``; a depth of 0 leaves that FIFO out, equal lanes leave the
    converter out (with neither, ``i`` is wired to ``o``).

    Parameters
    ----------
    kind, width, channels : as ``StreamWidthConverter`` (``element_layout(kind, width, …)``).
    in_lanes, out_lanes : int
        Elements per word on ``i`` and ``o``; both divide ``channels``.
    input_depth, output_depth : int
        Words of the FIFO before the converter (``in_lanes`` wide) and after it
        (``out_lanes`` wide); 0 or ``≥ 2``.

    Timing is that of the parts (``hw/network/timing.py``, ``EdgePath``, models it).
    """

    def __init__(self, *, kind: str, width: int, channels: int, in_lanes: int, out_lanes: int,
                 input_depth: int = 0, output_depth: int = 0):
        self.kind, self.width, self.channels = kind, width, channels
        self.in_lanes, self.out_lanes = in_lanes, out_lanes
        self.input_depth = _check_depth(input_depth, "input_depth")
        self.output_depth = _check_depth(output_depth, "output_depth")
        super().__init__({"i": In(stream.Signature(element_layout(kind, width, in_lanes))),
                          "o": Out(stream.Signature(element_layout(kind, width, out_lanes)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        source = wiring.flipped(self.i)
        if self.input_depth:
            m.submodules.input_fifo = fifo = StreamFIFO(
                element_layout(self.kind, self.width, self.in_lanes), self.input_depth)
            wiring.connect(m, source, fifo.i)
            source = fifo.o
        if self.in_lanes != self.out_lanes:
            m.submodules.converter = converter = StreamWidthConverter(
                kind=self.kind, width=self.width, channels=self.channels,
                in_lanes=self.in_lanes, out_lanes=self.out_lanes)
            wiring.connect(m, source, converter.i)
            source = converter.o
        if self.output_depth:
            m.submodules.output_fifo = fifo = StreamFIFO(
                element_layout(self.kind, self.width, self.out_lanes), self.output_depth)
            wiring.connect(m, source, fifo.i)
            source = fifo.o
        wiring.connect(m, source, wiring.flipped(self.o))
        return m


def _check_depth(depth: int, name: str) -> int:
    if depth == 0:
        return 0
    try:
        return check_int(depth, name, 2)
    except ConfigError:
        raise ConfigError(f"{name}: expected 0 (no FIFO) or an integer ≥ 2, got {depth!r}") \
            from None
