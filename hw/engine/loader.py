"""The engine's boot loader: parameter image from SPI flash into the SPRAM, checked on the way.

At boot the SPRAM is empty (the bitstream cannot initialise it), so the loader reads the
parameter image (``parameter_image.py``) from the flash at ``flash_offset``, checks its
header against the constants this bitstream was built with, writes the payload into the
SPRAM bank word by word and checks the CRC at the end. The engine starts only on ``done``;
on ``error`` it never starts, so a mismatched or damaged image is never used.
"""
import enum

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.flash_reader import SPI_FLASH_SIGNATURE, FlashReader
from binaryvit.hw.engine.parameter_image import CRC_POLYNOMIAL, FORMAT_VERSION, HEADER_BYTES, MAGIC

__all__ = ["ParameterLoader", "LoaderError", "DEFAULT_FLASH_OFFSET"]

DEFAULT_FLASH_OFFSET = 0x10_0000
"""1 MiB: past the iCE40UP5K's 104,090-byte bitstream, on a 64 KiB erase-block boundary."""


class LoaderError(enum.IntEnum):
    """The loader's ``error_code`` (0 while no error)."""

    NONE = 0
    BAD_MAGIC = 1          # not a parameter image (erased flash reads 0xFF)
    BAD_VERSION = 2        # another format version, or a reserved field not 0
    DESIGN_MISMATCH = 3    # an image for another bitstream
    TOO_LONG = 4           # more payload words than the SPRAM bank holds
    BAD_CHECKSUM = 5       # corrupted or truncated image


def _header_constant(design_id: int) -> list[int]:
    """Bytes 0..11 of the header this bitstream accepts: magic, version, reserved, design id."""
    return [*MAGIC, *FORMAT_VERSION.to_bytes(2, "little"), 0, 0, *design_id.to_bytes(4, "little")]


