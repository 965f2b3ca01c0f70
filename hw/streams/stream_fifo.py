"""A FIFO between two stream ports, built to map onto block RAM or LUT RAM."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, ShapeCastable, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.hw.kernels.parameter_checks import check_int

__all__ = ["StreamFIFO"]


class StreamFIFO(wiring.Component):
    """First-in first-out buffer of ``depth`` stream words.

    Parameters
    ----------
    layout : ShapeCastable
        The payload (any stream layout; it passes through bit for bit).
    depth : int
        Words held (``≥ 2``): ``depth − 1`` in a memory, one in its read register.

    Members
    -------
    i : In(stream.Signature(layout))
        ``ready`` is high while the memory has room (no combinational path from
        ``o.ready``).
    o : Out(stream.Signature(layout))
        ``payload`` is the memory's read register, ``valid`` a register.

    Latency: 2 cycles from an input transfer into an empty FIFO to ``o.valid``; one word
    per cycle in and out.

    The memory has one write port and one synchronous read port with a read enable, the
    shape Yosys maps to ``SB_RAM40_4K`` / ``DP16KD`` (or ``TRELLIS_DPR16X4`` when small).
    Its read never hits the address being written (that word is read only once the
    write has completed), which the memory tells Yosys with ``no_rw_check``: otherwise
    Yosys builds soft read-before-write logic around the block RAM (measured on an ECP5
    FIFO of 25 × 2113 bits: 104 instead of 40 flip-flops, 271 instead of 200 logic cells).
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
        words = self.depth - 1
        m.submodules.storage = storage = Memory(
            shape=Shape.cast(self.layout).width, depth=words, init=[],
            attrs={"no_rw_check": 1})
        write, read = storage.write_port(), storage.read_port(domain="sync")
        level = Signal(range(words + 1))
        produce = Signal(range(words))
        consume = Signal(range(words))
        pushing, popping = Signal(name="pushing"), Signal(name="popping")
        m.d.comb += [
            self.i.ready.eq(level != words),
            pushing.eq(self.i.valid & self.i.ready),
            # move the oldest stored word into the read register whenever it is free
            popping.eq((level != 0) & (~self.o.valid | self.o.ready)),
            write.addr.eq(produce), write.data.eq(self.i.payload.as_value()),
            write.en.eq(pushing),
            read.addr.eq(consume), read.en.eq(popping),
            self.o.payload.as_value().eq(read.data),
        ]
        with m.If(pushing):
            m.d.sync += produce.eq(Mux(produce == words - 1, 0, produce + 1))
        with m.If(popping):
            m.d.sync += [consume.eq(Mux(consume == words - 1, 0, consume + 1)),
                         self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(pushing & ~popping):
            m.d.sync += level.eq(level + 1)
        with m.Elif(popping & ~pushing):
            m.d.sync += level.eq(level - 1)
        return m
