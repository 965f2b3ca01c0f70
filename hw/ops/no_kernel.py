"""The steps with no kernel of their own: the image's patches (the top's pixel input),
constants (read by the kernel that uses them) and attention's scores and mask (inside the
``BinaryAttention`` kernel named after the context step)."""
from __future__ import annotations

from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.ops.spec import OpSpec
from binaryvit.hw.ops.tensor_info import TensorInfo

__all__ = ["ImagePatchesSpec", "ConstantSpec", "AttentionScoresSpec", "AttentionMaskSpec"]


class ImagePatchesSpec(OpSpec):
    """``image_patches``: the host streams the image patch by patch on the top's ``i`` port
    (no kernel; its ``lanes`` are the pixel port's width unless one reader sets it)."""

    op = "image_patches"
    engine_role = "wiring"
    kernel = False

    def tensor(self, step: Step, tensors, model: IntModel) -> TensorInfo:
        k = step.params["size"]
        x = tensors[step.inputs[0]]
        h, w = x.grid
        return TensorInfo("pixel", x.width, x.channels * k * k, (h // k) * (w // k),
                          (h // k, w // k))

    def candidates(self, step: Step, tensors):
        return [{"lanes": lanes} for lanes in divisors(tensors[step.name].channels)]


class ConstantSpec(OpSpec):
    """``constant``: a table the reading kernel holds in a ROM; no stream."""

    op = "constant"
    engine_role = "wiring"
    kernel = False
    stream = False

    def tensor(self, step: Step, tensors, model: IntModel) -> TensorInfo:
        tokens, channels = step.arrays["value"].shape
        return TensorInfo("fixed", 0, channels, tokens, None)


class AttentionScoresSpec(OpSpec):
    """``attention_scores``: computed inside ``BinaryAttention`` (no stream)."""

    op = "attention_scores"
    engine_role = "anchor"
    engine_instruction = "mask"
    kernel = False
    stream = False

    def tensor(self, step: Step, tensors, model: IntModel) -> TensorInfo:
        x = tensors[step.inputs[0]]
        return TensorInfo("scores", 0, x.channels, x.tokens, x.grid)


class AttentionMaskSpec(OpSpec):
    """``attention_mask``: computed inside ``BinaryAttention`` (no stream)."""

    op = "attention_mask"
    engine_role = "mask"
    kernel = False
    stream = False

    def tensor(self, step: Step, tensors, model: IntModel) -> TensorInfo:
        return tensors[step.inputs[0]]
