"""The engine's parameter image: what the boot loader reads from SPI flash (or the UART)
into the SPRAM, with a header that ties it to one bitstream.

The iCE40UP5K's SPRAM cannot be initialised by the bitstream, so every parameter the engine
reads (weights, per-channel constants, tables) travels in this image and is loaded at boot
by :class:`binaryvit.hw.engine.loader.ParameterLoader`, which checks the same header in
hardware. Layout (all fields little-endian, 20-byte header, then the payload)::

    offset  size  field
         0     4  magic            b"BVPI"
         4     2  format version   1
         6     2  reserved         0
         8     4  design id        the bitstream's id (see :func:`design_id`)
        12     4  payload length   in 16-bit words
        16     4  checksum         CRC-32/MPEG-2 of bytes 0..15 and the payload
        20   2·N  payload          N 16-bit words, each low byte first

The payload is a sequence of *segments*, each a run of words for consecutive memory
addresses, so the compiler can put each memory bank's share of the parameters where its
memory plan wants it (the top of each bank, say) in one image::

    word  field
       0  address, low 16 bits     word address of the segment's first word
       1  address, high 16 bits
       2  count, low 16 bits       words in the segment
       3  count, high 16 bits
       4  count words of data

N counts every payload word, segment headers included; the segments fill it exactly.

CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final
XOR) consumes each byte most significant bit first, the order the bits arrive on the SPI
bus, so the loader updates it one bit per clock with 32 flip-flops and a handful of XORs.
It covers the header's first 16 bytes too, so a corrupted length or design id is caught
even where its value happens to be plausible.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from binaryvit.atomic import write_bytes_atomic
from binaryvit.errors import ParameterImageError

__all__ = ["MAGIC", "FORMAT_VERSION", "HEADER_BYTES", "SEGMENT_HEADER_WORDS", "CRC_POLYNOMIAL", "ParameterImage",
           "crc32_mpeg2", "design_id", "write_parameter_image", "read_parameter_image"]

MAGIC = b"BVPI"
FORMAT_VERSION = 1
HEADER_BYTES = 20
CRC_POLYNOMIAL = 0x04C11DB7
_HEADER = struct.Struct("<4sHHIII")
_CHECKED_HEADER_BYTES = 16     # the checksum covers the header up to (not including) itself


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLYNOMIAL) if crc & 0x8000_0000 else crc << 1
        table.append(crc & 0xFFFF_FFFF)
    return table


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data: bytes, crc: int = 0xFFFF_FFFF) -> int:
    """CRC-32/MPEG-2 of ``data`` (check value: ``crc32_mpeg2(b"123456789") == 0x0376E6E7``);
    pass a previous result as ``crc`` to continue over more bytes."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF_FFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def design_id(description: bytes) -> int:
    """A 32-bit design id: the first four bytes of ``sha256(description)``, little-endian.

    ``description`` is whatever fixes the bitstream's meaning of the payload (the compiled
    program and memory plan); the bitstream carries the id as a constant.
    """
    return int.from_bytes(hashlib.sha256(description).digest()[:4], "little")


