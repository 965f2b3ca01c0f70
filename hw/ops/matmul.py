"""The matrix ops, folded ``pe × simd``: ``xnor_popcount_dot`` (``XnorPopcountMVU``) and
``fixed_mac`` (``StemUnit`` on pixels, ``ClassifierUnit`` otherwise)."""
from __future__ import annotations

import numpy as np
import torch

from binaryvit.golden.intref.fixed_point import rounded_bias
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.estimate.resource_model import (KernelCost, MemoryShape, control, counter,
                                                  plus, rom, saturating,
                                                  signed_width)
from binaryvit.hw.kernels.mac import ClassifierUnit, FixedMAC, StemUnit
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.ops.demand import token_demand
from binaryvit.hw.ops.spec import Built, OpSpec, Port, array
from binaryvit.hw.ops.tensor_info import TensorInfo, width_param
from binaryvit.hw.ops.word_timing import NEVER

__all__ = ["XnorPopcountDotSpec", "FixedMACSpec"]


class _MatrixSpec(OpSpec):
    """``simd`` input elements per cycle, ``pe`` outputs in parallel; output words carry
    ``pe`` lanes."""

    fold_keys = ("pe", "simd")

    def candidates(self, step: Step, tensors):
        out, x = tensors[step.name], tensors[step.inputs[0]]
        return [{"pe": pe, "simd": simd} for pe in divisors(out.channels)
                for simd in divisors(x.channels)]

    def in_lanes(self, step, fold) -> int:
        return fold["simd"]

    def out_lanes(self, step, fold) -> int:
        return fold["pe"]


