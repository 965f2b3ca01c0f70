"""Host side of the board UART protocol (``docs/boards.md``), with no serial library.

The byte-level protocol — commands, framing, checksums, status bits, the info block — is
defined here once; the RTL (:mod:`binaryvit.hw.boards.board_wrapper`) imports these constants.
:class:`SerialPort` opens a POSIX tty with ``os.open`` and ``termios`` (raw 8N1).
"""
from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass
from typing import Sequence

from binaryvit.errors import ConfigError, DataError, ToolError

__all__ = ["COMMAND_INFO", "COMMAND_CLASSIFY", "COMMAND_LOAD", "encode_load", "decode_load_answer",
           "load_parameters", "RESPONSE_SYNC", "PROTOCOL_VERSION",
           "STATUS_CHECKSUM", "STATUS_PIXEL_RANGE", "STATUS_LENGTH", "STATUS_PARAMETERS",
           "STATUS_NOT_READY",
           "PIXEL_ORDERS", "DesignInfo",
           "Classification", "checksum", "encode_request", "decode_response", "SerialPort",
           "query_info", "classify"]

COMMAND_INFO = 0x3F       # '?': the board answers with its DesignInfo block
COMMAND_CLASSIFY = 0x43   # 'C': followed by the image bytes and their checksum
COMMAND_LOAD = 0x50       # 'P': a 4-byte length, then a parameter image (engine boards built
                          # with the UART load path); the board answers LOAD_ANSWER_LENGTH bytes
LOAD_ANSWER_LENGTH = 4
RESPONSE_SYNC = 0xA5      # first byte of every answer
PROTOCOL_VERSION = 1
INFO_MAGIC = b"BV"

STATUS_CHECKSUM = 0x01     # the request's checksum did not match (nothing was computed)
STATUS_PIXEL_RANGE = 0x02  # a pixel byte does not fit the accelerator's input element
STATUS_LENGTH = 0x04       # the accelerator gave a different number of output words
STATUS_PARAMETERS = 0x08   # the engine refused its parameter image at boot (class byte: why)
STATUS_NOT_READY = 0x10    # the engine was still loading its parameters (nothing computed)
STATUS_NAMES = {STATUS_CHECKSUM: "request checksum mismatch",
                STATUS_PIXEL_RANGE: "a pixel does not fit the input element",
                STATUS_LENGTH: "the accelerator's output had the wrong length",
                STATUS_PARAMETERS: "the board refused its parameter image",
                STATUS_NOT_READY: "the board was still loading its parameters; send it again"}
PIXEL_ORDERS = ("patches", "hwc")
"""Info flag bit 2 clear: pixels in the generated network's patch order; set: ``[H, W, C]``
(pixel by pixel in raster order, each pixel's channels together: the engine's input)."""


def checksum(data: bytes | Sequence[int]) -> int:
    """Sum of the bytes modulo 256."""
    return sum(data) & 0xFF


