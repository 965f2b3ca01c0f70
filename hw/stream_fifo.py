"""A FIFO between two stream ports: ``amaranth.lib.fifo.SyncFIFOBuffered`` with stream ports."""
from __future__ import annotations

from amaranth.hdl import Module, ShapeCastable, Shape
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.parameter_checks import check_int

__all__ = ["StreamFIFO"]


class StreamFIFO(wiring.Component):
    """First-in first-out buffer of ``depth`` stream words.

    Parameters
    ----------
    layout : ShapeCastable
        The payload (any stream layout; it passes through bit for bit).
    depth : int
        Words held (``≥ 2``); the memory part maps to block RAM for large depths.

    Members
    -------
    i : In(stream.Signature(layout))
        ``ready`` is high while fewer than ``depth`` words are held (no combinational
        path from ``o.ready``).
    o : Out(stream.Signature(layout))
        ``valid`` comes from a register (SyncFIFOBuffered's output stage).

    Latency: 2 cycles from an input transfer into an empty FIFO to ``o.valid``.
    """

    def __init__(self, layout: ShapeCastable, depth: int):
        self.layout = layout
        self.depth = check_int(depth, "depth", 2)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @property
    def latency(self) -> int:
        return 2

    def elaborate(self, platform) -> Module:
        m = Module()
        width = Shape.cast(self.layout).width
        m.submodules.queue = storage = fifo.SyncFIFOBuffered(width=width, depth=self.depth)
        m.d.comb += [
            storage.w_data.eq(self.i.payload.as_value()),
            storage.w_en.eq(self.i.valid),
            self.i.ready.eq(storage.w_rdy),
            self.o.payload.as_value().eq(storage.r_data),
            self.o.valid.eq(storage.r_rdy),
            storage.r_en.eq(self.o.ready),
        ]
        return m