class XnorPopcountDotSpec(_MatrixSpec):
    """``xnor_popcount_dot``: ``XnorPopcountMVU`` (weights in ``pe`` ROMs)."""

    op = "xnor_popcount_dot"
    engine_role = "anchor"
    engine_instruction = "matmul"
    calibration = (1.58, 0.95)
    kernels = (XnorPopcountMVU,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x = tensors[step.inputs[0]]
        n, k = step.arrays["weight_bits"].shape
        return TensorInfo("fixed", k.bit_length() + 1, n, x.tokens, x.grid)

    def cycles(self, step, fold, tensors) -> int:
        out, x = tensors[step.name], tensors[step.inputs[0]]
        return out.tokens * XnorPopcountMVU.vector_cycles(x.channels, out.channels,
                                                          fold["pe"], fold["simd"])

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        out, x = tensors[step.name], tensors[step.inputs[0]]
        pe, simd = fold["pe"], fold["simd"]
        k, n = x.channels, out.channels
        synapse, neuron = k // simd, n // pe
        acc = (k + 1).bit_length()
        popcount = pe * (2.0 * simd + acc)           # XNOR + counter tree per lane, per PE
        return plus(control(), counter(synapse), counter(neuron), counter(synapse * neuron),
                    KernelCost(adder_bits=pe * 2 * acc, luts=popcount + 2 * pe * acc,
                               ffs=pe * (2 * acc + out.width) + 3 * simd.bit_length() + 16,
                               memories=[MemoryShape("buffer", simd, 2 * synapse, writable=True)]
                               + [MemoryShape(f"weights_pe{q}", simd, synapse * neuron,
                                              writable=False) for q in range(pe)]))

    def build(self, step, fold, tensors, steps) -> Built:
        w = array(step, "weight_bits")
        unit = XnorPopcountMVU(w.shape[1], w.shape[0], fold["pe"], fold["simd"], w)
        x, out = tensors[step.inputs[0]], tensors[step.name]
        return Built(unit, [Port("i", step.inputs[0], fold["simd"],
                                 token_demand("pointwise", x, out))])

    def timing(self, unit: XnorPopcountMVU, ready):
        """Double-buffered input: vector ``v`` is written while ``v − 1`` computes; a half is
        free again the cycle after its last compute step."""
        ready = ready["i"]
        sf, nf = unit.synapse_folds, unit.neuron_folds
        tail = unit.latency - sf  # last step of a fold → its output word
        take = np.empty_like(ready)
        out = np.empty(len(ready) // sf * nf, dtype=np.int64)
        folds = sf * np.arange(1, nf + 1) - 1 + tail
        t, done_before, done_last = NEVER, NEVER, NEVER  # compute ends of vectors v−2, v−1
        for v in range(len(ready) // sf):
            t = max(t, done_before + 1)
            for j in range(v * sf, (v + 1) * sf):
                t = max(int(ready[j]), t)
                take[j] = t
                t += 1
            start = max(t, done_last + 1)
            out[v * nf:(v + 1) * nf] = start + folds
            done_before, done_last = done_last, start + nf * sf - 1
        return {"i": take}, out


class FixedMACSpec(_MatrixSpec):
    """``fixed_mac``: ``StemUnit`` when it reads pixels, else ``ClassifierUnit``."""

    op = "fixed_mac"
    engine_role = "anchor"
    engine_instruction = "mac"
    calibration = (1.22, 0.96)
    kernels = (FixedMAC,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x = tensors[step.inputs[0]]
        return TensorInfo("fixed", width_param(step), step.arrays["weight"].shape[0], x.tokens,
                          x.grid)

    def cycles(self, step, fold, tensors) -> int:
        out, x = tensors[step.name], tensors[step.inputs[0]]
        return out.tokens * FixedMAC.vector_cycles(x.channels, out.channels, fold["pe"],
                                                   fold["simd"])

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        out, x = tensors[step.name], tensors[step.inputs[0]]
        pe, simd = fold["pe"], fold["simd"]
        weight_w = signed_width(step.arrays["weight"])
        bias = rounded_bias(step.arrays["bias"], step.params["shift"])
        bias_w = signed_width(bias)
        words, groups = x.channels // simd, out.channels // pe
        # Row g·words + k holds w[g·pe + p, k·simd + s] at lane p·simd + s (FixedMAC).
        weight_rows = torch.as_tensor(step.arrays["weight"]).reshape(groups, pe, words, simd) \
            .permute(0, 2, 1, 3).reshape(-1)
        acc = max(x.width + weight_w + max(x.channels - 1, 1).bit_length(), bias_w) + 1
        memories = (rom("weights", groups * words, pe * simd, [(weight_rows, weight_w)])
                    + rom("bias", groups, pe, [(bias, bias_w)]))
        if groups > 1 and words > 1:
            memories.append(MemoryShape("buffer", simd * x.width, words, writable=True))
        return plus(control(), counter(words), counter(groups), counter(groups * words),
                    saturating(acc - step.params["shift"], out.width, pe),
                    KernelCost(adder_bits=pe * simd * acc, luts=simd * x.width,
                               ffs=2 * simd * x.width + pe * simd * (x.width + weight_w)
                               + pe * (acc + out.width + bias_w),
                               multipliers=[(x.width, weight_w)] * (pe * simd),
                               memories=memories))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        weight, bias = array(step, "weight"), array(step, "bias")
        if x.kind == "pixel":
            unit = StemUnit(weights=weight, bias=bias, shift=p["shift"], out_width=out.width,
                            pe=fold["pe"], simd=fold["simd"], pixel_width=x.width)
        else:
            unit = ClassifierUnit(weights=weight, bias=bias, shift=p["shift"],
                                  out_width=out.width, in_width=x.width, simd=fold["simd"],
                                  pe=fold["pe"])
        return Built(unit, [Port("i", step.inputs[0], fold["simd"],
                                 token_demand("pointwise", x, out))])

    def timing(self, unit: FixedMAC, ready):
        """Group 0 of a vector is computed as its words arrive; the other groups re-read the
        buffered vector, ``K/simd`` cycles each, with the input stalled."""
        ready = ready["i"]
        words, groups = unit.in_words, unit.groups
        take = np.empty_like(ready)
        out = np.empty(len(ready) // words * groups, dtype=np.int64)
        t = NEVER
        for v in range(len(ready) // words):
            for j in range(v * words, (v + 1) * words):
                t = max(int(ready[j]), t)
                take[j] = t
                t += 1
            out[v * groups:(v + 1) * groups] = t - 1 + unit.latency + words * np.arange(groups)
            t += words * (groups - 1)
        return {"i": take}, out
