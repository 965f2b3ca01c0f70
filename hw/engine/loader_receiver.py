"""The parameter image's checks and payload writes, on a byte stream from any source.

:class:`ParameterImageReceiver` is the boot loader without its flash: the SPI flash reader
feeds it in :class:`~binaryvit.hw.engine.loader.ParameterLoader`, and a UART receiver can
feed it the same image byte for byte.
"""
import enum

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.parameter_image import CRC_POLYNOMIAL, FORMAT_VERSION, HEADER_BYTES, MAGIC

__all__ = ["ParameterImageReceiver", "LoaderError", "loader_status", "forward_status"]


class LoaderError(enum.IntEnum):
    """The loader's ``error_code`` (0 while no error)."""

    NONE = 0
    BAD_MAGIC = 1          # not a parameter image (erased flash reads 0xFF)
    BAD_VERSION = 2        # another format version, or a reserved field not 0
    DESIGN_MISMATCH = 3    # an image for another bitstream
    TOO_LONG = 4           # a segment reaches past the end of the memory
    BAD_CHECKSUM = 5       # corrupted or truncated image
    BAD_SEGMENT = 6        # segments that do not fill the payload exactly


_STATUS_NAMES = ("busy", "done", "error", "error_code", "words_written")


def loader_status() -> dict:
    """The run control and status members every loader block has (the receiver, the flash
    loader, the SPRAM bank with its loader): ``start`` in; ``busy``, ``done``, ``error``,
    ``error_code`` (a :class:`LoaderError`) and ``words_written`` out. Fresh members per
    call (a signature member is not shared between components)."""
    return {"start": In(1), "busy": Out(1), "done": Out(1), "error": Out(1),
            "error_code": Out(3), "words_written": Out(17)}


def forward_status(m: Module, outer, inner) -> None:
    """Connect ``outer``'s :func:`loader_status` members to those of the block ``inner`` it
    wraps (``start`` inwards, the rest outwards)."""
    m.d.comb += inner.start.eq(outer.start)
    m.d.comb += [getattr(outer, name).eq(getattr(inner, name)) for name in _STATUS_NAMES]


def _header_constant(design_id: int) -> list[int]:
    """Bytes 0..11 of the header this bitstream accepts: magic, version, reserved, design id."""
    return [*MAGIC, *FORMAT_VERSION.to_bytes(2, "little"), 0, 0, *design_id.to_bytes(4, "little")]


