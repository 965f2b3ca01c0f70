"""Pixels in, logits out: the engine's host port behind a pixel stream and a logit stream.

:class:`EngineImageRunner` is the accelerator the UART board wrapper
(``hw/boards/board_wrapper.py``) drives: it has the pixel input stream ``i`` and the result
output stream ``o`` of ``docs/hardware-conventions.md``, and turns them into host-port
writes, a ``start`` and host-port reads on an :class:`~binaryvit.hw.engine.rtl.engine.Engine`.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.engine.board.design import EngineDesign
from binaryvit.hw.engine.config import WORD_BITS

__all__ = ["EngineImageRunner", "engine_host_signature"]


def engine_host_signature(address_bits: int) -> wiring.Signature:
    """The controller side of ``Engine``'s host port and run control."""
    return wiring.Signature({
        "start": Out(1), "pc_start": Out(address_bits),
        "busy": In(1), "done": In(1), "error": In(1),
        "host_addr": Out(address_bits), "host_write": Out(1),
        "host_write_data": Out(WORD_BITS), "host_read": Out(1),
        "host_read_data": In(WORD_BITS),
    })


class EngineImageRunner(wiring.Component):
    """Run one image per ``i`` packet on the engine and send its logits on ``o``.

    Parameters
    ----------
    design : EngineDesign
        Addresses, pixel and logit formats (constants of the bitstream).

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": pixel, "last": 1})))
        ``design.pixels`` pixels, one per word, in the input tensor's order (``[H, W, C]``),
        ``last`` on the final one; ``pixel`` is ``signed``/``unsigned(design.pixel_width)``.
        Each is written (sign- or zero-extended to 16 bits) to ``input_address + k`` the
        cycle it is taken: ``ready`` is high while receiving, so one pixel a cycle.
    o : Out(stream.Signature(StructLayout({"data": logit, "last": 1})))
        ``design.classes`` logits (``signed(16·logit_words)``), ``last`` on the final one.
        If the engine stops with ``error``, a single word (0) with ``last`` instead: the
        board wrapper reports the wrong length (``STATUS_LENGTH``).
    engine : Out(engine_host_signature(address_bits))
        To the ``Engine``'s ports of the same names. Owned from the first pixel to the last
        logit; the caller must not start before the parameters are loaded.

    Timing: after the last pixel, one cycle for ``start``, the engine's busy cycles, then
    ``logit_words + 1`` cycles per logit (reads of latency 1) plus one per transfer.
    A pixel word with ``last`` before ``design.pixels`` words starts the engine early (the
    wrapper always sends exactly ``pixels``); more than ``pixels`` words wrap the address.
    """

    def __init__(self, design: EngineDesign, address_bits: int = 16):
        self.design = design
        pixel = (signed if design.pixel_signed else unsigned)(design.pixel_width)
        self.address_bits = address_bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": pixel, "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": signed(design.logit_bits),
                                                         "last": 1}))),
            "engine": Out(engine_host_signature(address_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.design
        eng = self.engine
        pixel_index = Signal(range(d.pixels))
        read_addr = Signal(self.address_bits)
        logit_index = Signal(range(d.classes))
        word_index = Signal(range(d.logit_words + 1))
        value = Signal(d.logit_bits)
        read_pending = Signal()

        m.d.comb += [eng.pc_start.eq(d.program_address),
                     eng.host_write_data.eq(self.i.payload.data)]   # sign/zero-extends

        with m.FSM():
            with m.State("RECEIVE"):
                m.d.comb += [self.i.ready.eq(1),
                             eng.host_addr.eq(d.input_address + pixel_index)]
                with m.If(self.i.valid):
                    m.d.comb += eng.host_write.eq(1)
                    m.d.sync += pixel_index.eq(pixel_index + 1)
                    with m.If(self.i.payload.last | (pixel_index == d.pixels - 1)):
                        m.d.sync += pixel_index.eq(0)
                        m.next = "START"
            with m.State("START"):
                m.d.comb += eng.start.eq(1)
                m.d.sync += [read_addr.eq(d.output_address), logit_index.eq(0),
                             word_index.eq(0), read_pending.eq(0)]
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(~eng.busy & eng.error):
                    m.next = "FAULT"
                with m.Elif(~eng.busy & eng.done):
                    m.next = "READ"
            with m.State("READ"):
                # one read per cycle; the word arrives the next cycle (latency 1)
                m.d.comb += eng.host_addr.eq(read_addr)
                with m.If(read_pending):
                    m.d.sync += value.eq((value >> WORD_BITS)
                                         | (eng.host_read_data << (d.logit_bits - WORD_BITS)))
                with m.If(word_index == d.logit_words):
                    m.d.sync += [read_pending.eq(0), word_index.eq(0)]
                    m.next = "SEND"
                with m.Else():
                    m.d.comb += eng.host_read.eq(1)
                    m.d.sync += [read_pending.eq(1), word_index.eq(word_index + 1),
                                 read_addr.eq(read_addr + 1)]
            with m.State("SEND"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(value),
                             self.o.payload.last.eq(logit_index == d.classes - 1)]
                with m.If(self.o.ready):
                    m.d.sync += logit_index.eq(logit_index + 1)
                    with m.If(logit_index == d.classes - 1):
                        m.next = "RECEIVE"
                    with m.Else():
                        m.next = "READ"
            with m.State("FAULT"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(0),
                             self.o.payload.last.eq(1)]
                with m.If(self.o.ready):
                    m.next = "RECEIVE"
        return m
