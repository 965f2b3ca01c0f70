"""UART receiver and transmitter, 8N1 (8 data bits LSB first, no parity, one stop bit).

The bit time is ``divisor`` clock cycles: ``divisor = round(f_clk / baud)``; the baud
error is ``|f_clk / divisor − baud| / baud`` and a UART link tolerates a few percent
(:func:`baud_divisor` refuses more than 2 %).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.kernels.parameter_checks import check_int

__all__ = ["UARTReceiver", "UARTTransmitter", "baud_divisor", "check_divisor", "MIN_DIVISOR",
           "MAX_BAUD_ERROR"]

MIN_DIVISOR = 4          # the receiver samples at the middle of a bit: needs a few cycles per bit
MAX_BAUD_ERROR = 0.02    # 8N1 samples 9.5 bit times after the start edge: 2 % keeps well inside


def baud_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``; ``ConfigError`` if the rounding
    misses the baud rate by more than ``MAX_BAUD_ERROR`` or gives fewer than ``MIN_DIVISOR``."""
    if not clock_hz > 0:
        raise ConfigError(f"clock_hz: expected a positive frequency, got {clock_hz!r}")
    baud = check_int(baud, "baud", 1)
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ConfigError(f"baud={baud} is too fast for a {clock_hz / 1e6:g} MHz clock: "
                          f"needs ≥ {MIN_DIVISOR} cycles per bit (baud ≤ {int(clock_hz // MIN_DIVISOR)})")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ConfigError(f"baud={baud} at {clock_hz / 1e6:g} MHz: the nearest divisor {divisor} "
                          f"gives {clock_hz / divisor:.0f} baud, {100 * error:.1f} % off "
                          f"(at most {100 * MAX_BAUD_ERROR:g} %)")
    return divisor


def check_divisor(divisor: int) -> int:
    """``divisor`` (clock cycles per bit) as an int in ``[MIN_DIVISOR, 2**24]``."""
    return check_int(divisor, "divisor (clock cycles per bit)", MIN_DIVISOR, 1 << 24)


class UARTReceiver(wiring.Component):
    """Serial 8N1 line to a byte stream.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (≥ 4).

    Members
    -------
    rx : In(1)
        The serial line (idle high). Synchronised by two flip-flops inside.
    o : Out(stream.Signature(unsigned(8)))
        One word per received byte with a valid stop bit.
    frame_error : Out(1)
        One-cycle pulse when a frame ends with a low stop bit (the byte is dropped).
    overrun : Out(1)
        One-cycle pulse when a byte completes while the previous one still waits on ``o``
        (the new byte is dropped; the waiting one is kept).

    A start is a falling edge; the line is sampled ``divisor // 2`` cycles later (it must
    still be low, else it was a glitch) and then every ``divisor`` cycles: 8 data bits and
    the stop bit. After the stop-bit sample the receiver waits for the next falling edge,
    so it resynchronises on every frame and tolerates back-to-back frames.
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(unsigned(8))),
                          "frame_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        sync0 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync0.eq(self.rx), line.eq(sync0)]

        timer = Signal(range(self.divisor))
        bit_index = Signal(range(9))
        shift = Signal(8)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "idle"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bit_index.eq(0)]
                    m.next = "bits"
            with m.State("bits"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bit_index == 8):
                    with m.If(~line):
                        m.d.sync += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "idle"
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bit_index.eq(bit_index + 1),
                                 timer.eq(self.divisor - 1)]
        return m


class UARTTransmitter(wiring.Component):
    """Byte stream to a serial 8N1 line.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (≥ 4).

    Members
    -------
    i : In(stream.Signature(unsigned(8)))
        Bytes to send; ``ready`` is high only while the line is idle, so a byte transfers
        and its frame (start bit, 8 data bits LSB first, stop bit: ``10 · divisor`` cycles)
        starts on the next cycle. Back-to-back bytes leave no gap between frames.
    tx : Out(1)
        The serial line, idle high, driven from a flip-flop (no glitches).
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(unsigned(8))), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        timer = Signal(range(self.divisor))
        bits_left = Signal(range(11))
        frame = Signal(10, init=0x3FF)   # stop, data[7:0], start; shifted out from bit 0
        # ready in the stop bit's final cycle too, so back-to-back frames leave no gap
        m.d.comb += self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & (timer == 0)))
        m.d.sync += self.tx.eq(frame[0])
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(0, self.i.payload, 1)), bits_left.eq(10),
                         timer.eq(self.divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [frame.eq(Cat(frame[1:], 1)), bits_left.eq(bits_left - 1),
                             timer.eq(self.divisor - 1)]
        return m
