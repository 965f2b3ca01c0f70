"""Binary values and bit packing: sign(0) = +1, bit 1 ↔ +1, vectors packed LSB-first."""
from __future__ import annotations

from typing import Any

import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref.validation import as_bit_tensor, as_int_tensor, check_min_dims, is_integer

MAX_TENSOR_WORD_WIDTH = 62


def sign_bits(x: Any) -> torch.Tensor:
    """Bits of ``sign(x)``: ``True`` (+1) where ``x >= 0``, so sign(0) = +1.

    Parameters
    ----------
    x : integer tensor, any shape (fixed-point values).

    Returns
    -------
    bool tensor of the same shape.
    """
    return as_int_tensor(x, "x") >= 0


def _check_word_width(word_width: Any) -> int:
    if not is_integer(word_width) or not 1 <= word_width <= MAX_TENSOR_WORD_WIDTH:
        raise ConfigError(f"word_width: expected an integer in [1, {MAX_TENSOR_WORD_WIDTH}] for int64 words "
                          f"(use pack_bits_to_int for wider words), got {word_width!r}")
    return int(word_width)


def pack_bits(bits: Any, word_width: int) -> torch.Tensor:
    """Pack ``bits[..., K]`` into ``int64[..., ceil(K / word_width)]`` words, LSB-first.

    Bit ``i`` of the vector is bit ``i mod word_width`` of word ``i div word_width``; the
    pad bits of the last word are 0. ``word_width`` is at most 62 so words stay non-negative.
    """
    b = as_bit_tensor(bits, "bits")
    check_min_dims(b, 1, "bits", "[..., K]")
    w = _check_word_width(word_width)
    k = b.shape[-1]
    n_words = -(-k // w)
    padded = torch.zeros(*b.shape[:-1], n_words * w, dtype=torch.int64)
    padded[..., :k] = b.to(torch.int64)
    weights = torch.ones(w, dtype=torch.int64) << torch.arange(w, dtype=torch.int64)
    return (padded.reshape(*b.shape[:-1], n_words, w) * weights).sum(-1)


def unpack_bits(words: Any, k: int, word_width: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``int64[..., W]`` words to ``bool[..., k]``.

    Refuses words with a set pad bit or a value outside ``[0, 2^word_width)``.
    """
    t = as_int_tensor(words, "words")
    check_min_dims(t, 1, "words", "[..., n_words]")
    w = _check_word_width(word_width)
    if not is_integer(k) or k < 0:
        raise ConfigError(f"k: expected a non-negative integer, got {k!r}")
    n_words = -(-k // w)
    if t.shape[-1] != n_words:
        raise DataError(f"words: {k} bits in {w}-bit words need {n_words} words, got {t.shape[-1]}")
    if t.numel() and (bool((t < 0).any()) or bool((t >> w).any())):
        raise DataError(f"words: values must lie in [0, 2^{w})")
    shifts = torch.arange(w, dtype=torch.int64)
    bits = ((t.unsqueeze(-1) >> shifts) & 1).reshape(*t.shape[:-1], n_words * w)
    if bool(bits[..., k:].any()):
        raise DataError(f"words: pad bits above bit {k} of the vector are set (they must be 0)")
    return bits[..., :k].to(torch.bool)


def pack_bits_to_int(bits: Any) -> int:
    """Pack a 1-D bit vector into one Python int of any width, LSB-first (bit ``i`` = element ``i``)."""
    b = as_bit_tensor(bits, "bits")
    if b.dim() != 1:
        raise DataError(f"bits: expected a 1-D bit vector, got shape {tuple(b.shape)}")
    # bytes little-endian with LSB-first bits inside each byte is exactly the LSB-first integer
    as_bytes = torch.zeros(-(-b.shape[0] // 8) * 8, dtype=torch.bool)
    as_bytes[: b.shape[0]] = b
    packed = bytes(pack_bits(as_bytes, 8).tolist())
    return int.from_bytes(packed, "little")


def unpack_int_to_bits(value: int, k: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits_to_int`: the ``k`` low bits of ``value`` as ``bool[k]``.

    Refuses a negative value or one with bits set at or above bit ``k``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        value = int(value)
    if not is_integer(k) or k < 0:
        raise ConfigError(f"k: expected a non-negative integer, got {k!r}")
    if value < 0 or value >> k:
        raise DataError(f"value: must lie in [0, 2^{k}), got {value}")
    raw = torch.tensor(list(value.to_bytes(-(-k // 8), "little")), dtype=torch.int64)
    return unpack_bits(raw, -(-k // 8) * 8, 8)[:k] if k else torch.zeros(0, dtype=torch.bool)
