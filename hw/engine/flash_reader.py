"""A SPI NOR flash reader: wake the flash, then stream bytes from an address (command 0x03).

The iCEBreaker's W25Q128 holds the bitstream at offset 0 and, after it, the engine's
parameter image (``docs/engine-hardware.md``); this block reads the image back at boot.
It speaks SPI mode 0 (clock idles low, both sides sample on the rising edge and change
data after the falling one) with the clock generated from the system clock.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError

__all__ = ["FlashReader", "SPI_FLASH_SIGNATURE", "READ_COMMAND", "RELEASE_POWER_DOWN_COMMAND"]

READ_COMMAND = 0x03
RELEASE_POWER_DOWN_COMMAND = 0xAB

SPI_FLASH_SIGNATURE = wiring.Signature({
    "sck": Out(1),
    "cs": Out(1),       # active high here; the board's resource (PinsN) drives CS# low
    "copi": Out(1),
    "cipo": In(1),
})
"""The controller side of a single-bit SPI flash bus (amaranth-boards' ``spi_flash_1x``)."""


class FlashReader(wiring.Component):
    """Read a SPI NOR flash from ``address`` onwards as a stream of bytes.

    On ``start`` the reader first sends *release from power-down* (0xAB, one byte with
    chip select) and waits ``wake_cycles`` with chip select high (a flash the FPGA's
    configuration logic left in deep power-down answers nothing else; in any other state
    0xAB is harmless). Then it sends READ (0x03) and the 24-bit address, most significant
    bit first, and shifts data bytes in for as long as the consumer takes them, until
    ``stop``.

    Parameters
    ----------
    half_period : int
        System clock cycles per half period of ``sck`` (≥ 1, default 2): ``sck`` runs at
        ``f_sys / (2·half_period)``. ``cipo`` is sampled one system clock after the falling
        edge that makes the flash change it, so that clock period must cover the pad delays
        both ways plus the flash's output delay (t_V ≤ 6 ns on the W25Q128JV), roughly 15–20 ns
        on the iCE40 (estimated, not measured on a board): too close at 40 MHz with 1,
        comfortable with 2 (10 MHz ``sck``).
    wake_cycles : int
        System clock cycles with chip select high after 0xAB (the W25Q128JV needs
        t_RES1 = 3 µs: 120 cycles at 40 MHz).

    Members
    -------
    start : In(1)
        In idle, begin a read at ``address`` (sampled in that cycle).
    address : In(24)
    stop : In(1)
        End the read now: chip select goes high, a byte not yet taken is dropped, back
        to idle. Ignored in idle.
    busy : Out(1)
        High from ``start`` until ``stop``.
    o : Out(stream.Signature(8))
        The bytes from ``address`` on, in order. A byte stays valid until taken, and
        ``sck`` pauses (low) before the next byte while it waits, so back-pressure never
        loses data (the flash holds its output while the clock stands).
    spi : Out(SPI_FLASH_SIGNATURE)
        ``sck``, ``cs`` (active high), ``copi`` (to the flash), ``cipo`` (from it,
        sampled on the system clock edge that raises ``sck``).

    Timing: 16·``half_period`` cycles per byte when the consumer keeps up; the first data
    byte is valid about ``16·half_period·(1 + 4 + 1) + wake_cycles`` cycles after ``start``.
    """

    start: In(1)
    address: In(24)
    stop: In(1)
    busy: Out(1)
    o: Out(stream.Signature(8))
    spi: Out(SPI_FLASH_SIGNATURE)

    def __init__(self, *, half_period: int = 2, wake_cycles: int = 120):
        for name, value, low in (("half_period", half_period, 1), ("wake_cycles", wake_cycles, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
        self.half_period = half_period
        self.wake_cycles = wake_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(max(self.half_period, self.wake_cycles) + 1))
        command = Signal(32)            # bits still to send, most significant first
        bits_left = Signal(range(33))
        waking = Signal()               # the command being sent is 0xAB
        shift_in = Signal(8)
        sck = Signal()
        cs = Signal()
        address = Signal(24)

        m.d.comb += [
            self.spi.sck.eq(sck),
            self.spi.cs.eq(cs),
            self.spi.copi.eq(command[31]),
        ]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        half = self.half_period - 1

        def stop_here():
            with m.If(self.stop):
                m.d.sync += [cs.eq(0), sck.eq(0), self.o.valid.eq(0), timer.eq(0)]
                m.next = "IDLE"

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        command.eq(Cat(Const(0, 24), Const(RELEASE_POWER_DOWN_COMMAND, 8))),
                        bits_left.eq(8),
                        waking.eq(1),
                        cs.eq(1),
                        timer.eq(half),
                    ]
                    m.d.sync += address.eq(self.address)
                    m.next = "SEND"
            with m.State("SEND"):
                with m.If(timer == 0):
                    m.d.sync += [sck.eq(~sck), timer.eq(half)]
                    with m.If(sck):          # falling edge: the next bit goes out
                        m.d.sync += [command.eq(command << 1), bits_left.eq(bits_left - 1)]
                        with m.If(bits_left == 1):
                            with m.If(waking):
                                m.d.sync += [cs.eq(0), timer.eq(self.wake_cycles - 1)]
                                m.next = "WAKE"
                            with m.Else():
                                m.d.sync += bits_left.eq(8)
                                m.next = "RECEIVE"
                stop_here()
            with m.State("WAKE"):
                with m.If(timer == 0):
                    m.d.sync += [
                        command.eq(Cat(address, Const(READ_COMMAND, 8))),
                        bits_left.eq(32),
                        waking.eq(0),
                        cs.eq(1),
                        timer.eq(half),
                    ]
                    m.next = "SEND"
                stop_here()
            with m.State("RECEIVE"):
                # a new byte starts only once the previous one is being (or has been) taken
                can_rise = (bits_left != 8) | ~self.o.valid | self.o.ready
                with m.If((timer == 0) & (sck | can_rise)):
                    m.d.sync += [sck.eq(~sck), timer.eq(half)]
                    with m.If(~sck):         # rising edge: sample the flash's bit
                        m.d.sync += [shift_in.eq(Cat(self.spi.cipo, shift_in[:7])),
                                     bits_left.eq(bits_left - 1)]
                    with m.Elif(bits_left == 0):
                        m.d.sync += [self.o.payload.eq(shift_in), self.o.valid.eq(1),
                                     bits_left.eq(8)]
                stop_here()
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
