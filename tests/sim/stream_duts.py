"""Tiny hand-written stream components that the harness self-tests drive.

Their behaviour is obvious by inspection, so a harness test failure points at the harness.
"""
from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

WORD = data.StructLayout({"data": data.ArrayLayout(signed(4), 2), "last": 1})


class RegisterSlice(wiring.Component):
    """One-word pipeline register with a correct skid-free handshake (latency 1)."""
    i: In(stream.Signature(WORD))
    o: Out(stream.Signature(WORD))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


class PairSummer(wiring.Component):
    """Emits a+b for every pair of words on `a` and `b`: two inputs, one output."""
    a: In(stream.Signature(8))
    b: In(stream.Signature(8))
    o: Out(stream.Signature(9))

    def elaborate(self, platform):
        m = Module()
        both = self.a.valid & self.b.valid
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(both), self.o.payload.eq(self.a.payload + self.b.payload)]
        take = both & (self.o.ready | ~self.o.valid)
        m.d.comb += [self.a.ready.eq(take), self.b.ready.eq(take)]
        return m


class HeldConstant(wiring.Component):
    """Answers every input word with 3: a mux on a register that only ever holds its reset
    value. Its Verilog is an ``always @*`` block whose inputs never change after time 0."""
    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        mode = Signal(2, init=1)
        m.d.sync += mode.eq(mode)
        with m.Switch(mode):
            with m.Case(1):
                m.d.comb += self.o.payload.eq(3)
            with m.Default():
                m.d.comb += self.o.payload.eq(5)
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        return m
