"""Tensors as 16-bit memory words: the layouts of ``TensorKind`` in both directions.

The compiler writes the parameter payload with these functions, the instruction-set
simulator reads and writes activations with them, and the RTL's tests will too. Words are
``uint16``; ``STREAM`` values are signed 16-bit, ``WIDE`` values signed ``16·wide`` bits
least significant word first, ``BITS`` rows packed LSB-first (pad bits 0), ``BITS_T`` the
transposed bits packed per column. Memories are ``uint16 [B, words]``: one copy per image.
"""
from __future__ import annotations

import numpy as np
import torch

from binaryvit.errors import CompileError
from binaryvit.hw.engine.isa import TensorKind, TensorRef


def signed_words(values, what: str) -> np.ndarray:
    """Signed 16-bit values as ``uint16`` words; CompileError naming ``what`` if one does not fit."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and (v.min() < -(1 << 15) or v.max() >= 1 << 15):
        raise CompileError(f"{what}: values span [{v.min()}, {v.max()}], which does not fit a "
                           f"signed 16-bit word")
    return (v & 0xFFFF).astype(np.uint16)


def wide_words(values, wide: int, what: str) -> np.ndarray:
    """Signed ``16·wide``-bit values as ``wide`` words each (least significant first)."""
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    bits = 16 * wide
    if v.size and (v.min() < -(1 << (bits - 1)) or v.max() >= 1 << (bits - 1)):
        raise CompileError(f"{what}: values span [{v.min()}, {v.max()}], which does not fit "
                           f"{bits} signed bits")
    return np.stack([(v >> (16 * i)) & 0xFFFF for i in range(wide)], axis=-1) \
        .reshape(-1).astype(np.uint16)


def pack16(bits) -> np.ndarray:
    """``bool [..., K]`` → ``uint16 [..., ceil(K / 16)]``: bit ``i`` of the vector is bit
    ``i mod 16`` of word ``i div 16``, pad bits 0 (``intref.pack_bits`` with 16-bit words)."""
    b = np.asarray(bits, dtype=bool)
    k = b.shape[-1]
    padded = np.zeros(b.shape[:-1] + (-(-k // 16) * 16,), dtype=bool)
    padded[..., :k] = b
    octets = np.packbits(padded, axis=-1, bitorder="little").astype(np.uint16)
    return octets[..., 0::2] | (octets[..., 1::2] << 8)


def unpack16(words, k: int) -> np.ndarray:
    """Inverse of :func:`pack16`: ``uint16 [..., W]`` → ``bool [..., k]``."""
    w = np.asarray(words, dtype=np.uint16)
    octets = np.stack([w & 0xFF, w >> 8], axis=-1).astype(np.uint8).reshape(*w.shape[:-1], -1)
    return np.unpackbits(octets, axis=-1, bitorder="little")[..., :k].astype(bool)


def bit_words(bits) -> np.ndarray:
    """``bool [rows, cols]`` packed row by row, 16 bits per word, LSB-first."""
    return pack16(bits).reshape(-1)


def tensor_words(ref: TensorRef, value, wide: int, what: str) -> np.ndarray:
    """The words of ``value`` (``[rows, cols]``) stored as ``ref`` describes."""
    v = np.asarray(value)
    if v.shape != (ref.rows, ref.cols):
        raise CompileError(f"{what}: shape {v.shape} is not the planned ({ref.rows}, {ref.cols})")
    if ref.kind == TensorKind.STREAM:
        return signed_words(v, what).reshape(-1)
    if ref.kind == TensorKind.WIDE:
        return wide_words(v, wide, what)
    if ref.kind == TensorKind.BITS:
        return bit_words(v)
    return bit_words(v.T)


def _span(memory: np.ndarray, address: int, words: int) -> np.ndarray:
    if address < 0 or address + words > memory.shape[-1]:
        raise CompileError(f"access of {words} words at {address} lies outside the "
                           f"{memory.shape[-1]}-word memory")
    return memory[..., address:address + words]


def read_tensor(memory: np.ndarray, ref: TensorRef, wide: int) -> torch.Tensor:
    """``[B, rows, cols]``: int64 for ``STREAM`` / ``WIDE``, bool for ``BITS`` / ``BITS_T``."""
    raw = _span(memory, ref.address, ref.words(wide)).astype(np.int64)
    b = memory.shape[0]
    if ref.kind == TensorKind.STREAM:
        v = raw.reshape(b, ref.rows, ref.cols)
        return torch.from_numpy(np.where(v >= 1 << 15, v - (1 << 16), v))
    if ref.kind == TensorKind.WIDE:
        parts = raw.reshape(b, ref.rows, ref.cols, wide)
        v = sum(parts[..., i] << (16 * i) for i in range(wide))
        top = 1 << (16 * wide - 1)
        return torch.from_numpy(np.where(v >= top, v - 2 * top, v))
    if ref.kind == TensorKind.BITS:
        return torch.from_numpy(unpack16(raw.reshape(b, ref.rows, -1), ref.cols))
    return torch.from_numpy(unpack16(raw.reshape(b, ref.cols, -1), ref.rows)).transpose(1, 2)


def write_tensor(memory: np.ndarray, ref: TensorRef, value: torch.Tensor, wide: int) -> None:
    """Store ``value`` (``[B, rows, cols]``) into every image's memory as ``ref`` describes."""
    b = memory.shape[0]
    v = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if tuple(v.shape) != (b, ref.rows, ref.cols):
        raise CompileError(f"store of shape {tuple(v.shape)} into a planned ({b}, {ref.rows}, "
                           f"{ref.cols}) tensor")
    what = f"tensor at word {ref.address}"
    if ref.kind == TensorKind.STREAM:
        words = signed_words(v.numpy(), what)
    elif ref.kind == TensorKind.WIDE:
        words = wide_words(v.numpy(), wide, what)
    elif ref.kind == TensorKind.BITS:
        words = pack16(v.to(torch.bool).numpy())
    else:
        words = pack16(v.to(torch.bool).transpose(1, 2).numpy())
    _span(memory, ref.address, ref.words(wide))[...] = words.reshape(b, -1)


__all__ = ["signed_words", "wide_words", "bit_words", "pack16", "unpack16", "tensor_words", "read_tensor",
           "write_tensor"]
