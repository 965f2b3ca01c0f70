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

__all__ = ["MAGIC", "FORMAT_VERSION", "HEADER_BYTES", "CRC_POLYNOMIAL", "ParameterImage",
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


@dataclass(frozen=True)
class ParameterImage:
    """A payload of 16-bit words and the id of the design it belongs to.

    ``words`` are unsigned 16-bit patterns (a signed value ``v`` is stored as
    ``v & 0xFFFF``); they are kept as a read-only ``numpy.uint16`` array.
    """

    design_id: int
    words: np.ndarray

    def __init__(self, design_id: int, words: Sequence[int] | np.ndarray):
        object.__setattr__(self, "design_id", _check_u32(design_id, "design_id"))
        array = np.asarray(words)
        if array.ndim != 1:
            raise ParameterImageError(f"words: expected a flat sequence, got shape {array.shape}")
        if array.size and (array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 0xFFFF):
            raise ParameterImageError("words: expected unsigned 16-bit integers (0 to 65535)")
        array = array.astype(np.uint16)
        array.flags.writeable = False
        object.__setattr__(self, "words", array)

    def payload_bytes(self) -> bytes:
        return self.words.astype("<u2").tobytes()

    def to_bytes(self) -> bytes:
        """The image as it is written to flash: header, then payload."""
        payload = self.payload_bytes()
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, self.design_id, len(self.words), 0)
        crc = crc32_mpeg2(payload, crc32_mpeg2(head[:_CHECKED_HEADER_BYTES]))
        return head[:_CHECKED_HEADER_BYTES] + struct.pack("<I", crc) + payload

    @classmethod
    def from_bytes(cls, data: bytes, *, expected_design_id: int | None = None,
                   name: str = "parameter image") -> "ParameterImage":
        """Parse and check an image; ``ParameterImageError`` (one line, naming ``name``)
        for a wrong magic or version, a truncated image, trailing bytes, a checksum that
        does not match, or a design id other than ``expected_design_id`` (when given)."""
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
        return cls(image_id, np.frombuffer(payload, dtype="<u2"))


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
