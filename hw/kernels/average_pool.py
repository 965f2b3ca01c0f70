"""What the average-pooling kernels share: parameters and ports, the scaled output register,
and the read-add-write accumulator.

Every pool ends in ``saturate(round_shift(S·mul, shift), out_width)`` per lane
(``hw/kernels/multiply_round_shift.py``) written to a registered output; ``SpatialAvgPool`` and
``GlobalAvgPool`` also keep their running sums the same way (one memory entry per word
position, read, added to, written back).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.hw.kernels.multiply_round_shift import check_scale, multiply_round_shift
from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.streams.fixed_point_stream import FixedPointStreamCodec, fixed_point_layout

__all__ = ["AveragePool", "register_averages", "accumulate_windows"]


class AveragePool(FixedPointStreamCodec, wiring.Component):
    """Base of the grid pools (spatial, strip, global): checks the parameters they share
    (``channels``; ``lanes`` dividing it; ``in_width`` and ``out_width`` in ``[2, 63]``;
    the divisor ``mul / 2^shift``) and builds the ports ``i`` and ``o``, fixed-point
    streams of ``lanes`` elements; each pool's docstring states the whole contract.
    """

    def __init__(self, *, channels: int, lanes: int, in_width: int, out_width: int, mul: int,
                 shift: int):
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.in_width = check_width(in_width, "in_width")
        self.out_width = check_width(out_width, "out_width")
        self.mul, self.shift = check_scale(mul, shift)
        self.words_per_token = self.channels // self.lanes
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.lanes))),
        })


def register_averages(m: Module, o: stream.Interface, sums: Value, *, fire: Value, last: Value,
                      mul: int, shift: int) -> None:
    """The output register of a pool: on ``fire`` it takes ``saturate(round_shift(sums[j]·mul,
    shift))`` for every lane ``j`` of ``sums`` and ``last``; ``o.valid`` stays set until a
    transfer. The caller fires only when ``~o.valid | o.ready``."""
    width = len(o.payload.data[0])
    averages = [multiply_round_shift(m, sums[lane], mul=mul, shift=shift, width=width,
                                     name=f"average_{lane}")
                for lane in range(len(o.payload.data))]
    with m.If(o.ready):
        m.d.sync += o.valid.eq(0)
    with m.If(fire):
        m.d.sync += [o.valid.eq(1), o.payload.last.eq(last)]
        m.d.sync += [o.payload.data[lane].eq(value) for lane, value in enumerate(averages)]


def accumulate_windows(m: Module, pool: AveragePool, *, sum_width: int, entries: int,
                       address: Value, starts: Value, completes: Value, last: Value) -> None:
    """Running window sums of ``pool`` (``SpatialAvgPool``, ``GlobalAvgPool``) and its output.

    For the word on ``pool.i`` (the caller advances its position counters on
    ``pool.i.valid & pool.i.ready``): ``address`` is the sum it belongs to, one of
    ``entries``; ``starts`` replaces that sum by the word instead of adding to it;
    ``completes`` sends the finished sum through ``register_averages`` (with ``last``)
    instead of writing it back. The sums (``sum_width`` bits per lane) live in a memory with
    a synchronous, write-transparent read port (block RAM). Taking a word (stage A) issues
    the read of its sum; the next cycle (stage B) adds and writes back or fills the output
    register, so an output word is valid 2 cycles after the word completing it. Transparent,
    because with one word per token the word right after a write may read the same sum.
    ``pool.i.ready`` falls only behind a completing word that meets a full output register.
    """
    sums_layout = data.ArrayLayout(signed(sum_width), pool.lanes)
    m.submodules.sums = sums_memory = Memory(shape=sums_layout, depth=max(entries, 2), init=[])
    write = sums_memory.write_port()
    read = sums_memory.read_port(transparent_for=(write,))

    b_valid = Signal()
    b_data = Signal.like(pool.i.payload.data)
    b_starts = Signal()
    b_completes = Signal()
    b_last = Signal()
    b_address = Signal.like(read.addr)
    b_fires = Signal()
    advance = Signal()
    m.d.comb += [
        b_fires.eq(b_valid & (~b_completes | ~pool.o.valid | pool.o.ready)),
        advance.eq(~b_valid | b_fires),
        pool.i.ready.eq(advance),
        read.en.eq(advance),
        read.addr.eq(address),
    ]
    with m.If(advance):
        m.d.sync += b_valid.eq(pool.i.valid)
    with m.If(pool.i.valid & pool.i.ready):
        m.d.sync += [b_data.eq(pool.i.payload.data), b_starts.eq(starts),
                     b_completes.eq(completes), b_last.eq(last), b_address.eq(read.addr)]

    sums = Signal(sums_layout)
    m.d.comb += [sums[lane].eq(Mux(b_starts, 0, read.data[lane]) + b_data[lane])
                 for lane in range(pool.lanes)]
    m.d.comb += [write.addr.eq(b_address), write.data.eq(sums),
                 write.en.eq(b_fires & ~b_completes)]
    register_averages(m, pool.o, sums, fire=b_fires & b_completes, last=b_last, mul=pool.mul,
                      shift=pool.shift)
