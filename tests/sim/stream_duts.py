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


class ByteSlice(wiring.Component):
    """``RegisterSlice`` for 8-bit words."""
    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


class ImageEcho(wiring.Component):
    """The stream-harness contract in miniature: 8-bit words in on ``i``, each word out on
    ``o`` one cycle later through a ``ByteSlice`` instance ``u_slice``, and after every
    4th word out, the number of images finished before it on ``cls`` (valid for one cycle:
    the contract's side streams are always ready)."""
    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))
    cls: Out(stream.Signature(4))

    def elaborate(self, platform):
        m = Module()
        m.submodules.u_slice = link = ByteSlice()
        wiring.connect(m, wiring.flipped(self.i), link.i)
        wiring.connect(m, link.o, wiring.flipped(self.o))
        count, images = Signal(2), Signal(4)
        m.d.sync += self.cls.valid.eq(0)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(count + 1)
            with m.If(count == 3):
                m.d.sync += [self.cls.valid.eq(1), self.cls.payload.eq(images),
                             images.eq(images + 1)]
        return m
