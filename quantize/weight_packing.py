"""FINN-style folding of a binary weight matrix into one wide ROM (and back).

A matrix ``w[N, K]`` runs on ``pe`` output lanes × ``simd`` input lanes:

- output row ``n`` belongs to PE ``n % pe`` at neuron fold ``nf = n // pe``;
- input ``k`` is in synapse fold ``sf = k // simd``, lane ``j = k % simd``;
- word address ``nf·SF + sf`` with ``NF = N/pe``, ``SF = K/simd`` (depth ``NF·SF``); the
  MVU reads addresses in order, all synapse folds of one neuron fold back to back;
- the word is ``pe·simd`` bits: PE ``p`` occupies bits ``[p·simd, (p+1)·simd)`` and bit ``j``
  of that slice is input ``k = sf·simd + j`` (LSB-first), bit 1 ↔ weight +1.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from binaryvit.errors import ConfigError, DataError, FoldingError
from binaryvit.golden.intref.validation import as_bit_tensor, divisors, is_integer
from binaryvit.quantize.rom_image import RomImage


def check_folding(n: int, k: int, pe: int, simd: int) -> None:
    """Raise ``FoldingError`` unless ``pe`` divides ``n`` and ``simd`` divides ``k``."""
    for name, value, dim, dim_name in (("pe", pe, n, "N (outputs)"), ("simd", simd, k, "K (inputs)")):
        if not is_integer(value) or value < 1 or dim % value:
            raise FoldingError(f"{name}={value!r} does not divide {dim_name}={dim}; valid {name} values: {divisors(dim)}")


def pack_weight_rom(w_bits: Any, pe: int, simd: int) -> RomImage:
    """Fold ``w_bits[N, K]`` (bool, 1 ↔ +1) into a ``pe·simd``-bit × ``(N/pe)·(K/simd)`` ROM image."""
    w = as_bit_tensor(w_bits, "w_bits")
    if w.dim() != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise DataError(f"w_bits: expected a non-empty [N, K] bit matrix, got shape {tuple(w.shape)}")
    n, k = w.shape
    check_folding(n, k, pe, simd)
    pe, simd = int(pe), int(simd)
    nf, sf = n // pe, k // simd
    # [N, K] -> [nf, pe, sf, simd] -> [nf, sf, pe, simd]: one row of pe·simd bits per address,
    # element p·simd + j = w[nf·pe + p, sf·simd + j], so LSB-first packing gives the word layout.
    rows = w.reshape(nf, pe, sf, simd).permute(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    # LSB-first bytes, little-endian: the same integer as pack_bits_to_int, for a whole ROM at once
    packed = np.packbits(rows.numpy(), axis=1, bitorder="little")
    words = [int.from_bytes(row, "little") for row in map(bytes, packed)]
    return RomImage(width=pe * simd, depth=nf * sf, words=words, pe=pe, simd=simd, n=n, k=k)


def unpack_weight_rom(image: RomImage) -> torch.Tensor:
    """Inverse of :func:`pack_weight_rom`: the ``bool[N, K]`` matrix held by a folded image."""
    if not image.has_folding:
        raise ConfigError("image: its folding (pe, simd, n, k) is unknown; set it with "
                          "dataclasses.replace(image, pe=..., simd=..., n=..., k=...)")
    pe, simd, n, k = image.pe, image.simd, image.n, image.k
    nbytes = -(-image.width // 8)
    raw = np.frombuffer(b"".join(word.to_bytes(nbytes, "little") for word in image.words), dtype=np.uint8)
    bits = np.unpackbits(raw.reshape(image.depth, nbytes), axis=1, bitorder="little")[:, : image.width]
    bits = torch.from_numpy(bits.astype(bool))
    return bits.reshape(n // pe, k // simd, pe, simd).permute(0, 2, 1, 3).reshape(n, k)


def split_per_pe(image: RomImage) -> list[RomImage]:
    """One ``simd``-bit × ``depth`` ROM per PE (bits ``[p·simd, (p+1)·simd)`` of every word)."""
    if not image.has_folding:
        raise ConfigError("image: its folding (pe, simd, n, k) is unknown")
    mask = (1 << image.simd) - 1
    return [RomImage(width=image.simd, depth=image.depth, words=[(w >> (p * image.simd)) & mask for w in image.words])
            for p in range(image.pe)]
