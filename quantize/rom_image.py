"""A ROM image: the words of one on-chip weight memory, plus the folding that produced it."""
from __future__ import annotations

from dataclasses import dataclass, field

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref.validation import is_integer


@dataclass(frozen=True)
class RomImage:
    """Words of a ``width``-bit × ``depth`` ROM.

    Attributes
    ----------
    width : bits per word (≥ 1).
    depth : number of words (≥ 1).
    words : ``depth`` Python ints in ``[0, 2^width)`` (any width; no 64-bit limit).
    pe, simd, n, k : the folding of the weight matrix ``[n, k]`` the words hold, as packed by
        :func:`binaryvit.quantize.weight_packing.pack_weight_rom`; ``None`` for an image
        read back from a file, whose format does not record it.
    """

    width: int
    depth: int
    words: list[int] = field(repr=False)
    pe: int | None = None
    simd: int | None = None
    n: int | None = None
    k: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "depth", "pe", "simd", "n", "k"):
            value = getattr(self, name)
            if value is None and name not in ("width", "depth"):
                continue
            if not is_integer(value) or value < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        words = [int(w) for w in self.words]
        object.__setattr__(self, "words", words)
        if len(words) != self.depth:
            raise DataError(f"words: expected {self.depth} words (depth), got {len(words)}")
        for address, word in enumerate(words):
            if word < 0 or word >> self.width:
                raise DataError(f"words: word {address} = {word:#x} does not fit {self.width} unsigned bits")
        folding = (self.pe, self.simd, self.n, self.k)
        if any(v is None for v in folding):
            if any(v is not None for v in folding):
                raise ConfigError("pe, simd, n, k: give all four (the folding) or none")
            return
        pe, simd, n, k = folding
        if self.width != pe * simd or n % pe or k % simd or self.depth != (n // pe) * (k // simd):
            raise ConfigError(f"folding pe={pe}, simd={simd} of a [{n}, {k}] matrix does not match a "
                              f"{self.width}-bit × {self.depth} ROM (needs width pe·simd, depth (n/pe)·(k/simd))")

    @property
    def has_folding(self) -> bool:
        return self.pe is not None
