"""The (PE, SIMD) folding of each binary layer's weight ROM: defaults and user overrides.

Default: ``simd`` the largest divisor of K that is at most 64, then ``pe`` the largest
divisor of N with ``pe·simd ≤ 64`` — ROM words of at most 64 bits, one vector in
``(N/pe)·(K/simd)`` cycles. ``--folding`` overrides any layer with ``{"pe": …, "simd": …}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.quantize.weight_packing import check_folding, divisors

MAX_WORD_BITS = 64


@dataclass(frozen=True)
class LayerFolding:
    """One binary layer's MVU folding: ``n`` outputs, ``k`` inputs, ``pe`` × ``simd`` lanes."""

    n: int
    k: int
    pe: int
    simd: int

    @property
    def cycles_per_vector(self) -> int:
        return (self.n // self.pe) * (self.k // self.simd)


def default_folding(n: int, k: int, max_word: int = MAX_WORD_BITS) -> LayerFolding:
    simd = max(d for d in divisors(k) if d <= max_word)
    pe = max(d for d in divisors(n) if d * simd <= max_word)
    return LayerFolding(n, k, pe, simd)


def parse_folding(text: str) -> dict[str, dict[str, int]]:
    """``--folding``: a JSON object, or the path of a file holding one (layer → {pe, simd})."""
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--folding: {text!r} is neither a JSON object nor a file")
        source = path.read_text()
    try:
        data = json.loads(source)
    except ValueError as exc:
        raise ConfigError(f"--folding: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError('--folding: expected {"<layer>": {"pe": P, "simd": S}, ...}')
    return data


def resolve_folding(model: IntModel, overrides: dict[str, Any] | None = None
                    ) -> dict[str, LayerFolding]:
    """Every binary layer's folding: the default, replaced by ``overrides`` where given.

    Raises FoldingError for an unknown layer name (listing valid ones) or a pe/simd that
    does not divide the layer's N/K (listing the valid values).
    """
    layers = {s.name: s.arrays["weight_bits"].shape for s in model.xnor_layers()}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(layers))
    if unknown:
        names = list(layers)
        raise FoldingError(f"--folding names unknown layer {unknown[0]!r}; binary layers are "
                           f"{', '.join(names[:4])}, … ({len(names)} in all)")
    result = {}
    for name, (n, k) in layers.items():
        folding = default_folding(n, k)
        if name in overrides:
            spec = overrides[name]
            extra = sorted(set(spec) - {"pe", "simd"})
            if extra:
                raise FoldingError(f"layer {name!r}: unknown folding key {extra[0]!r} "
                                   f"(use pe and simd)")
            pe, simd = spec.get("pe", folding.pe), spec.get("simd", folding.simd)
            try:
                check_folding(n, k, pe, simd)
            except FoldingError as exc:
                raise FoldingError(f"layer {name!r}: {exc}") from None
            folding = LayerFolding(n, k, int(pe), int(simd))
        result[name] = folding
    return result


__all__ = ["LayerFolding", "default_folding", "parse_folding", "resolve_folding", "MAX_WORD_BITS"]
