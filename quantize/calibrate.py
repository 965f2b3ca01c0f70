"""Calibration: the stream format's binary point from the integer model's own activations.

The model is folded once at a wide provisional format (32 bits, binary point 16, far from
saturation) and run on calibration images; the largest magnitude any real-valued tensor
reaches (every step whose output is in the stream format) fixes the binary point::

    stream_frac = stream_width − 1 − ceil(log2(max|x| · margin))

so the largest observed value times ``margin`` fits; anything beyond saturates (never
wraps). That is the ``"range"`` rule (the default). The raw pixel range of the images
becomes the proof's ``input_range``.

The ``"fidelity"`` rule starts from the range rule's ``F0`` and also tries ``F0 + 1 …
F0 + FIDELITY_SEARCH_BITS`` (at most ``stream_width − 1``): a finer grid at the price of
saturating the rare largest values, which the integer contract does exactly. Each candidate
is folded and must pass ``prove_no_overflow`` (a stream that saturates is allowed, an
accumulator that could overflow is not); the one whose integer logits are closest to the
float model's on the calibration images — the least mean ``KL(softmax(float) ||
softmax(integer))`` — is kept, the smaller ``F`` on a tie. It reads no labels. On the
tiny-digits students the largest values are rare attention sums (docs/model.md), and at 8
to 12 bits the fidelity rule keeps up to 3 more fraction bits (2–3 at 8 bits).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from binaryvit.errors import ConfigError, DataError, OverflowProofError
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref.int_network import as_pixel_tensor, run_int_network
from binaryvit.golden.intref.intmodel import Step
from binaryvit.quantize.fold import fold_model
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.overflow import prove_no_overflow

PROVISIONAL = QuantFormats(stream_width=32, stream_frac=16)
MARGIN = 1.1
RULES = ("range", "fidelity")
FIDELITY_SEARCH_BITS = 4
# ops whose output is a real-valued tensor in the stream format
STREAM_OPS = ("affine", "rprelu", "residual_add", "avgpool2d", "channel_group_avgpool",
              "constant")
STREAM_MACS = ("stem.norm",)


@dataclass
class Calibration:
    """What calibration saw: the peak magnitude per step (real units) and the chosen formats.

    ``rule`` is the rule that chose ``formats.stream_frac``; for ``"fidelity"``,
    ``divergence`` maps each candidate fraction width that passed the overflow proof to its
    mean KL divergence from the float model (empty for ``"range"``).
    """

    formats: QuantFormats
    peak: dict[str, float]
    images: int
    rule: str = "range"
    divergence: dict[int, float] = field(default_factory=dict)

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
def logit_divergence(model: BinaryViT, formats: QuantFormats, pixels: Tensor,
                     batch_size: int = 256) -> float:
    """Mean over ``pixels`` of ``KL(softmax(float logits) || softmax(integer logits))``, the
    integer model folded at ``formats`` (its logits read as ``int·2^−stream_frac``).
    Raises OverflowProofError if that integer model could overflow."""
    intmodel = fold_model(model, formats)
    prove_no_overflow(intmodel)
    model.eval()
    total = 0.0
    for start in range(0, len(pixels), batch_size):
        batch = pixels[start:start + batch_size]
        reference = torch.log_softmax(model(batch.to(torch.float32)).double(), dim=-1)
        logits = run_int_network(intmodel, batch).logits.double() * 2.0 ** -formats.stream_frac
        integer = torch.log_softmax(logits, dim=-1)
        total += float((reference.exp() * (reference - integer)).sum())
    return total / len(pixels)


def _closest_frac(model: BinaryViT, formats: QuantFormats, pixels: Tensor,
                  batch_size: int) -> tuple[int, dict[int, float]]:
    """The fidelity rule's choice among ``formats.stream_frac + 0 … FIDELITY_SEARCH_BITS``."""
    divergence: dict[int, float] = {}
    last = min(formats.stream_width - 1, formats.stream_frac + FIDELITY_SEARCH_BITS)
    for frac in range(formats.stream_frac, last + 1):
        try:
            divergence[frac] = logit_divergence(model, formats.replace(stream_frac=frac),
                                                pixels, batch_size)
        except OverflowProofError:
            continue
    if not divergence:  # even the range rule's format overflows: let the caller's proof say so
        return formats.stream_frac, divergence
    return min(divergence, key=lambda f: (divergence[f], f)), divergence


@torch.no_grad()
def calibrate(model: BinaryViT, images: Tensor, base: QuantFormats = QuantFormats(),
              batch_size: int = 256, margin: float = MARGIN, rule: str = "range") -> Calibration:
    """Formats for ``model``: ``base`` with ``stream_frac`` and ``input_range`` from ``images``.

    ``images`` are raw integer pixels ``[N, C, H, W]`` (N ≥ 1), typically training images.
    ``rule``: ``"range"`` (the largest value times ``margin`` fits) or ``"fidelity"`` (of
    that and up to FIDELITY_SEARCH_BITS finer grids, the one closest to the float model;
    the module docstring). The fidelity rule runs the integer model once per candidate.
    """
    if rule not in RULES:
        raise ConfigError(f"calibration rule must be one of {', '.join(RULES)}, got {rule!r}")
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
    divergence: dict[int, float] = {}
    if rule == "fidelity":
        frac, divergence = _closest_frac(model, formats, pixels, batch_size)
        formats = formats.replace(stream_frac=frac)
    return Calibration(formats, peak, len(pixels), rule, divergence)


__all__ = ["Calibration", "calibrate", "logit_divergence", "stream_frac_for", "is_stream_step",
           "stream_module_names", "RULES", "FIDELITY_SEARCH_BITS"]