def _check_u32(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << 32:
        raise ParameterImageError(f"{name}: expected an unsigned 32-bit integer, got {value!r}")
    return int(value)


SEGMENT_HEADER_WORDS = 4


def _as_words(words: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(words)
    if array.ndim != 1:
        raise ParameterImageError(f"{name}: expected a flat sequence of words, got shape {array.shape}")
    if array.size and (array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 0xFFFF):
        raise ParameterImageError(f"{name}: expected unsigned 16-bit integers (0 to 65535)")
    array = array.astype(np.uint16)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class ParameterImage:
    """Segments of 16-bit words, each for consecutive memory addresses from its start
    address, and the id of the design they belong to.

    ``segments`` is a tuple of ``(address, words)``; the words are unsigned 16-bit patterns
    (a signed value ``v`` is stored as ``v & 0xFFFF``), kept as read-only ``numpy.uint16``
    arrays. Segments may come in any order but must not overlap.
    """

    design_id: int
    segments: tuple[tuple[int, np.ndarray], ...]

    def __init__(self, design_id: int,
                 segments: Sequence[tuple[int, Sequence[int] | np.ndarray]]):
        object.__setattr__(self, "design_id", _check_u32(design_id, "design_id"))
        checked = []
        for index, segment in enumerate(segments):
            if not isinstance(segment, tuple) or len(segment) != 2:
                raise ParameterImageError(f"segment {index}: expected (address, words)")
            address = _check_u32(segment[0], f"segment {index} address")
            checked.append((address, _as_words(segment[1], f"segment {index} words")))
        spans = sorted((a, a + len(w), i) for i, (a, w) in enumerate(checked) if len(w))
        for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
            if start < end:
                raise ParameterImageError(f"segments {first} and {second} overlap")
        object.__setattr__(self, "segments", tuple(checked))

    def payload_words(self) -> np.ndarray:
        """The payload as written: every segment's 4-word header, then its words."""
        parts = []
        for address, words in self.segments:
            parts.append(np.array([address & 0xFFFF, address >> 16, len(words) & 0xFFFF,
                                   len(words) >> 16], dtype=np.uint16))
            parts.append(words)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)

    def memory(self, size: int, fill: int = 0) -> np.ndarray:
        """A ``size``-word memory after loading this image into one filled with ``fill``."""
        memory = np.full(size, fill, dtype=np.uint16)
        for address, words in self.segments:
            if address + len(words) > size:
                raise ParameterImageError(f"a segment reaches word {address + len(words)}, "
                                          f"past the {size}-word memory")
            memory[address:address + len(words)] = words
        return memory

    def to_bytes(self) -> bytes:
        """The image as it is written to flash: header, then payload."""
        words = self.payload_words()
        payload = words.astype("<u2").tobytes()
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, self.design_id, len(words), 0)
        crc = crc32_mpeg2(payload, crc32_mpeg2(head[:_CHECKED_HEADER_BYTES]))
        return head[:_CHECKED_HEADER_BYTES] + struct.pack("<I", crc) + payload

    @classmethod
    def from_bytes(cls, data: bytes, *, expected_design_id: int | None = None,
                   name: str = "parameter image") -> "ParameterImage":
        """Parse and check an image; ``ParameterImageError`` (one line, naming ``name``)
        for a wrong magic or version, a truncated image, trailing bytes, a checksum that
        does not match, segments that do not fill the payload exactly, overlapping
        segments, or a design id other than ``expected_design_id`` (when given)."""
        if len(data) < HEADER_BYTES:
            raise ParameterImageError(f"{name}: truncated: {len(data)} bytes, "
                                      f"shorter than the {HEADER_BYTES}-byte header")
        magic, version, reserved, image_id, words, checksum = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ParameterImageError(f"{name}: not a binaryvit parameter image "
                                      f"(magic {magic!r}, expected {MAGIC!r})")
        if version != FORMAT_VERSION:
            raise ParameterImageError(f"{name}: format version {version}, this binaryvit "
                                      f"reads version {FORMAT_VERSION}")
        if reserved != 0:
            raise ParameterImageError(f"{name}: reserved header field is {reserved:#06x}, expected 0")
        payload = data[HEADER_BYTES:]
        if len(payload) < 2 * words:
            raise ParameterImageError(f"{name}: truncated: the header announces {words} words "
                                      f"({2 * words} bytes), the payload has {len(payload)} bytes")
        if len(payload) > 2 * words:
            raise ParameterImageError(f"{name}: {len(payload) - 2 * words} bytes after the "
                                      f"{words}-word payload")
        actual = crc32_mpeg2(payload, crc32_mpeg2(data[:_CHECKED_HEADER_BYTES]))
        if actual != checksum:
            raise ParameterImageError(f"{name}: checksum {actual:#010x} does not match the "
                                      f"header's {checksum:#010x} (corrupted image)")
        if expected_design_id is not None and image_id != expected_design_id:
            raise ParameterImageError(f"{name}: belongs to design {image_id:#010x}, not to this "
                                      f"bitstream's design {expected_design_id:#010x}")
        segments = _split_segments(np.frombuffer(payload, dtype="<u2"), name)
        try:
            return cls(image_id, segments)
        except ParameterImageError as exc:
            raise ParameterImageError(f"{name}: {exc}") from None


def _split_segments(words: np.ndarray, name: str) -> list[tuple[int, np.ndarray]]:
    segments = []
    at = 0
    while at < len(words):
        if at + SEGMENT_HEADER_WORDS > len(words):
            raise ParameterImageError(f"{name}: segment {len(segments)}'s header runs past the "
                                      f"end of the payload (word {at} of {len(words)})")
        low, high, count_low, count_high = (int(w) for w in words[at:at + SEGMENT_HEADER_WORDS])
        count = count_low | count_high << 16
        at += SEGMENT_HEADER_WORDS
        if at + count > len(words):
            raise ParameterImageError(f"{name}: segment {len(segments)} has {count} words, the "
                                      f"payload only {len(words) - at} more")
        segments.append((low | high << 16, words[at:at + count]))
        at += count
    return segments


def write_parameter_image(path: str | os.PathLike, image: ParameterImage) -> Path:
    """Write ``image.to_bytes()`` to ``path`` atomically; return the path."""
    path = Path(path)
    write_bytes_atomic(path, image.to_bytes())
    return path


def read_parameter_image(path: str | os.PathLike, *,
                         expected_design_id: int | None = None) -> ParameterImage:
    """Read and check the image at ``path`` (see :meth:`ParameterImage.from_bytes`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterImageError(f"cannot read parameter image {path}: {exc.strerror}") from None
    return ParameterImage.from_bytes(data, expected_design_id=expected_design_id, name=str(path))