class ParameterImageReceiver(wiring.Component):
    """Check a parameter image arriving as bytes and write its payload to a word memory.

    Parameters
    ----------
    design_id : int
        The 32-bit id the image's header must carry (``parameter_image.design_id``).
    capacity_words : int
        Words the memory holds (1 to 65,536). A segment reaching past it is refused before
        any of its words is written.

    Members
    -------
    start : In(1)
        While idle: expect an image from the next byte on.
    i : In(stream.Signature(8))
        The image's bytes in order (header, then payload). ``ready`` is low for the 9
        cycles after each byte (its handling and the CRC), so a source without
        back-pressure (a UART) must leave at least 10 cycles between bytes.
    stop : Out(1)
        One cycle, the cycle after the receiver needs no more bytes (the image is complete
        or refused): the source may stop sending.
    busy, done, error : Out(1)
        ``done`` or ``error`` rises once the image is finished, and stays (until reset).
    error_code : Out(3)
        A :class:`LoaderError`; valid while ``error``.
    words_written : Out(17)
        Segment data words written so far.
    write_addr : Out(16), write_data : Out(16), write_enable : Out(1)
        Memory write port: ``write_data`` goes to ``write_addr`` in each cycle with
        ``write_enable``, each segment's words to consecutive addresses from its start.

    Checks, in the order the bytes arrive: magic, version and reserved field, design id
    (each the moment its byte differs, before any payload word is written); for each
    segment, that it fits the payload left (``BAD_SEGMENT``) and ends within
    ``capacity_words`` (``TOO_LONG``), before any of its words is written; that the segments
    fill the payload exactly; then CRC-32/MPEG-2 over header bytes 0..15 and the payload
    (one bit per cycle). The data words are written as they arrive, so after
    ``BAD_CHECKSUM`` the memory holds the damaged words: ``done`` low is what keeps the
    engine from using them.

    Timing: 10 cycles per byte at most (take, CRC, next take), plus 3 cycles per segment
    header.
    """

    def __init__(self, *, design_id: int, capacity_words: int = 65536):
        if isinstance(design_id, bool) or not isinstance(design_id, int) or not 0 <= design_id < 1 << 32:
            raise ConfigError(f"design_id: expected an unsigned 32-bit integer, got {design_id!r}")
        if isinstance(capacity_words, bool) or not isinstance(capacity_words, int) \
                or not 1 <= capacity_words <= 65536:
            raise ConfigError(f"capacity_words: expected 1 to 65536, got {capacity_words!r}")
        self.design_id = design_id
        self.capacity_words = capacity_words
        super().__init__({
            **loader_status(),
            "i": In(stream.Signature(8)),
            "stop": Out(1),
            "write_addr": Out(16),
            "write_data": Out(16),
            "write_enable": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # A byte is taken into `held` and handled in the next cycle, so the stream handshake
        # and the word decoding are not one long path (the UP5K's 40 MHz).
        held = Signal(8)
        pending = Signal()
        byte = held
        index = Signal(range(HEADER_BYTES + 1))        # header byte being read
        expected = Array(Const(b, 8) for b in _header_constant(self.design_id))
        length_too_long = Signal()                     # a length byte beyond the 18 bits is not 0
        stored_crc = Signal(32)
        low_byte = Signal(8)
        high_half = Signal()                           # next payload byte is a word's high byte
        word = Cat(low_byte, held)                     # the payload word the high byte completes
        crc = Signal(32)
        crc_bits = Signal(range(9))                    # bits of `held` still to go into the CRC
        crc_busy = Signal()                            # crc_bits != 0, as a flip-flop (timing)
        error_code = Signal(3)
        # Counters are as narrow as a 64 Ki-word memory allows: a payload of up to 2^18 − 1
        # words, segment fields whose high halves must be 0 (address) or at most 1 (count).
        payload_left = Signal(18)                      # payload words still to come (the
                                                       # header's length goes straight in)
        in_header = Signal()                           # the words are a segment header
        header_word = Signal(2)                        # which of its 4 words comes next
        segment_too_far = Signal()                     # starts or ends past the memory
        segment_overruns = Signal()                    # longer than the payload left
        segment_end = Signal(18)
        segment_left = Signal(17)                      # data words of the segment still to come
                                                       # (its header's count goes straight in)
        payload_last = Signal()                        # payload_left == 1, kept as a flip-flop
        segment_last = Signal()                        # segment_left == 1, likewise
        address = Signal(16)                           # the write port's address (a segment
                                                       # header's address goes straight in)

        # registered, so the header compares and the word counters stay off the source's paths
        m.d.sync += self.stop.eq(0)

        # The CRC, one bit of `held` per cycle, most significant bit first (as the bits came
        # off SPI); `held` keeps its byte meanwhile, as nothing is taken while `crc_busy`.
        with m.If(crc_busy):
            feedback = crc[31] ^ held.bit_select((crc_bits - 1)[:3], 1)
            m.d.sync += [
                crc.eq((crc << 1) ^ Mux(feedback, CRC_POLYNOMIAL, 0)),
                crc_bits.eq(crc_bits - 1),
                crc_busy.eq(crc_bits != 1),
            ]
        take = self.i.valid & self.i.ready
        with m.If(take):
            m.d.sync += [held.eq(self.i.payload), pending.eq(1)]

        def checksum():
            m.d.sync += [crc_bits.eq(8), crc_busy.eq(1)]

        def fail(code: LoaderError):
            m.d.sync += [error_code.eq(code), self.stop.eq(1)]
            m.next = "ERROR"

        def finish():
            m.d.sync += self.stop.eq(1)
            m.next = "CHECK"

        # The write port: a data word is written the cycle after its high byte is handled,
        # from `held` and `low_byte` (unchanged: the CRC keeps `ready` low) at `address`,
        # which then moves on.
        m.d.sync += self.write_enable.eq(0)
        m.d.comb += [self.error_code.eq(error_code), self.write_addr.eq(address),
                     self.write_data.eq(word)]
        with m.If(self.write_enable):
            m.d.sync += address.eq(address + 1)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [index.eq(0), crc.eq(0xFFFF_FFFF), high_half.eq(0),
                                 self.words_written.eq(0), pending.eq(0),
                                 length_too_long.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += self.i.ready.eq(~crc_busy & ~pending)
                with m.If(pending):
                    m.d.sync += [pending.eq(0), index.eq(index + 1)]
                    with m.If(index < 16):
                        checksum()
                    with m.If(index < 12):
                        with m.If(byte != expected[index]):
                            with m.If(index < 4):
                                fail(LoaderError.BAD_MAGIC)
                            with m.Elif(index < 8):
                                fail(LoaderError.BAD_VERSION)
                            with m.Else():
                                fail(LoaderError.DESIGN_MISMATCH)
                    with m.Elif(index < 16):
                        # the little-endian length into the 18-bit payload counter
                        with m.Switch(index[:2]):
                            with m.Case(0):
                                m.d.sync += payload_left[:8].eq(byte)
                            with m.Case(1):
                                m.d.sync += payload_left[8:16].eq(byte)
                            with m.Case(2):
                                m.d.sync += payload_left[16:].eq(byte[:2])
                                with m.If(byte[2:] != 0):
                                    m.d.sync += length_too_long.eq(1)
                            with m.Case(3):
                                with m.If(byte != 0):
                                    m.d.sync += length_too_long.eq(1)
                    with m.Else():
                        m.d.sync += stored_crc.eq(Cat(stored_crc[8:], byte))
                        with m.If(index == HEADER_BYTES - 1):
                            m.next = "LENGTH"
            with m.State("LENGTH"):
                m.d.sync += [payload_last.eq(payload_left == 1), in_header.eq(1), header_word.eq(0)]
                with m.If(length_too_long):
                    fail(LoaderError.TOO_LONG)
                with m.Elif(payload_left == 0):
                    finish()
                with m.Else():
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += self.i.ready.eq(~crc_busy & ~pending)
                with m.If(pending):
                    checksum()
                    m.d.sync += [pending.eq(0), high_half.eq(~high_half)]
                    with m.If(~high_half):
                        m.d.sync += low_byte.eq(byte)
                    with m.Else():
                        m.d.sync += [payload_left.eq(payload_left - 1),
                                     payload_last.eq(payload_left == 2)]
                        with m.If(in_header):
                            m.d.sync += header_word.eq(header_word + 1)
                            with m.Switch(header_word):
                                with m.Case(0):
                                    m.d.sync += [address.eq(word), segment_too_far.eq(0)]
                                with m.Case(1):
                                    with m.If(word != 0):
                                        m.d.sync += segment_too_far.eq(1)
                                with m.Case(2):
                                    m.d.sync += segment_left[:16].eq(word)
                                with m.Case(3):
                                    m.d.sync += segment_left[16].eq(word[0])
                                    with m.If(word[1:] != 0):
                                        m.d.sync += segment_too_far.eq(1)
                                    m.next = "SEGMENT"
                            with m.If(payload_last & (header_word != 3)):
                                fail(LoaderError.BAD_SEGMENT)
                        with m.Else():
                            m.d.sync += [
                                self.write_enable.eq(1),
                                self.words_written.eq(self.words_written + 1),
                                segment_left.eq(segment_left - 1),
                                segment_last.eq(segment_left == 2),
                            ]
                            with m.If(segment_last):
                                m.d.sync += [in_header.eq(1), header_word.eq(0)]
                                with m.If(payload_last):
                                    finish()
            with m.State("SEGMENT"):
                # a segment header is in: check it over three cycles, no two carry chains
                # or compares in a row (the UP5K's 40 MHz)
                m.d.sync += [segment_end.eq(address + segment_left),
                             segment_overruns.eq(segment_left > payload_left)]
                m.next = "SEGMENT_END"
            with m.State("SEGMENT_END"):
                m.d.sync += segment_too_far.eq(segment_too_far | (segment_end > self.capacity_words))
                m.next = "SEGMENT_START"
            with m.State("SEGMENT_START"):
                with m.If(segment_overruns):
                    fail(LoaderError.BAD_SEGMENT)
                with m.Elif(segment_too_far):
                    fail(LoaderError.TOO_LONG)
                with m.Elif(segment_left == 0):
                    m.d.sync += header_word.eq(0)
                    with m.If(payload_left == 0):
                        finish()
                    with m.Else():
                        m.next = "PAYLOAD"
                with m.Else():
                    m.d.sync += [in_header.eq(0), segment_last.eq(segment_left == 1)]
                    m.next = "PAYLOAD"
            with m.State("CHECK"):
                with m.If(~crc_busy):
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