@dataclass(frozen=True)
class DesignInfo:
    """What the board's design expects and returns (the answer to ``COMMAND_INFO``)."""

    pixels: int
    num_logits: int
    logit_bytes: int
    pixel_width: int
    pixel_signed: bool
    logit_signed: bool
    pixel_order: str = "patches"

    INFO_LENGTH = 11

    def __post_init__(self) -> None:
        if self.pixel_order not in PIXEL_ORDERS:
            raise ConfigError(f"pixel_order: expected one of {PIXEL_ORDERS}, "
                              f"got {self.pixel_order!r}")

    @property
    def request_length(self) -> int:
        return 1 + self.pixels + 1

    @property
    def response_length(self) -> int:
        return 3 + self.num_logits * self.logit_bytes + 1

    def encode(self) -> bytes:
        """The info block: sync, ``BV``, version, pixels (2 bytes LE), num_logits,
        logit_bytes, flags (bit 0 pixel signed, bit 1 logit signed, bit 2 pixels in
        ``[H, W, C]`` order), pixel width, checksum."""
        body = bytes([*INFO_MAGIC, PROTOCOL_VERSION, self.pixels & 0xFF, self.pixels >> 8,
                      self.num_logits, self.logit_bytes,
                      int(self.pixel_signed) | int(self.logit_signed) << 1
                      | int(self.pixel_order == "hwc") << 2, self.pixel_width])
        return bytes([RESPONSE_SYNC]) + body + bytes([checksum(body)])

    @classmethod
    def decode(cls, block: bytes) -> "DesignInfo":
        if len(block) != cls.INFO_LENGTH or block[0] != RESPONSE_SYNC \
                or block[1:3] != INFO_MAGIC:
            raise DataError(f"not a binaryvit info block: {block.hex(' ')}")
        if checksum(block[1:-1]) != block[-1]:
            raise DataError(f"info block checksum mismatch: {block.hex(' ')}")
        if block[3] != PROTOCOL_VERSION:
            raise DataError(f"the board speaks protocol version {block[3]}, this host "
                            f"{PROTOCOL_VERSION}")
        return cls(pixels=block[4] | block[5] << 8, num_logits=block[6], logit_bytes=block[7],
                   pixel_signed=bool(block[8] & 1), logit_signed=bool(block[8] & 2),
                   pixel_width=block[9], pixel_order=PIXEL_ORDERS[(block[8] >> 2) & 1])


@dataclass(frozen=True)
class Classification:
    """A decoded answer: the predicted class and the logits as integers."""

    label: int
    logits: list[int]


def encode_request(pixels: Sequence[int], info: DesignInfo) -> bytes:
    """``COMMAND_CLASSIFY``, one byte per pixel (two's complement for signed inputs),
    checksum. Pixels outside the input element's range raise ``DataError``."""
    values = [int(p) for p in pixels]
    if len(values) != info.pixels:
        raise DataError(f"image has {len(values)} pixels, the design expects {info.pixels}")
    w = info.pixel_width
    low, high = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if info.pixel_signed else (0, (1 << w) - 1)
    bad = [(i, v) for i, v in enumerate(values) if not low <= v <= high]
    if bad:
        i, v = bad[0]
        raise DataError(f"pixel {i} = {v} is outside the input range [{low}, {high}] "
                        f"({'signed' if info.pixel_signed else 'unsigned'} {w} bits); "
                        f"{len(bad)} pixels are out of range")
    body = bytes(v & 0xFF for v in values)
    return bytes([COMMAND_CLASSIFY]) + body + bytes([checksum(body)])


def decode_response(frame: bytes, info: DesignInfo) -> Classification:
    """Check and decode a response frame (``DataError`` naming what is wrong)."""
    if len(frame) != info.response_length:
        raise DataError(f"response has {len(frame)} bytes, expected {info.response_length}")
    if frame[0] != RESPONSE_SYNC:
        raise DataError(f"response starts with {frame[0]:#04x}, expected {RESPONSE_SYNC:#04x}")
    if checksum(frame[1:-1]) != frame[-1]:
        raise DataError(f"response checksum {frame[-1]:#04x} does not match its bytes "
                        f"({checksum(frame[1:-1]):#04x})")
    status = frame[1]
    if status:
        reasons = [name for bit, name in STATUS_NAMES.items() if status & bit]
        if status & STATUS_PARAMETERS:
            from binaryvit.hw.engine.loader_receiver import LoaderError
            code = frame[2]
            why = LoaderError(code).name if code in set(LoaderError) else f"code {code}"
            reasons[reasons.index(STATUS_NAMES[STATUS_PARAMETERS])] += f" ({why})"
        raise DataError(f"the board refused the image (status {status:#04x}: "
                        f"{'; '.join(reasons) or 'unknown'})")
    n = info.logit_bytes
    logits = [int.from_bytes(frame[3 + k * n:3 + (k + 1) * n], "little", signed=info.logit_signed)
              for k in range(info.num_logits)]
    return Classification(label=frame[2], logits=logits)


