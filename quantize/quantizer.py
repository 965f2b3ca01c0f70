"""The quantizer: a trained checkpoint → ``intmodel.npz`` and ``manifest.json``.

``quantize_checkpoint`` loads the checkpoint, calibrates the stream format on training
images, folds the network into the integer program, proves no intermediate overflows and
writes ``OUT/intmodel.npz`` and ``OUT/manifest.json``, each atomically (the manifest last:
a manifest means a whole output). It chooses no hardware folding: ``binaryvit generate``
folds the network and writes the weight ROM images for that folding
(``binaryvit.hw.network.weight_images``), so the images of a previous generate (``OUT/weights``)
are removed with the model they belonged to. Existing quantizer outputs are refused unless
``force``.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from binaryvit.atomic import check_parent_writable, write_text_atomic
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

OUTPUTS = ("intmodel.npz", "manifest.json", "weights")  # weights/: generate's, of this model
DEFAULT_CALIBRATION_IMAGES = 512


@dataclass
class Quantized:
    """An integer model with the evidence behind it (in memory; nothing written)."""

    intmodel: IntModel
    calibration: Calibration | None
    proof: OverflowProof


def quantize_model(model: BinaryViT, calibration_images: Tensor | None,
                   formats: QuantFormats = QuantFormats(),
                   calibration_rule: str = "range") -> Quantized:
    """Calibrate by ``calibration_rule`` (``quantize.calibrate.RULES``; unless
    ``calibration_images`` is None: then ``formats`` is used as is), fold and prove.
    Raises ConfigError or OverflowProofError naming the problem."""
    check_foldable(model)
    calibration = None
    if calibration_images is not None:
        calibration = calibrate(model, calibration_images, formats, rule=calibration_rule)
        formats = calibration.formats
    intmodel = fold_model(model, formats)
    proof = prove_no_overflow(intmodel)
    return Quantized(intmodel, calibration, proof)


def _check_outputs(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"output {out} exists and is not a folder")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not force:
        raise OutputPathError(f"{out / existing[0]} exists already (use --force to replace "
                              f"the quantizer's outputs)")


def _manifest(q: Quantized, checkpoint_info: dict[str, Any], out: Path) -> dict[str, Any]:
    cal = q.calibration
    return {
        "format": mf.FORMAT, "format_version": mf.FORMAT_VERSION, "stage": "quantize",
        "versions": mf.tool_versions(), "checkpoint": checkpoint_info,
        "config": q.intmodel.config.to_dict(), "formats": dict(q.intmodel.formats),
        "input_range": list(q.intmodel.input_range),
        "calibration": None if cal is None else {
            "images": cal.images, "margin": MARGIN, "max_abs": cal.max_abs,
            "max_abs_step": cal.argmax, "rule": cal.rule,
            "divergence": {str(f): d for f, d in cal.divergence.items()}},
        "bit_order": mf.BIT_ORDER,
        "steps": [s.describe() for s in q.intmodel.steps],
        "overflow_proof": {"acc_width": q.proof.acc_width, "max_bits": q.proof.max_bits,
                           "widest": mf.widest_per_step(q.proof.to_json()["records"])},
        "files": mf.file_hashes(out, ["intmodel.npz"]),
    }


def quantize_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                        data: str | os.PathLike | None = None,
                        formats: QuantFormats = QuantFormats(), force: bool = False,
                        calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
                        calibration_rule: str = "range") -> Quantized:
    """Quantize the checkpoint at ``checkpoint`` into the folder ``out``; see the module docstring.

    ``data``: the data set whose first ``calibration_images`` training images calibrate the
    formats (None: the embedded digits) by ``calibration_rule`` (``quantize.calibrate``).
    """
    checkpoint, out = Path(checkpoint), Path(out)
    _check_outputs(out, force)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    check_foldable(model)
    config = ckpt.config
    dataset = load_dataset(data, config.in_channels)
    check_dataset_fits(dataset, (config.in_channels, *config.image_size), config.name)
    images = dataset.train_images[:max(1, calibration_images)]
    torch.manual_seed(0)
    q = quantize_model(model, images, formats, calibration_rule)
    info = {"path": str(checkpoint), "sha256": mf.sha256_file(checkpoint),
            "metrics": ckpt.metrics, "data": dataset.source}
    check_parent_writable(out / "manifest.json")
    # the old manifest goes first and the new one comes last: a manifest means a whole output
    (out / "manifest.json").unlink(missing_ok=True)
    save_intmodel(q.intmodel, out / "intmodel.npz")
    # ROM images of the model this one replaces (written by generate for its folding)
    shutil.rmtree(out / "weights", ignore_errors=True)
    write_text_atomic(out / "manifest.json",
                      json.dumps(_manifest(q, info, out), indent=1) + "\n")
    return q


__all__ = ["Quantized", "quantize_model", "quantize_checkpoint", "OUTPUTS",
           "DEFAULT_CALIBRATION_IMAGES"]
