"""The pooling ops: ``window_sum2d`` (``StripAvgPool``), ``avgpool2d`` (``SpatialAvgPool``),
``global_avgpool`` (``GlobalAvgPool``) and ``channel_group_avgpool``
(``ChannelGroupAvgPool``)."""
from __future__ import annotations

import numpy as np

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.estimate.resource_model import (KernelCost, MemoryShape, control, counter,
                                                  plus, saturating)
from binaryvit.hw.kernels.channel_group_avgpool import ChannelGroupAvgPool
from binaryvit.hw.kernels.global_avgpool import GlobalAvgPool
from binaryvit.hw.kernels.multiply_round_shift import sum_width
from binaryvit.hw.kernels.spatial_avgpool import SpatialAvgPool
from binaryvit.hw.kernels.strip_avgpool import StripAvgPool, strip_geometry
from binaryvit.hw.ops.demand import token_demand
from binaryvit.hw.ops.spec import Built, OpSpec, Port, pointwise_timing
from binaryvit.hw.ops.tensor_info import TensorInfo, width_param
from binaryvit.hw.ops.word_timing import NEVER

__all__ = ["WindowSum2dSpec", "AvgPool2dSpec", "GlobalAvgPoolSpec", "ChannelGroupAvgPoolSpec"]


def _pool_cost(step: Step, fold, tensors, memory: MemoryShape | None, width: int,
               out_lanes: int, extra: KernelCost | None = None) -> KernelCost:
    """A pooling kernel: its adders of ``width`` bits, the constant multiply, the clamp."""
    p = step.params
    out, x = tensors[step.name], tensors[step.inputs[0]]
    lanes = fold["lanes"]
    words = x.channels // lanes
    mul = int(p.get("mul", 1))
    scale = max(abs(mul).bit_length() - 1, 0)   # shift-add terms of the constant multiply
    terms = bin(abs(mul)).count("1")
    product = width + scale + 1
    return plus(control(), *([extra] if extra else []), counter(words), counter(x.tokens),
                saturating(product - p.get("shift", 0), out.width, out_lanes),
                KernelCost(adder_bits=lanes * width + out_lanes * product * max(terms - 1, 0),
                           luts=lanes * width,
                           ffs=2 * lanes * width + out_lanes * out.width,
                           memories=[memory] if memory else []))


class _InputWordsSpec(OpSpec):
    """A pool takes one input word per cycle: cycles per image are its input words."""

    def cycles(self, step, fold, tensors) -> int:
        x = tensors[step.inputs[0]]
        return x.tokens * x.channels // fold["lanes"]