class ParameterLoader(wiring.Component):
    """Load a parameter image from SPI flash into a word-addressed memory (the SPRAM bank).

    Parameters
    ----------
    design_id : int
        The 32-bit id the image's header must carry (``parameter_image.design_id``).
    capacity_words : int
        Words the memory holds (1 to 65,536; 65,536 for the UP5K's four SPRAMs). A longer
        payload is refused before anything is written.
    flash_offset : int
        Byte address of the image in the flash (default 1 MiB).
    half_period, wake_cycles : int
        Passed to :class:`~binaryvit.hw.engine.flash_reader.FlashReader`.

    Members
    -------
    start : In(1)
        Begin loading (sampled while idle; tie high to load once after reset).
    busy, done, error : Out(1)
        ``done`` or ``error`` rises once the load has finished, and stays (until reset).
    error_code : Out(3)
        A :class:`LoaderError`; valid while ``error``.
    words_written : Out(17)
        Payload words written so far.
    write_addr : Out(16), write_data : Out(16), write_enable : Out(1)
        Memory write port: word ``write_data`` goes to ``write_addr`` in each cycle with
        ``write_enable`` (one cycle per word, addresses 0, 1, 2, … in order; connect to
        :class:`~binaryvit.hw.engine.spram.SPRAMBank` as ``enable = write = write_enable``,
        ``write_mask = 0b1111``).
    spi : Out(SPI_FLASH_SIGNATURE)
        To the flash pins.

    Checks, in the order the bytes arrive: magic, version and reserved field, design id
    (each the moment its byte differs, before any payload word is written), payload length
    ≤ ``capacity_words``, then CRC-32/MPEG-2 over header bytes 0..15 and the payload. The
    payload words are written as they arrive, so after ``BAD_CHECKSUM`` the memory holds the
    damaged words: ``done`` low is what keeps the engine from using them.

    Timing: the CRC advances one bit per cycle, 8 cycles per byte, in the 16·``half_period``
    cycles the flash takes to send the next byte; so the load takes about
    ``16·half_period·(26 + 2·words) + wake_cycles`` cycles (at 40 MHz and ``half_period``
    1, about 53 ms for the whole 128 KiB).
    """

    def __init__(self, *, design_id: int, capacity_words: int = 65536,
                 flash_offset: int = DEFAULT_FLASH_OFFSET, half_period: int = 1,
                 wake_cycles: int = 120):
        if isinstance(design_id, bool) or not isinstance(design_id, int) or not 0 <= design_id < 1 << 32:
            raise ConfigError(f"design_id: expected an unsigned 32-bit integer, got {design_id!r}")
        if isinstance(capacity_words, bool) or not isinstance(capacity_words, int) \
                or not 1 <= capacity_words <= 65536:
            raise ConfigError(f"capacity_words: expected 1 to 65536, got {capacity_words!r}")
        if isinstance(flash_offset, bool) or not isinstance(flash_offset, int) \
                or not 0 <= flash_offset < 1 << 24:
            raise ConfigError(f"flash_offset: expected a 24-bit byte address, got {flash_offset!r}")
        self.design_id = design_id
        self.capacity_words = capacity_words
        self.flash_offset = flash_offset
        self.reader = FlashReader(half_period=half_period, wake_cycles=wake_cycles)
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(3),
            "words_written": Out(17),
            "write_addr": Out(16),
            "write_data": Out(16),
            "write_enable": Out(1),
            "spi": Out(SPI_FLASH_SIGNATURE),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self.reader
        wiring.connect(m, wiring.flipped(self.spi), reader.spi)

        byte = reader.o.payload
        index = Signal(range(HEADER_BYTES + 1))        # header byte being read
        expected = Array(Const(b, 8) for b in _header_constant(self.design_id))
        length = Signal(32)
        stored_crc = Signal(32)
        low_byte = Signal(8)
        high_half = Signal()                           # next payload byte is a word's high byte
        crc = Signal(32)
        crc_byte = Signal(8)
        crc_bits = Signal(range(9))
        error_code = Signal(3)
        remaining = Signal(17)                         # payload words still to write
        stop_reader = Signal()                         # registered: keeps the stop off the
        m.d.comb += reader.stop.eq(stop_reader)        # header/counter paths' timing
        m.d.sync += stop_reader.eq(0)

        # The CRC, one bit per cycle, most significant bit first (as the bits came off SPI).
        with m.If(crc_bits != 0):
            feedback = crc[31] ^ crc_byte[7]
            m.d.sync += [
                crc.eq((crc << 1) ^ Mux(feedback, CRC_POLYNOMIAL, 0)),
                crc_byte.eq(crc_byte << 1),
                crc_bits.eq(crc_bits - 1),
            ]
        take = reader.o.valid & reader.o.ready

        def checksum(value):
            m.d.sync += [crc_byte.eq(value), crc_bits.eq(8)]

        def fail(code: LoaderError):
            m.d.sync += [error_code.eq(code), stop_reader.eq(1)]
            m.next = "ERROR"

        m.d.sync += self.write_enable.eq(0)
        m.d.comb += self.error_code.eq(error_code)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += [reader.start.eq(1), reader.address.eq(self.flash_offset)]
                    m.d.sync += [index.eq(0), crc.eq(0xFFFF_FFFF), high_half.eq(0),
                                 self.words_written.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += reader.o.ready.eq(crc_bits == 0)
                with m.If(take):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index < 16):
                        checksum(byte)
                    with m.If(index < 12):
                        with m.If(byte != expected[index]):
                            with m.If(index < 4):
                                fail(LoaderError.BAD_MAGIC)
                            with m.Elif(index < 8):
                                fail(LoaderError.BAD_VERSION)
                            with m.Else():
                                fail(LoaderError.DESIGN_MISMATCH)
                    with m.Elif(index < 16):
                        m.d.sync += length.eq(Cat(length[8:], byte))
                    with m.Else():
                        m.d.sync += stored_crc.eq(Cat(stored_crc[8:], byte))
                        with m.If(index == HEADER_BYTES - 1):
                            m.next = "LENGTH"
            with m.State("LENGTH"):
                with m.If(length > self.capacity_words):
                    fail(LoaderError.TOO_LONG)
                with m.Elif(length == 0):
                    m.d.sync += stop_reader.eq(1)
                    m.next = "CHECK"
                with m.Else():
                    m.d.sync += remaining.eq(length)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += reader.o.ready.eq(crc_bits == 0)
                with m.If(take):
                    checksum(byte)
                    m.d.sync += high_half.eq(~high_half)
                    with m.If(~high_half):
                        m.d.sync += low_byte.eq(byte)
                    with m.Else():
                        m.d.sync += [
                            self.write_addr.eq(self.words_written[:16]),
                            self.write_data.eq(Cat(low_byte, byte)),
                            self.write_enable.eq(1),
                            self.words_written.eq(self.words_written + 1),
                            remaining.eq(remaining - 1),
                        ]
                        with m.If(remaining == 1):
                            m.d.sync += stop_reader.eq(1)
                            m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(crc_bits == 0):
                    with m.If(crc == stored_crc):
                        m.next = "DONE"
                    with m.Else():
                        fail(LoaderError.BAD_CHECKSUM)
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
            with m.State("ERROR"):
                m.d.comb += self.error.eq(1)
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") & ~self.done & ~self.error)
        return m
