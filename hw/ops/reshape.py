"""The ops that move tokens without arithmetic: ``tile_channels`` (``ChannelTile``),
``nearest_upsample`` (``NearestUpsample``) and ``token_patches`` (``PatchUnfold``)."""
from __future__ import annotations

import numpy as np

from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.estimate.resource_model import KernelCost, MemoryShape, control, counter, plus
from binaryvit.hw.kernels.channel_tile import ChannelTile
from binaryvit.hw.kernels.patch_unfold import PatchUnfold
from binaryvit.hw.kernels.token_buffer import NearestUpsample, TokenBuffer
from binaryvit.hw.ops.demand import token_demand
from binaryvit.hw.ops.spec import Built, OpSpec, Port
from binaryvit.hw.ops.tensor_info import TensorInfo
from binaryvit.hw.ops.word_timing import NEVER, chain

__all__ = ["TileChannelsSpec", "NearestUpsampleSpec", "TokenPatchesSpec"]


class TileChannelsSpec(OpSpec):
    """``tile_channels``: ``ChannelTile`` (the MLP shortcut's C → m)."""

    op = "tile_channels"
    engine_role = "wiring"
    calibration = (1.39, 0.97)
    kernels = (ChannelTile,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x = tensors[step.inputs[0]]
        return TensorInfo("fixed", x.width, x.channels * step.params["copies"], x.tokens, x.grid)

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        lanes = fold["lanes"]
        words = x.channels // lanes
        return plus(control(), counter(words), counter(step.params["copies"]),
                    KernelCost(luts=lanes * out.width, ffs=(words + 1) * lanes * out.width))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        unit = ChannelTile(channels=x.channels, lanes=fold["lanes"], width=x.width,
                           copies=step.params["copies"])
        return Built(unit, [Port("i", step.inputs[0], fold["lanes"],
                                 token_demand("pointwise", x, out))])

    def timing(self, unit: ChannelTile, ready):
        """The first copy of a token passes through; the other copies replay with the input
        stalled."""
        ready = ready["i"]
        words, copies = unit.words, unit.copies
        take = np.empty_like(ready)
        out = np.empty(len(ready) * copies, dtype=np.int64)
        replay = np.arange(1, (copies - 1) * words + 1)
        t = NEVER
        for token in range(len(ready) // words):
            base = token * words * copies
            for j in range(words):
                t = max(int(ready[token * words + j]), t)
                take[token * words + j] = t
                out[base + j] = t + unit.latency
                t += 1
            out[base + words:base + words * copies] = t + replay
            t += (copies - 1) * words
        return {"i": take}, out


class NearestUpsampleSpec(OpSpec):
    """``nearest_upsample``: ``NearestUpsample`` (attention's ``up(k̃)``, ``up(ṽ)``)."""

    op = "nearest_upsample"
    engine_role = "wiring"
    calibration = (0.56, 0.92)
    kernels = (TokenBuffer,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x, p = tensors[step.inputs[0]], step.params
        f = p["factor"]
        return TensorInfo("fixed", x.width, x.channels, x.tokens * f * f,
                          (p["grid_h"] * f, p["grid_w"] * f))

    def cycles(self, step, fold, tensors) -> int:
        x = tensors[step.inputs[0]]
        return TokenBuffer.image_cycles(x.tokens * x.channels // fold["lanes"],
                                        step.params["factor"])

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x, out = tensors[step.inputs[0]], tensors[step.name]
        lanes = fold["lanes"]
        words = x.tokens * x.channels // lanes
        return plus(control(), counter(words), counter(step.params["factor"] ** 2 * x.tokens),
                    counter(x.tokens), counter(x.channels // lanes),
                    KernelCost(luts=lanes * out.width, ffs=lanes * out.width,
                               memories=[MemoryShape("tokens", lanes * x.width, 2 * words,
                                                     writable=True)]))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        unit = NearestUpsample(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                               lanes=fold["lanes"], data_width=x.width, factor=p["factor"])
        return Built(unit, [Port("i", step.inputs[0], fold["lanes"],
                                 token_demand("whole_image", x, out))])

    def timing(self, unit: TokenBuffer, ready):
        """Two banks: an image loads into the free bank while the other replays; a replay
        starts once its image is loaded and the previous replay is issued, and frees its
        bank."""
        ready = ready["i"]
        n_in = unit.input_words_per_image
        n_out = unit.output_words_per_image
        take = np.empty_like(ready)
        out = np.empty(len(ready) // n_in * n_out, dtype=np.int64)
        loaded = NEVER  # last load cycle of the previous image
        replayed = [NEVER, NEVER]  # last replay issue of images n−2 and n−1
        for image in range(len(ready) // n_in):
            words = chain(ready[image * n_in:(image + 1) * n_in],
                          max(loaded + 1, replayed[0] + 1))
            take[image * n_in:(image + 1) * n_in] = words
            loaded = int(words[-1])
            start = max(loaded + 1, replayed[1] + 1)
            out[image * n_out:(image + 1) * n_out] = start + 1 + np.arange(n_out)
            replayed = [replayed[1], start + n_out - 1]
        return {"i": take}, out


class TokenPatchesSpec(OpSpec):
    """``token_patches``: ``PatchUnfold`` (the patch merge's ``s × s`` unfolding); folds
    ``simd`` input bits and ``lanes`` output bits per word."""

    op = "token_patches"
    engine_role = "wiring"
    fold_keys = ("simd", "lanes")
    kernels = (PatchUnfold,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        x, p = tensors[step.inputs[0]], step.params
        k = p["size"]
        return TensorInfo("binary", 1, x.channels * k * k, x.tokens // (k * k),
                          (p["grid_h"] // k, p["grid_w"] // k))

    def candidates(self, step, tensors):
        x, out = tensors[step.inputs[0]], tensors[step.name]
        return [{"simd": s, "lanes": lanes} for s in divisors(x.channels)
                for lanes in divisors(out.channels)]

    def in_lanes(self, step, fold) -> int:
        return fold["simd"]

    def cycles(self, step, fold, tensors) -> int:
        x = tensors[step.inputs[0]]
        return PatchUnfold.image_cycles(x.tokens * x.channels, fold["simd"], fold["lanes"])

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        x = tensors[step.inputs[0]]
        bits = x.tokens * x.channels
        return plus(control(), counter(bits // fold["simd"]), counter(bits // fold["lanes"]),
                    KernelCost(luts=bits, ffs=2 * bits + fold["lanes"]))

    def build(self, step, fold, tensors, steps) -> Built:
        x, out, p = tensors[step.inputs[0]], tensors[step.name], step.params
        unit = PatchUnfold(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                           size=p["size"], in_simd=fold["simd"], out_simd=fold["lanes"])
        return Built(unit, [Port("i", step.inputs[0], fold["simd"],
                                 token_demand("whole_image", x, out))])

    def timing(self, unit: PatchUnfold, ready):
        """Load register and shift register: an image moves to the shift register once
        loaded and the previous one has left (or is leaving), then shifts out a word per
        cycle."""
        ready = ready["i"]
        n_in, n_out = unit.bits // unit.in_simd, unit.bits // unit.out_simd
        take = np.empty_like(ready)
        out = np.empty(len(ready) // n_in * n_out, dtype=np.int64)
        moved = NEVER
        for image in range(len(ready) // n_in):
            loaded = chain(ready[image * n_in:(image + 1) * n_in], moved + 1)
            take[image * n_in:(image + 1) * n_in] = loaded
            moved = max(int(loaded[-1]) + 1, moved + n_out)
            out[image * n_out:(image + 1) * n_out] = moved + 1 + np.arange(n_out)
        return {"i": take}, out