class WindowSum2dSpec(_InputWordsSpec):
    """``window_sum2d``: ``StripAvgPool`` (1×k or k×1, stride 1, centred)."""

    op = "window_sum2d"
    engine_role = "anchor"
    engine_instruction = "window"
    calibration = (1.9, 0.73)
    kernels = (StripAvgPool,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x, p = tensors[step.inputs[0]], step.params
        return TensorInfo("fixed", sum_width(x.width, p["kh"] * p["kw"]), x.channels,
                          x.tokens, x.grid)

    def flush_unit(self, step, fold, tensors) -> int:
        """Words of one flush unit of the kernel (``strip_geometry``), 0 when it never
        flushes (its pooled axis is one long)."""
        x = tensors[step.inputs[0]]
        reach, unit = strip_geometry(*x.grid, x.channels // fold["lanes"], step.params["kh"],
                                     step.params["kw"])
        return unit if reach else 0

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, p = tensors[step.inputs[0]], step.params
        lanes = fold["lanes"]
        length = p["kh"] * p["kw"]
        reach, unit = strip_geometry(*x.grid, x.channels // lanes, p["kh"], p["kw"])
        width = x.width + max(length - 1, 0).bit_length()
        entry = 2 * reach * lanes * x.width   # a delay line of 2q inputs per unit word
        memory = MemoryShape("history", entry, unit, writable=True) if reach and unit > 1 \
            else None
        return _pool_cost(step, fold, tensors, memory, width, lanes,
                          KernelCost(ffs=entry if reach and unit == 1 else 0))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        if p["stride"] != 1 or p["pad_h"] != p["kh"] // 2 or p["pad_w"] != p["kw"] // 2:
            raise ConfigError(f"step {step.name!r}: only stride-1 centred strips have a "
                              f"kernel (StripAvgPool)")
        unit = StripAvgPool(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                            lanes=fold["lanes"], kernel_h=p["kh"], kernel_w=p["kw"],
                            in_width=x.width, out_width=out.width, mul=1, shift=0)
        return Built(unit, [Port("i", step.inputs[0], fold["lanes"],
                                 token_demand("strip_pool", x, out,
                                              reach=(p["kh"] // 2, p["kw"] // 2)))])

    def timing(self, unit: StripAvgPool, ready):
        """One step per cycle, each taking an input word and emitting the output word ``lag``
        words back (2 cycles later), once the delay line leads the output by ``q`` units. At
        an image boundary with no input waiting, the kernel flushes the image's remaining
        output units itself (a unit of zero steps at a time); the next image's first ``q``
        units then emit nothing."""
        ready = ready["i"]
        q, words = unit.reach, unit.unit_words
        units = unit.height * unit.width * unit.words_per_token // words  # per image
        take = np.empty_like(ready)
        out = []
        t, lead, taken, in_unit, out_unit = NEVER, 0, 0, 0, 0
        while taken < len(ready) or out_unit % units:
            emits = lead == q
            flush = bool(q) and emits and in_unit == 0 and (taken == len(ready)
                                                              or int(ready[taken]) > t)
            for _ in range(words):  # one unit: a step a cycle, an input step once its word is in
                if not flush:
                    t = max(t, int(ready[taken]))
                    take[taken] = t
                    taken += 1
                if emits:
                    out.append(t + 2)
                t += 1
            if not flush:
                in_unit = (in_unit + 1) % units
            if emits:
                out_unit += 1
                if out_unit % units == 0:  # the image's last output unit
                    lead = 0 if flush else in_unit
            elif not flush:
                lead += 1
            if not q:
                lead = 0
        return {"i": take}, np.array(out, dtype=np.int64)


class AvgPool2dSpec(_InputWordsSpec):
    """``avgpool2d``: ``SpatialAvgPool`` (r×r, stride r, no padding)."""

    op = "avgpool2d"
    engine_role = "anchor"
    engine_instruction = "window"
    calibration = (0.94, 0.87)
    kernels = (SpatialAvgPool,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x, p = tensors[step.inputs[0]], step.params
        r = p["kh"]
        return TensorInfo("fixed", width_param(step), x.channels, x.tokens // (r * r),
                          (p["grid_h"] // r, p["grid_w"] // r))

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, factor = tensors[step.inputs[0]], step.params["kh"]
        lanes = fold["lanes"]
        width = x.width + max(factor * factor - 1, 0).bit_length()
        memory = MemoryShape("row_sums", lanes * width,
                             max(x.grid[1] // factor * (x.channels // lanes), 2),
                             writable=True, transparent=True)
        return _pool_cost(step, fold, tensors, memory, width, lanes)

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        if not (p["kh"] == p["kw"] == p["stride"] and p["pad_h"] == p["pad_w"] == 0):
            raise ConfigError(f"step {step.name!r}: only r×r pooling with stride r and no "
                              f"padding has a kernel (SpatialAvgPool)")
        unit = SpatialAvgPool(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                              lanes=fold["lanes"], factor=p["kh"], in_width=x.width,
                              out_width=out.width, mul=p["mul"], shift=p["shift"])
        return Built(unit, [Port("i", step.inputs[0], fold["lanes"],
                                 token_demand("spatial_pool", x, out, factor=p["kh"]))])

    def timing(self, unit: SpatialAvgPool, ready):
        def emits(n):
            token = np.arange(n) // unit.words_per_token % (unit.height * unit.width)
            row, column = np.divmod(token, unit.width)
            return (row % unit.factor == unit.factor - 1) \
                & (column % unit.factor == unit.factor - 1)
        return pointwise_timing(unit, ready, emits)


class GlobalAvgPoolSpec(_InputWordsSpec):
    """``global_avgpool``: ``GlobalAvgPool`` (one token per image out)."""

    op = "global_avgpool"
    engine_role = "anchor"
    engine_instruction = "window"
    calibration = (0.6, 0.81)
    kernels = (GlobalAvgPool,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x = tensors[step.inputs[0]]
        return TensorInfo("fixed", width_param(step), x.channels, 1, None)

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x = tensors[step.inputs[0]]
        lanes = fold["lanes"]
        width = x.width + max(x.tokens - 1, 0).bit_length()
        memory = MemoryShape("sums", lanes * width, max(x.channels // lanes, 2), writable=True,
                             transparent=True)
        return _pool_cost(step, fold, tensors, memory, width, lanes)

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        unit = GlobalAvgPool(tokens=x.tokens, channels=x.channels, lanes=fold["lanes"],
                             in_width=x.width, out_width=out.width, mul=p["mul"],
                             shift=p["shift"])
        return Built(unit, [Port("i", step.inputs[0], fold["lanes"],
                                 token_demand("whole_image", x, out))])

    def timing(self, unit: GlobalAvgPool, ready):
        return pointwise_timing(unit, ready, lambda n: np.arange(n) // unit.words_per_token
                                % unit.tokens == unit.tokens - 1)


class ChannelGroupAvgPoolSpec(_InputWordsSpec):
    """``channel_group_avgpool``: ``ChannelGroupAvgPool`` (the MLP shortcut's m → C)."""

    op = "channel_group_avgpool"
    engine_role = "emit"
    calibration = (0.93, 0.58)
    kernels = (ChannelGroupAvgPool,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x = tensors[step.inputs[0]]
        return TensorInfo("fixed", width_param(step), x.channels // step.params["group"],
                          x.tokens, x.grid)

    def candidates(self, step, tensors):
        g = step.params["group"]
        return [{"lanes": lanes} for lanes in divisors(tensors[step.inputs[0]].channels)
                if lanes % g == 0 or g % lanes == 0]

    def out_lanes(self, step, fold) -> int:
        return max(fold["lanes"] // step.params["group"], 1)

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x = tensors[step.inputs[0]]
        width = x.width + max(step.params["group"] - 1, 0).bit_length()
        # adds group members within a word, then across words
        return _pool_cost(step, fold, tensors, None, width, self.out_lanes(step, fold))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        unit = ChannelGroupAvgPool(channels=x.channels, group=p["group"], lanes=fold["lanes"],
                                   in_width=x.width, out_width=out.width, mul=p["mul"],
                                   shift=p["shift"])
        return Built(unit, [Port("i", step.inputs[0], fold["lanes"],
                                 token_demand("pointwise", x, out))])

    def timing(self, unit: ChannelGroupAvgPool, ready):
        every = unit.words_per_output
        return pointwise_timing(unit, ready, lambda n: np.arange(n) % every == every - 1)
