"""Stream words of the fixed-point and binary activation streams, and their packing.

Layouts follow ``docs/hardware-conventions.md``: a payload is a ``StructLayout`` with a
``data`` field (``ArrayLayout(signed(width), lanes)`` for fixed point, ``unsigned(simd)``
for binary) followed by a ``last`` bit, set on the final word of each image. Element ``j``
of word ``w`` within a token is channel ``w·lanes + j``; channels fill a token before the
next token starts. On the Verilog side a word is one integer, ``data`` at the LSBs.

The encoders take integer tensors ``[tokens, C]`` (one image) or ``[images, tokens, C]``;
the decoders split words at ``last`` flags and return ``[images, tokens, C]``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from binaryvit.errors import DataError
from binaryvit.golden.intref.validation import as_bit_tensor, as_int_tensor

__all__ = ["fixed_point_layout", "binary_layout", "encode_fixed_point", "decode_fixed_point",
           "encode_binary", "decode_binary", "FixedPointStreamCodec"]


def fixed_point_layout(width: int, lanes: int, *, is_signed: bool = True) -> data.StructLayout:
    """``{data: ArrayLayout(signed(width), lanes), last: 1}`` (``unsigned`` if not ``is_signed``)."""
    element = signed(width) if is_signed else unsigned(width)
    return data.StructLayout({"data": data.ArrayLayout(element, lanes), "last": 1})


def binary_layout(simd: int) -> data.StructLayout:
    """``{data: unsigned(simd), last: 1}``: bit ``j`` is channel ``word·simd + j``, 1 ↔ +1."""
    return data.StructLayout({"data": unsigned(simd), "last": 1})


def _as_images(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 2:
        return x.unsqueeze(0)
    if x.dim() != 3:
        raise DataError(f"{name}: expected shape [tokens, C] or [images, tokens, C], got {tuple(x.shape)}")
    return x


def _word_groups(x: torch.Tensor, lanes: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` as ``[words, lanes]`` plus each word's ``last`` flag."""
    images, tokens, channels = x.shape
    if channels % lanes:
        raise DataError(f"{name}: {channels} channels do not fill words of {lanes} lanes")
    words = x.reshape(images, tokens * channels // lanes, lanes)
    last = torch.zeros(words.shape[:2], dtype=torch.int64)
    if words.shape[1]:
        last[:, -1] = 1
    return words.reshape(-1, lanes), last.reshape(-1)


def encode_fixed_point(x: Any, width: int, lanes: int, *, is_signed: bool = True) -> list[int]:
    """Flat payload integers for the fixed-point tensor ``x`` (values must fit the element)."""
    t = _as_images(as_int_tensor(x, "x"), "x")
    low, high = ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed
                 else (0, (1 << width) - 1))
    if t.numel() and (int(t.min()) < low or int(t.max()) > high):
        kind = "signed" if is_signed else "unsigned"
        raise DataError(f"x: values must fit {kind}({width}), i.e. [{low}, {high}]; "
                        f"got range [{int(t.min())}, {int(t.max())}]")
    words, last = _word_groups(t, lanes, "x")
    mask = (1 << width) - 1
    result = []
    for row, flag in zip(words.tolist(), last.tolist()):
        word = flag << (width * lanes)
        for j, value in enumerate(row):
            word |= (value & mask) << (j * width)
        result.append(word)
    return result


def _split_images(lasts: list[int], count: int) -> int:
    """Words per image, checking every image has the same length and ends with ``last``."""
    if not count:
        raise DataError("no words to decode")
    ends = [i for i, flag in enumerate(lasts) if flag]
    if not ends or ends[-1] != count - 1:
        raise DataError("the final word does not carry last = 1 (incomplete image)")
    length = ends[0] + 1
    if any(end != (n + 1) * length - 1 for n, end in enumerate(ends)):
        raise DataError(f"last flags at words {ends} do not split the stream into equal images")
    return length


def decode_fixed_point(words: Sequence[int], width: int, lanes: int, channels: int, *,
                       is_signed: bool = True) -> torch.Tensor:
    """``[images, tokens, channels]`` int64 tensor from flat payload integers."""
    mask = (1 << width) - 1
    lasts = [(w >> (width * lanes)) & 1 for w in words]
    per_image = _split_images(lasts, len(words))
    values = []
    for word in words:
        for j in range(lanes):
            v = (word >> (j * width)) & mask
            if is_signed and v >> (width - 1):
                v -= 1 << width
            values.append(v)
    if (per_image * lanes) % channels:
        raise DataError(f"an image of {per_image} words × {lanes} lanes is not a whole number "
                        f"of tokens of {channels} channels")
    return torch.tensor(values, dtype=torch.int64).reshape(len(words) // per_image, -1, channels)


def encode_binary(bits: Any, simd: int) -> list[int]:
    """Flat payload integers for the bit tensor ``bits`` (bool or 0/1; 1 ↔ +1)."""
    t = _as_images(as_bit_tensor(bits, "bits").to(torch.int64), "bits")
    words, last = _word_groups(t, simd, "bits")
    weights = torch.tensor([1 << j for j in range(simd)], dtype=torch.int64) if simd < 63 else None
    if weights is not None:
        packed = (words * weights).sum(dim=1).tolist()
    else:
        packed = [sum(b << j for j, b in enumerate(row)) for row in words.tolist()]
    return [p | (flag << simd) for p, flag in zip(packed, last.tolist())]


def decode_binary(words: Sequence[int], simd: int, channels: int) -> torch.Tensor:
    """``[images, tokens, channels]`` bool tensor from flat payload integers."""
    lasts = [(w >> simd) & 1 for w in words]
    per_image = _split_images(lasts, len(words))
    if (per_image * simd) % channels:
        raise DataError(f"an image of {per_image} words × {simd} bits is not a whole number "
                        f"of tokens of {channels} channels")
    bits = [(w >> j) & 1 for w in words for j in range(simd)]
    return torch.tensor(bits, dtype=torch.bool).reshape(len(words) // per_image, -1, channels)


class FixedPointStreamCodec:
    """Stream-word helpers for a kernel whose ``i`` and ``o`` ports are fixed-point streams.

    Mixed into a kernel that provides ``in_width``, ``out_width``, ``lanes`` and
    ``channels``, so tests and the network generator never pack words by hand.
    """

    def encode_input(self, x: Any) -> list[int]:
        """Words for port ``i`` from ``x`` ``[tokens, C]`` or ``[images, tokens, C]``."""
        return encode_fixed_point(x, self.in_width, self.lanes)

    def encode_output(self, y: Any) -> list[int]:
        """Words for port ``o`` from ``y`` ``[tokens, C]`` or ``[images, tokens, C]``."""
        return encode_fixed_point(y, self.out_width, self.lanes)

    def decode_output(self, words: Sequence[int]) -> torch.Tensor:
        """``[images, tokens, C]`` from port ``o``'s words."""
        return decode_fixed_point(words, self.out_width, self.lanes, self.channels)
