"""Fidelity of an integer model: top-1 next to the float model, and layer-by-layer error.

Every step whose name is also a float module's name computes the same quantity: stream
steps (``is_stream_step``) compare as ``|float·2^frac − int|`` in LSBs of the stream format,
threshold steps as the fraction of bits that differ from the float sign (``x ≥ 0``), the
attention mask as the fraction differing from the float binarizer (``P_b > 0``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from binaryvit.golden.float_model.network import BinaryViT, capture_activations
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.quantize.calibrate import is_stream_step


@dataclass(frozen=True)
class LayerError:
    """Float-vs-integer error of one step: LSB statistics (stream) or bit mismatch (bits)."""

    name: str
    kind: str  # "stream" or "bits"
    median_lsb: float
    p99_lsb: float
    max_lsb: float
    mismatch: float


@dataclass
class Fidelity:
    float_top1: float
    int_top1: float
    agreement: float
    layers: list[LayerError]


def comparable_steps(model: BinaryViT, intmodel: IntModel) -> list[str]:
    """Step names that are float module names and compare (stream values or bits)."""
    modules = dict(model.named_modules())
    return [s.name for s in intmodel.steps if s.name in modules and s.name != "classifier"
            and (is_stream_step(s) or s.op in ("threshold", "attention_mask"))]


def float_as_tokens(name: str, value: Tensor) -> Tensor:
    """The float module's output in the integer step's layout (a conv's input sign is an image)."""
    return value.flatten(2).transpose(1, 2) if value.dim() == 4 and name.endswith("conv.input_sign") \
        else value


@torch.no_grad()
def layer_errors(model: BinaryViT, intmodel: IntModel, images: Tensor) -> list[LayerError]:
    """Per comparable step, the error between the float model and the integer model."""
    names = comparable_steps(model, intmodel)
    model.eval()
    with capture_activations(model, names) as captured:
        model(images)
    taps = run_int_network(intmodel, images, taps=names).taps
    scale = 2.0 ** intmodel.formats["stream_frac"]
    out = []
    for name in names:
        f, q = float_as_tokens(name, captured[name]), taps[name]
        if q.dtype == torch.bool:
            fb = f > 0 if intmodel.step(name).op == "attention_mask" else f >= 0
            out.append(LayerError(name, "bits", 0.0, 0.0, 0.0, float((fb != q).double().mean())))
        else:
            err = (f.double() * scale - q.double()).abs().flatten()
            out.append(LayerError(name, "stream", float(err.median()),
                                  float(torch.quantile(err[:1 << 24], 0.99)), float(err.max()),
                                  0.0))
    return out


@torch.no_grad()
def measure_fidelity(model: BinaryViT, intmodel: IntModel, images: Tensor, labels: Tensor,
                     per_layer: bool = True) -> Fidelity:
    """Top-1 of both models on ``images``, their per-image agreement, and layer errors."""
    model.eval()
    float_pred = model(images).argmax(dim=-1)
    int_pred = run_int_network(intmodel, images).logits.argmax(dim=-1)
    layers = layer_errors(model, intmodel, images) if per_layer else []
    return Fidelity(float((float_pred == labels).double().mean()),
                    float((int_pred == labels).double().mean()),
                    float((float_pred == int_pred).double().mean()), layers)


__all__ = ["LayerError", "Fidelity", "comparable_steps", "layer_errors", "measure_fidelity",
           "float_as_tokens"]
