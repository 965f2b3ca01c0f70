"""``manifest.json`` of a quantized model: what was built, from what, how, and every file's hash.

Keys: ``format`` (``"binaryvit-manifest"``), ``format_version`` (1), ``stage``
(``"quantize"``), ``versions`` (binaryvit, python, torch, numpy), ``checkpoint`` (path,
sha256, metrics), ``config``, ``formats``, ``calibration`` (images, margin, max_abs and
where, the rule and, for the fidelity rule, the divergence per candidate fraction width),
``bit_order``, ``steps`` (per step: name, op, inputs, params, array shapes),
``folding`` (per binary layer: n, k, pe, simd, ROM width and depth, cycles per vector,
files), ``overflow_proof`` (acc_width, max_bits, widest intermediate per step) and
``files`` (path relative to the output folder → sha256).
"""
from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from binaryvit import __version__

FORMAT = "binaryvit-manifest"
FORMAT_VERSION = 1

BIT_ORDER = {
    "binary_values": "bit 1 = +1, bit 0 = -1; sign(0) = +1",
    "activation_packing": "LSB-first: element i is bit i mod w of word i div w",
    "weight_bits": "weight_bits[n, k] of a step: output n, input k (1 = +1)",
    "rom_word": "address nf*(K/simd) + sf; PE p holds bits [p*simd, (p+1)*simd); "
                "bit j of that slice is w[nf*pe + p, sf*simd + j]",
    "conv_patch_order": "patch element c*s*s + i*s + j is channel c, row i, column j",
    "tokens": "raster (row-major) order of the H x W grid",
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tool_versions() -> dict[str, str]:
    return {"binaryvit": __version__, "python": platform.python_version(),
            "torch": str(torch.__version__), "numpy": np.__version__}


def file_hashes(folder: Path, relative: list[str]) -> dict[str, str]:
    """sha256 of each file ``folder/rel`` (relative paths with ``/``), sorted by path."""
    return {rel: sha256_file(folder / rel) for rel in sorted(relative)}


def widest_per_step(proof_records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The widest proven intermediate of each step (the width its datapath needs)."""
    widest: dict[str, dict[str, Any]] = {}
    for r in proof_records:
        if r["quantity"] == "threshold":
            continue
        if r["step"] not in widest or r["bits"] > widest[r["step"]]["bits"]:
            widest[r["step"]] = {"quantity": r["quantity"], "lo": r["lo"], "hi": r["hi"],
                                 "bits": r["bits"]}
    return widest


__all__ = ["FORMAT", "FORMAT_VERSION", "BIT_ORDER", "sha256_file", "tool_versions",
           "file_hashes", "widest_per_step"]
