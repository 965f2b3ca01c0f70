"""Broadcast of one stream to several consumers (an eager fork)."""
from __future__ import annotations

from amaranth.hdl import Module, ShapeCastable, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.kernels.parameter_checks import check_int

__all__ = ["StreamFork"]


class StreamFork(wiring.Component):
    """Every input word goes to each of ``count`` outputs; consumers take it at their own pace.

    Parameters
    ----------
    layout : ShapeCastable
        The payload, passed through unchanged.
    count : int
        Number of outputs (``≥ 2``).

    Members
    -------
    i : In(stream.Signature(layout))
    o0 … o{count−1} : Out(stream.Signature(layout))

    An output that has taken the current word drops its ``valid`` until the input moves
    on; the input word is released (``i.ready``) on the cycle the last outstanding output
    takes it. ``o<k>.valid`` depends on ``i.valid`` and registered state only; ``i.ready``
    depends combinationally on the outputs' ``ready``. No storage: a slow consumer stalls
    the others, so the network generator puts a FIFO behind each output (see
    ``docs/network.md`` for their depths).
    """

    def __init__(self, layout: ShapeCastable, count: int):
        self.layout = layout
        self.count = check_int(count, "count", 2)
        super().__init__({"i": In(stream.Signature(layout)),
                          **{f"o{k}": Out(stream.Signature(layout)) for k in range(self.count)}})

    def output(self, k: int):
        return getattr(self, f"o{k}")

    def elaborate(self, platform) -> Module:
        m = Module()
        taken = [Signal(name=f"taken{k}") for k in range(self.count)]
        release = Signal()
        outputs = [self.output(k) for k in range(self.count)]
        ready_all = 1
        for o, t in zip(outputs, taken):
            m.d.comb += [o.payload.eq(self.i.payload), o.valid.eq(self.i.valid & ~t)]
            ready_all = ready_all & (o.ready | t)
        m.d.comb += [release.eq(ready_all), self.i.ready.eq(release)]
        for o, t in zip(outputs, taken):
            with m.If(self.i.valid & release):
                m.d.sync += t.eq(0)
            with m.Elif(o.valid & o.ready):
                m.d.sync += t.eq(1)
        return m
