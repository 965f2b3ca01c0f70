"""Calibration: the stream format's binary point from the integer model's own activations.

The model is folded once at a wide provisional format (32 bits, binary point 16, far from
saturation) and run on calibration images; the largest magnitude any real-valued tensor
reaches (every step whose output is in the stream format) fixes the binary point::

    stream_frac = stream_width − 1 − ceil(log2(max|x| · margin))

so the largest observed value times ``margin`` fits; anything beyond saturates (never
wraps). The raw pixel range of the images becomes the proof's ``input_range``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref.int_network import as_pixel_tensor, run_int_network
from binaryvit.golden.intref.intmodel import Step
from binaryvit.quantize.fold import fold_model
from binaryvit.quantize.formats import QuantFormats

PROVISIONAL = QuantFormats(stream_width=32, stream_frac=16)
MARGIN = 1.1
# ops whose output is a real-valued tensor in the stream format
STREAM_OPS = ("affine", "rprelu", "residual_add", "avgpool2d", "channel_group_avgpool",
              "constant")
STREAM_MACS = ("stem.norm",)


@dataclass
class Calibration:
    """What calibration saw: the peak magnitude per step (real units) and the chosen formats."""

    formats: QuantFormats
    peak: dict[str, float]
    images: int

    @property
    def max_abs(self) -> float:
        return max(self.peak.values())

    @property
    def argmax(self) -> str:
        return max(self.peak, key=self.peak.get)


def is_stream_step(step: Step) -> bool:
    return step.op in STREAM_OPS or step.name in STREAM_MACS


def stream_module_names(model: BinaryViT, formats: QuantFormats = PROVISIONAL) -> list[str]:
    """Modules of ``model`` whose output the integer model holds in the stream format: the
    stream steps of its folded program that are also module names (hardware-aware
    fine-tuning rounds exactly these). ``model`` is left in eval mode."""
    modules = dict(model.named_modules())
    return [s.name for s in fold_model(model, formats).steps
            if is_stream_step(s) and s.name in modules]


def stream_frac_for(max_abs: float, width: int, margin: float = MARGIN) -> int:
    """``width − 1 − ceil(log2(max_abs·margin))``; ConfigError if that is negative."""
    if max_abs <= 0:
        return width - 1
    integer_bits = max(0, math.ceil(math.log2(max_abs * margin)))
    frac = width - 1 - integer_bits
    if frac < 0:
        raise ConfigError(f"stream_width={width} is too narrow: activations reach "
                          f"|x| = {max_abs:.3g}, which needs at least {integer_bits + 1} bits")
    return frac


@torch.no_grad()
def calibrate(model: BinaryViT, images: Tensor, base: QuantFormats = QuantFormats(),
              batch_size: int = 256, margin: float = MARGIN) -> Calibration:
    """Formats for ``model``: ``base`` with ``stream_frac`` and ``input_range`` from ``images``.

    ``images`` are raw integer pixels ``[N, C, H, W]`` (N ≥ 1), typically training images.
    """
    if len(images) == 0:
        raise DataError("calibration needs at least one image")
    probe = fold_model(model, PROVISIONAL.replace(const_bits=base.const_bits,
                                                  theta_bits=base.theta_bits))
    pixels = as_pixel_tensor(images, probe)
    scale = 2.0 ** -PROVISIONAL.stream_frac
    peak: dict[str, float] = {}

    def observe(step: Step, out: Tensor) -> None:
        if is_stream_step(step) and out.numel():
            value = float(out.abs().max()) * scale
            peak[step.name] = max(peak.get(step.name, 0.0), value)

    for start in range(0, len(pixels), batch_size):
        run_int_network(probe, pixels[start:start + batch_size], observer=observe)
    frac = stream_frac_for(max(peak.values()), base.stream_width, margin)
    lo, hi = int(pixels.min()), int(pixels.max())
    formats = base.replace(stream_frac=frac, input_range=(min(lo, 0), hi))
    return Calibration(formats, peak, len(pixels))


__all__ = ["Calibration", "calibrate", "stream_frac_for", "is_stream_step", "stream_module_names"]
