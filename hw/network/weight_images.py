"""The weight ROM images of a generated network, for the hardware's own folding.

``binaryvit generate`` writes ``OUT/weights/<layer>.{hex,mem,mif,coe,bin}``: every binary
layer's weight ROM exactly as its ``XnorPopcountMVU`` holds it (``pe·simd``-bit words,
``(N/pe)·(K/simd)`` of them, ``binaryvit.quantize.weight_packing`` layout; the kernel splits
each word into its ``pe`` per-PE ROMs of ``simd`` bits), and records that folding once, in
``OUT/manifest.json``'s ``folding`` (per layer: n, k, pe, simd, ROM width and depth, cycles
per vector, files) with the files' hashes. There is no other folding: the quantizer packs
no ROMs, ``update-weights`` swaps ROMs for this one.
"""
from __future__ import annotations

import json
from pathlib import Path

from binaryvit.atomic import atomic_directory, write_text_atomic
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.quantize.manifest import file_hashes
from binaryvit.quantize.rom_formats import ROM_FORMATS, write_rom_images
from binaryvit.quantize.rom_image import RomImage

__all__ = ["weight_images", "write_weight_images", "record_folding", "WEIGHTS"]

WEIGHTS = "weights"


def weight_images(plan: NetworkPlan) -> dict[str, RomImage]:
    """Binary layer name → the weight ROM image its MVU is built with, in program order."""
    return {name: node.component.rom for name, node in plan.nodes.items()
            if node.op == "xnor_popcount_dot"}


def write_weight_images(out: str | Path, plan: NetworkPlan,
                        formats: tuple[str, ...] = ROM_FORMATS) -> dict[str, dict]:
    """Replace ``out/weights/`` with the plan's weight ROM images (the whole folder at once)
    and return the folding record (layer → n, k, pe, simd, width, depth, cycles per vector,
    files relative to ``out``)."""
    record = {}
    with atomic_directory(Path(out) / WEIGHTS, force=True) as folder:
        for name, image in weight_images(plan).items():
            paths = write_rom_images(image, folder, name, formats)
            record[name] = {"n": image.n, "k": image.k, "pe": image.pe, "simd": image.simd,
                            "width": image.width, "depth": image.depth,
                            "cycles_per_vector": image.depth,
                            "files": [f"{WEIGHTS}/{path.name}" for path in paths]}
    return record


def record_folding(out: str | Path, folding: dict[str, dict]) -> bool:
    """Write ``folding`` into ``out/manifest.json`` (its ``folding``, and the hashes of the
    weight files in its ``files``); False when ``out`` has no manifest (a model generated
    from memory)."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        return False
    manifest = json.loads(path.read_text())
    files = {name: digest for name, digest in manifest.get("files", {}).items()
             if not name.startswith(f"{WEIGHTS}/")}
    written = [f for layer in folding.values() for f in layer["files"]]
    files.update(file_hashes(Path(out), written))
    manifest["folding"] = folding
    manifest["files"] = files
    write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")
    return True
