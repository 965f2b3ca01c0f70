"""The quantizer: a trained checkpoint → ``intmodel.npz``, weight ROMs and ``manifest.json``.

``quantize_checkpoint`` loads the checkpoint, calibrates the stream format on training
images, folds the network into the integer program, proves no intermediate overflows,
packs each binary layer's weights for its (PE, SIMD) folding and writes
``OUT/intmodel.npz``, ``OUT/weights/<layer>.{hex,mem,mif,coe,bin}`` and
``OUT/manifest.json``. Everything is written into a temporary folder inside ``OUT`` first
and renamed into place (the manifest last), so no half-written output is ever left; existing
quantizer outputs are refused unless ``force``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from binaryvit.errors import OutputPathError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref.intmodel import IntModel, save_intmodel
from binaryvit.golden.train.data import check_dataset_fits, load_dataset
from binaryvit.quantize import manifest as mf
from binaryvit.quantize.calibrate import MARGIN, Calibration, calibrate
from binaryvit.quantize.fold import check_foldable, fold_model
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.overflow import OverflowProof, prove_no_overflow
from binaryvit.quantize.rom_folding import LayerFolding, resolve_folding
from binaryvit.quantize.rom_formats import ROM_FORMATS, write_rom_images
from binaryvit.quantize.weight_packing import pack_weight_rom

OUTPUTS = ("intmodel.npz", "manifest.json", "weights")
DEFAULT_CALIBRATION_IMAGES = 512


@dataclass
class Quantized:
    """An integer model with the evidence behind it (in memory; nothing written)."""

    intmodel: IntModel
    calibration: Calibration | None
    proof: OverflowProof
    folding: dict[str, LayerFolding]


def quantize_model(model: BinaryViT, calibration_images: Tensor | None,
                   formats: QuantFormats = QuantFormats(),
                   folding: dict[str, Any] | None = None) -> Quantized:
    """Calibrate (unless ``calibration_images`` is None: then ``formats`` is used as is),
    fold, prove and resolve the ROM folding. Raises ConfigError, OverflowProofError or
    FoldingError naming the problem."""
    check_foldable(model)
    calibration = None
    if calibration_images is not None:
        calibration = calibrate(model, calibration_images, formats)
        formats = calibration.formats
    intmodel = fold_model(model, formats)
    proof = prove_no_overflow(intmodel)
    return Quantized(intmodel, calibration, proof, resolve_folding(intmodel, folding))


def _check_outputs(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"output {out} exists and is not a folder")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not force:
        raise OutputPathError(f"{out / existing[0]} exists already (use --force to replace "
                              f"the quantizer's outputs)")


def _write(q: Quantized, folder: Path, checkpoint_info: dict[str, Any],
           write_roms: bool, rom_formats: tuple[str, ...]) -> None:
    save_intmodel(q.intmodel, folder / "intmodel.npz")
    written = ["intmodel.npz"]
    folding_record = {}
    (folder / "weights").mkdir()
    for step in q.intmodel.xnor_layers():
        f = q.folding[step.name]
        record = {"n": f.n, "k": f.k, "pe": f.pe, "simd": f.simd, "width": f.pe * f.simd,
                  "depth": f.cycles_per_vector, "cycles_per_vector": f.cycles_per_vector,
                  "files": []}
        if write_roms:
            image = pack_weight_rom(step.arrays["weight_bits"], f.pe, f.simd)
            for path in write_rom_images(image, folder / "weights", step.name, rom_formats):
                record["files"].append(f"weights/{path.name}")
            written += record["files"]
        folding_record[step.name] = record
    cal = q.calibration
    manifest = {
        "format": mf.FORMAT, "format_version": mf.FORMAT_VERSION, "stage": "quantize",
        "versions": mf.tool_versions(), "checkpoint": checkpoint_info,
        "config": q.intmodel.config.to_dict(), "formats": dict(q.intmodel.formats),
        "input_range": list(q.intmodel.input_range),
        "calibration": None if cal is None else {
            "images": cal.images, "margin": MARGIN, "max_abs": cal.max_abs,
            "max_abs_step": cal.argmax},
        "bit_order": mf.BIT_ORDER,
        "steps": [s.describe() for s in q.intmodel.steps],
        "folding": folding_record,
        "overflow_proof": {"acc_width": q.proof.acc_width, "max_bits": q.proof.max_bits,
                           "widest": mf.widest_per_step(q.proof.to_json()["records"])},
        "files": mf.file_hashes(folder, written),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _move_into_place(tmp: Path, out: Path) -> None:
    """intmodel.npz and weights/ first, manifest.json last: a manifest means a whole output."""
    for name in ("intmodel.npz", "weights", "manifest.json"):
        target = out / name
        if name == "weights" and target.exists():
            old = out / ".weights.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp / name, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp / name, target)


def quantize_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                        data: str | os.PathLike | None = None,
                        formats: QuantFormats = QuantFormats(),
                        folding: dict[str, Any] | None = None, force: bool = False,
                        calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
                        write_roms: bool = True,
                        rom_formats: tuple[str, ...] = ROM_FORMATS) -> Quantized:
    """Quantize the checkpoint at ``checkpoint`` into the folder ``out``; see the module docstring.

    ``data``: the data set whose first ``calibration_images`` training images calibrate the
    formats (None: the embedded digits).
    """
    checkpoint, out = Path(checkpoint), Path(out)
    _check_outputs(out, force)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    check_foldable(model)
    dataset = load_dataset(data)
    config = ckpt.config
    check_dataset_fits(dataset, (config.in_channels, *config.image_size), config.name)
    images = dataset.train_images[:max(1, calibration_images)]
    torch.manual_seed(0)
    q = quantize_model(model, images, formats, folding)
    info = {"path": str(checkpoint), "sha256": mf.sha256_file(checkpoint),
            "metrics": ckpt.metrics, "data": dataset.source}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create output folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise OutputPathError(f"cannot write to {out}: permission denied")
    tmp = Path(tempfile.mkdtemp(prefix=".quantize.", suffix=".tmp", dir=out))
    try:
        _write(q, tmp, info, write_roms, rom_formats)
        _check_outputs(out, force)
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return q


__all__ = ["Quantized", "quantize_model", "quantize_checkpoint", "OUTPUTS",
           "DEFAULT_CALIBRATION_IMAGES"]