_BAUD_CONSTANTS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000,
                   921600, 1000000, 1152000, 1500000, 2000000, 3000000)


class SerialPort:
    """A raw 8N1 serial port on a POSIX tty, opened with ``os.open`` and ``termios``."""

    def __init__(self, path: str | os.PathLike, baud: int = 115200):
        import termios
        if baud not in _BAUD_CONSTANTS or not hasattr(termios, f"B{baud}"):
            raise ConfigError(f"baud={baud}: choose one of "
                              f"{[b for b in _BAUD_CONSTANTS if hasattr(termios, f'B{b}')]}")
        try:
            self.fd = os.open(os.fspath(path), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise ToolError(f"cannot open serial port {path}: {exc.strerror}") from None
        try:
            attrs = termios.tcgetattr(self.fd)
        except termios.error:
            os.close(self.fd)
            raise ToolError(f"{path} is not a serial port (tcgetattr failed)") from None
        speed = getattr(termios, f"B{baud}")
        attrs[0] = 0                                                       # iflag: raw
        attrs[1] = 0                                                       # oflag: raw
        attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL           # cflag: 8N1
        attrs[3] = 0                                                       # lflag: no echo
        attrs[4] = attrs[5] = speed
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        termios.tcflush(self.fd, termios.TCIOFLUSH)
        self.path = str(path)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], 1.0)
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                continue

    def read_exact(self, count: int, timeout: float) -> bytes:
        """``count`` bytes, or ``ToolError`` after ``timeout`` seconds naming what arrived."""
        data = bytearray()
        deadline = time.monotonic() + timeout
        while len(data) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ToolError(f"{self.path}: timed out after {timeout:g} s waiting for "
                                f"{count} bytes, got {len(data)}"
                                f"{': ' + data.hex(' ') if data else ' (is the board programmed?)'}")
            readable, _, _ = select.select([self.fd], [], [], left)
            if readable:
                try:
                    data += os.read(self.fd, count - len(data))
                except BlockingIOError:
                    continue
        return bytes(data)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "SerialPort":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def query_info(port: SerialPort, timeout: float = 2.0) -> DesignInfo:
    port.write(bytes([COMMAND_INFO]))
    return DesignInfo.decode(port.read_exact(DesignInfo.INFO_LENGTH, timeout))


def classify(port: SerialPort, pixels: Sequence[int], info: DesignInfo,
             timeout: float = 5.0) -> Classification:
    port.write(encode_request(pixels, info))
    return decode_response(port.read_exact(info.response_length, timeout), info)


def encode_load(image: bytes) -> bytes:
    """``COMMAND_LOAD``, the image's length (4 bytes, little endian), the image."""
    return bytes([COMMAND_LOAD]) + len(image).to_bytes(4, "little") + bytes(image)


def decode_load_answer(frame: bytes) -> None:
    """Check the answer to ``COMMAND_LOAD`` (``0xA5, status, code, checksum``); ``DataError``
    naming the loader's reason when the board refused the image."""
    if len(frame) != LOAD_ANSWER_LENGTH or frame[0] != RESPONSE_SYNC \
            or checksum(frame[1:3]) != frame[3]:
        raise DataError(f"not a load answer: {frame.hex(' ')}")
    if frame[1]:
        decode_response(bytes([RESPONSE_SYNC, frame[1], frame[2], checksum(frame[1:3])]),
                        DesignInfo(pixels=1, num_logits=0, logit_bytes=1, pixel_width=8,
                                   pixel_signed=False, logit_signed=False))


def load_parameters(port: SerialPort, image: bytes, timeout: float = 30.0) -> None:
    """Send a parameter image over the UART (engine boards with the load path)."""
    port.write(encode_load(image))
    decode_load_answer(port.read_exact(LOAD_ANSWER_LENGTH, timeout))
