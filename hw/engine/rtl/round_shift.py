"""The engine core's shared ``saturate(round_shift(value, shift), width)``, one shift bit per
cycle.

A barrel shifter of the core's 38-bit sums with a 6-bit run-time shift is six levels of
39 multiplexers (~300 logic cells on the iCE40 with its rounding and saturation); shifting
one bit per cycle needs one multiplexer per bit, which shares the logic cell of its
flip-flop. The core pays ``shift`` cycles per multiply for it (``hw/engine/rtl/cycles.py``).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["RoundShiftSaturate"]


class RoundShiftSaturate(wiring.Component):
    """``saturate(round_shift(value, shift), width)`` as in ``intref.fixed_point``
    (``width`` 0: no saturation; ``rounding`` 0: a floor shift), ``shift`` and ``width``
    run-time values.

    Parameters
    ----------
    bits : width of ``value`` and ``result`` (signed).

    Members
    -------
    load : In(1)
        Take ``value`` and ``shift`` (6 bits) this cycle.
    value : In(signed(bits)), shift : In(6)
        Read only in a ``load`` cycle.
    width : In(6), rounding : In(1)
        Hold them from ``load`` until ``result`` is used (``width`` selects a block RAM
        row, read a cycle later; ``rounding`` goes straight into ``result``).
    ready : Out(1)
        ``result`` is valid: ``shift`` cycles after the cycle after ``load`` (so ``shift + 1``
        cycles after it; the unit shifts one bit per cycle), until the next ``load``.
    result : Out(signed(bits))

    Without a rounding constant or range comparators (logic cells on the iCE40): with
    ``q = (2·value) >> shift``, ``round_shift(value, shift) = (q >> 1) + q[0]`` (for shift 0,
    ``q[0]`` is 0); the result fits ``width`` bits when its bits from ``width − 1`` up all
    equal its sign, else it is clamped to the bound on its sign's side.
    """

    def __init__(self, bits: int):
        self.bits = bits
        super().__init__({
            "load": In(1), "value": In(signed(bits)), "shift": In(6),
            "width": In(6), "rounding": In(1),
            "ready": Out(1), "result": Out(signed(bits)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        bits = self.bits
        q = Signal(signed(bits + 1))                  # 2·value, shifted right as counted
        left = Signal(6)                              # shift bits still to go
        with m.If(self.load):
            m.d.sync += [q.eq(Cat(Const(0, 1), self.value)), left.eq(self.shift)]
        with m.Elif(left != 0):
            m.d.sync += [q.eq(q >> 1), left.eq(left - 1)]
        m.d.comb += self.ready.eq(left == 0)

        rounded = Signal(signed(bits + 1))
        # bits width − 1 and up (none for width 0: no saturation): bit i is set when
        # i >= width − 1, a table in block RAM read with the width (as logic each bit is a
        # function of six inputs: ~100 logic cells)
        full = (1 << (bits + 1)) - 1
        m.submodules.upper_table = table = Memory(
            shape=bits + 1, depth=1 << 6,
            init=[0] + [full << (k - 1) & full for k in range(1, 1 << 6)],
            attrs={"ram_style": "block"})
        upper_read = table.read_port()
        upper = upper_read.data
        negative = rounded[-1]
        # out of range: a bit from width − 1 up differs from the sign; then the bound on the
        # sign's side (upper: the most negative value, ~upper the most positive); one
        # four-input function per result bit
        over = ((rounded ^ negative.replicate(bits + 1)) & upper).any()
        m.d.comb += [
            upper_read.addr.eq(self.width),
            rounded.eq((q >> 1) + (self.rounding & q[0])),
            self.result.eq(Mux(over, upper ^ (~negative).replicate(bits + 1), rounded)),
        ]
        return m
