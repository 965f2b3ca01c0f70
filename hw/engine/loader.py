"""The engine's boot loader: parameter image from SPI flash into the SPRAM, checked on the way.

At boot the SPRAM is empty (the bitstream cannot initialise it), so the loader reads the
parameter image (``parameter_image.py``) from the flash at ``flash_offset``, checks its
header against the constants this bitstream was built with, writes the payload into the
SPRAM bank word by word and checks the CRC at the end. The engine starts only on ``done``;
on ``error`` it never starts, so a mismatched or damaged image is never used.
"""
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.flash_reader import SPI_FLASH_SIGNATURE, FlashReader
from binaryvit.hw.engine.loader_receiver import (LoaderError, ParameterImageReceiver,
                                                    forward_status, loader_status)

__all__ = ["ParameterLoader", "LoaderError", "DEFAULT_FLASH_OFFSET"]

DEFAULT_FLASH_OFFSET = 0x10_0000
"""1 MiB: past the iCE40UP5K's 104,090-byte bitstream, on a 64 KiB erase-block boundary."""


class ParameterLoader(wiring.Component):
    """Load a parameter image from SPI flash into a word-addressed memory (the SPRAM bank):
    a :class:`~binaryvit.hw.engine.flash_reader.FlashReader` feeding a
    :class:`~binaryvit.hw.engine.loader_receiver.ParameterImageReceiver`.

    Parameters
    ----------
    design_id : int
        The 32-bit id the image's header must carry (``parameter_image.design_id``).
    capacity_words : int
        Words the memory holds (1 to 65,536; 65,536 for the UP5K's four SPRAMs). A segment
        reaching past it is refused before any of its words is written.
    flash_offset : int
        Byte address of the image in the flash (default 1 MiB).
    half_period, wake_cycles : int
        Passed to the ``FlashReader``.

    Members
    -------
    start : In(1)
        Begin loading (sampled while idle; tie high to load once after reset).
    busy, done, error : Out(1)
        ``done`` or ``error`` rises once the load has finished, and stays (until reset).
    error_code : Out(3)
        A :class:`LoaderError`; valid while ``error``.
    words_written : Out(17)
        Segment data words written so far.
    write_addr : Out(16), write_data : Out(16), write_enable : Out(1)
        Memory write port: word ``write_data`` goes to ``write_addr`` in each cycle with
        ``write_enable`` (one cycle per word, each segment's to consecutive addresses; connect to
        :class:`~binaryvit.hw.engine.spram.SPRAMBank` as ``enable = write = write_enable``,
        ``write_mask = 0b1111``).
    spi : Out(SPI_FLASH_SIGNATURE)
        To the flash pins.

    The checks and error codes are the receiver's. The flash read stops one cycle after
    the last byte the receiver needs (or the first it refuses).

    Timing: the CRC advances one bit per cycle, 8 cycles per byte, in the 16·``half_period``
    cycles the flash takes to send the next byte; so the load takes about
    ``16·half_period·(26 + 2·payload words) + wake_cycles`` cycles (at 40 MHz and the default
    ``half_period`` 2, about 105 ms for the whole 128 KiB).
    """

    def __init__(self, *, design_id: int, capacity_words: int = 65536,
                 flash_offset: int = DEFAULT_FLASH_OFFSET, half_period: int = 2,
                 wake_cycles: int = 120):
        if isinstance(flash_offset, bool) or not isinstance(flash_offset, int) \
                or not 0 <= flash_offset < 1 << 24:
            raise ConfigError(f"flash_offset: expected a 24-bit byte address, got {flash_offset!r}")
        self.receiver = ParameterImageReceiver(design_id=design_id, capacity_words=capacity_words)
        self.reader = FlashReader(half_period=half_period, wake_cycles=wake_cycles)
        self.design_id = design_id
        self.capacity_words = capacity_words
        self.flash_offset = flash_offset
        super().__init__({
            **loader_status(),
            "write_addr": Out(16),
            "write_data": Out(16),
            "write_enable": Out(1),
            "spi": Out(SPI_FLASH_SIGNATURE),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self.reader
        m.submodules.receiver = receiver = self.receiver
        wiring.connect(m, wiring.flipped(self.spi), reader.spi)
        wiring.connect(m, reader.o, receiver.i)
        idle = ~receiver.busy & ~receiver.done & ~receiver.error
        forward_status(m, self, receiver)
        m.d.comb += [
            reader.start.eq(self.start & idle),
            reader.address.eq(self.flash_offset),
            reader.stop.eq(receiver.stop),
            self.write_addr.eq(receiver.write_addr),
            self.write_data.eq(receiver.write_data),
            self.write_enable.eq(receiver.write_enable),
        ]
        return m
