"""The per-channel pointwise ops: ``affine``, ``rprelu``, ``threshold`` and ``residual_add``
(with the position-embedding form when its second input is a constant)."""
from __future__ import annotations

import numpy as np

from binaryvit.golden.intref.fixed_point import rounded_bias
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.hw.estimate.resource_model import (KernelCost, control, counter, plus, rom,
                                                  saturating, signed_width)
from binaryvit.hw.kernels.affine import AffineUnit
from binaryvit.hw.kernels.residual_add import PositionEmbeddingAdd, ResidualAdd
from binaryvit.hw.kernels.rprelu import RPReLUUnit
from binaryvit.hw.kernels.threshold import ThresholdUnit
from binaryvit.hw.ops.demand import token_demand
from binaryvit.hw.ops.spec import Built, OpSpec, Port, array
from binaryvit.hw.ops.tensor_info import TensorInfo, width_param

__all__ = ["AffineSpec", "RPReLUSpec", "ThresholdSpec", "ResidualAddSpec"]


def _same_shape(step: Step, tensors, kind: str = "fixed") -> TensorInfo:
    x = tensors[step.inputs[0]]
    width = 1 if kind == "binary" else width_param(step)
    return TensorInfo(kind, width, x.channels, x.tokens, x.grid)


def _one_port(step: Step, fold, tensors, spec: OpSpec) -> list[Port]:
    x, out = tensors[step.inputs[0]], tensors[step.name]
    return [Port("i", step.inputs[0], spec.in_lanes(step, fold),
                 token_demand("pointwise", x, out))]


class AffineSpec(OpSpec):
    """``affine``: ``AffineUnit``."""

    op = "affine"
    engine_role = "transform"
    calibration = (1.5, 0.96)
    kernels = (AffineUnit,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        return _same_shape(step, tensors)

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        lanes = fold["lanes"]
        mul_w = signed_width(step.arrays["mul"])
        bias = rounded_bias(step.arrays["bias"], p["shift"])
        bias_w = signed_width(bias)
        groups = x.channels // lanes
        product = x.width + mul_w
        return plus(control(), counter(groups), saturating(product - p["shift"], out.width, lanes),
                    KernelCost(adder_bits=lanes * product,
                               ffs=lanes * (x.width + product + bias_w + out.width),
                               multipliers=[(x.width, mul_w)] * lanes,
                               memories=rom("constants", groups, lanes,
                                            [(step.arrays["mul"], mul_w), (bias, bias_w)])))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        unit = AffineUnit(channels=out.channels, lanes=self.in_lanes(step, fold),
                          in_width=x.width, mul=array(step, "mul"), bias=array(step, "bias"),
                          shift=step.params["shift"], out_width=out.width)
        return Built(unit, _one_port(step, fold, tensors, self))


class RPReLUSpec(OpSpec):
    """``rprelu``: ``RPReLUUnit``."""

    op = "rprelu"
    engine_role = "transform"
    calibration = (1.03, 0.92)
    kernels = (RPReLUUnit,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        return _same_shape(step, tensors)

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        lanes = fold["lanes"]
        pre_w = signed_width(step.arrays["pre_bias"])
        mul_w = max(signed_width(step.arrays["mul_pos"]), signed_width(step.arrays["mul_neg"]))
        post = rounded_bias(step.arrays["post_bias"], p["shift"])
        post_w = signed_width(post)
        groups = x.channels // lanes
        t = max(x.width, pre_w) + 1
        product = t + mul_w
        return plus(control(), counter(groups), counter(groups),
                    saturating(product - p["shift"], out.width, lanes),
                    KernelCost(adder_bits=lanes * (t + product), luts=lanes * mul_w,
                               ffs=lanes * (x.width + t + product + post_w + out.width),
                               multipliers=[(t, mul_w)] * lanes,
                               memories=rom("pre_constants", groups, lanes,
                                            [(step.arrays["pre_bias"], pre_w)])
                               + rom("slope_constants", groups, lanes,
                                     [(step.arrays["mul_pos"], mul_w),
                                      (step.arrays["mul_neg"], mul_w), (post, post_w)])))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        unit = RPReLUUnit(channels=out.channels, lanes=self.in_lanes(step, fold),
                          in_width=x.width, pre_bias=array(step, "pre_bias"),
                          mul_pos=array(step, "mul_pos"), mul_neg=array(step, "mul_neg"),
                          post_bias=array(step, "post_bias"), shift=step.params["shift"],
                          out_width=out.width)
        return Built(unit, _one_port(step, fold, tensors, self))


class ThresholdSpec(OpSpec):
    """``threshold``: ``ThresholdUnit`` (fixed point in, bits out)."""

    op = "threshold"
    engine_role = "emit"
    calibration = (0.72, 0.80)
    kernels = (ThresholdUnit,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        return _same_shape(step, tensors, "binary")

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x = tensors[step.inputs[0]]
        lanes = fold["lanes"]
        thresh_w = signed_width(step.arrays["thresh"])
        groups = x.channels // lanes
        return plus(control(), counter(groups),
                    KernelCost(adder_bits=lanes * max(x.width, thresh_w), luts=lanes,
                               ffs=lanes * (x.width + 1),
                               memories=rom("constants", groups, lanes,
                                            [(step.arrays["thresh"], thresh_w),
                                             (step.arrays["flip"], 1)])))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        unit = ThresholdUnit(channels=out.channels, lanes=self.in_lanes(step, fold),
                             in_width=x.width, thresh=array(step, "thresh"),
                             flip=array(step, "flip").astype(np.int64))
        return Built(unit, _one_port(step, fold, tensors, self))


class ResidualAddSpec(OpSpec):
    """``residual_add``: ``ResidualAdd`` of two streams, or ``PositionEmbeddingAdd`` when
    the second input is a constant (held in a ROM)."""

    op = "residual_add"
    engine_role = "transform"
    calibration = (1.02, 0.93)
    kernels = (ResidualAdd, PositionEmbeddingAdd)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        return _same_shape(step, tensors)

    @staticmethod
    def _constant(step: Step, steps) -> Step | None:
        second = steps.get(step.inputs[1]) if steps else None
        return second if second is not None and second.op == "constant" else None

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        lanes = fold["lanes"]
        second = self._constant(step, steps)
        sat = saturating(max(x.width, tensors[step.inputs[1]].width) + 1, out.width, lanes)
        add = KernelCost(adder_bits=lanes * (x.width + 1), ffs=lanes * out.width)
        if second is not None:
            rows = out.tokens * out.channels // lanes
            embedding_w = signed_width(second.arrays["value"])
            add = plus(add, counter(rows), KernelCost(
                ffs=lanes * x.width,
                memories=rom("embedding", rows, lanes, [(second.arrays["value"], embedding_w)])))
        return plus(control(), sat, add)

    def build(self, step, fold, tensors, steps) -> Built:
        a, b = step.inputs
        x, out = tensors[a], tensors[step.name]
        lanes = self.in_lanes(step, fold)
        same = token_demand("pointwise", x, out)
        constant = self._constant(step, steps)
        if constant is not None:
            unit = PositionEmbeddingAdd(embedding=array(constant, "value"), lanes=lanes,
                                        in_width=x.width, out_width=out.width)
            return Built(unit, [Port("i", a, lanes, same)])
        unit = ResidualAdd(channels=out.channels, lanes=lanes, in_width=x.width,
                           residual_width=tensors[b].width, out_width=out.width)
        return Built(unit, [Port("i", a, lanes, same), Port("residual", b, lanes, same)])
