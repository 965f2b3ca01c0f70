"""What a narrower integer format costs: the integer model's test top-1 at several formats.

The engine multiplies on ``SB_MAC16`` (16 × 16 bits), so it runs the model quantized at a
16-bit stream and 16-bit constants; the default formats are 24 / 20 bits. ``quantize
--engine`` and ``flow --board icebreaker`` print both figures on the whole test split (the
checkpoint quantized again in memory with each format set, calibrated on the same training
images as the quantizer), so the cost of the engine's formats is visible where they are
chosen.
"""
from __future__ import annotations

import torch

from binaryvit.golden.intref.int_network import int_predict

__all__ = ["format_accuracy", "format_accuracy_line"]


def format_accuracy(checkpoint, dataset, formats: dict, calibration_images: int) -> dict:
    """``{name: top-1}`` of ``checkpoint`` quantized at each of ``formats`` (``{name:
    QuantFormats}``) on ``dataset``'s whole test split."""
    from binaryvit.golden.float_model.checkpoint import load_checkpoint
    from binaryvit.quantize.quantizer import quantize_model
    model = load_checkpoint(checkpoint).build_model()
    calibration = dataset.train_images[:max(1, calibration_images)]
    labels = torch.as_tensor(dataset.test_labels).to(torch.int64)
    images = torch.as_tensor(dataset.test_images).to(torch.int64)
    result = {}
    for name, fmt in formats.items():
        torch.manual_seed(0)     # as quantize_checkpoint
        q = quantize_model(model, calibration, fmt)
        result[name] = float((int_predict(q.intmodel, images) == labels).float().mean())
    return result


def format_accuracy_line(accuracy: dict, formats: dict, test_images: int) -> str:
    """One line: each format set's top-1 with its widths."""
    parts = [f"{100 * accuracy[name]:.2f} % at {name} (stream {f.stream_width}, constants "
             f"{f.const_bits}, accumulator {f.acc_width} bits)"
             for name, f in formats.items()]
    return f"integer top-1 on the test split ({test_images} images): " + "; ".join(parts)
