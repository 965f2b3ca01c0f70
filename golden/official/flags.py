"""The official code's training flags that shape the model, and which of them we can express.

``get_model`` (their ``models.py``) builds the network from a ``ViTConfig`` plus these flags
of ``main.py``: ``--model-type``, ``--replace-ln-bn``, ``--some-fp``, ``--weight-bits``,
``--input-bits``, ``--avg-res3``, ``--avg-res5``, ``--disable-layerscale`` and the class
count ``nb_classes``. A training checkpoint stores them in ``args``; for a file without
``args`` they are read off the parameter names:

===================  =====================================================================
flag                 evidence in the state_dict
===================  =====================================================================
replace_ln_bn        ``layernorm_before`` has ``running_mean`` (BatchNorm), else LayerNorm
some_fp              ``patch_embed1`` has no ``rprelu`` (their float ``PatchEmbed``)
input_bits           1 when any ``att_prob_clip`` exists, else 32; weight_bits the same
                     (the weights alone cannot tell); ``*_clip_val`` buffers: 2-31 bits
avg_res3 / avg_res5  ``layerscale_w3`` / ``layerscale_w5`` exist
disable_layerscale   ``attention.output.layerscale`` is absent
nb_classes           rows of ``classifier.weight``
===================  =====================================================================

``enable_cls_token`` and ``drop_path`` do not change the pyramid model's inference (it
always averages the tokens), so they are not read.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor

from binaryvit.errors import CheckpointError

PYRAMID_MODEL_TYPE = "extra-res-pyramid"
BLOCK0 = "vit.encoder.layer.0."


@dataclass(frozen=True)
class OfficialFlags:
    """The flags that decide the official model's structure and arithmetic."""

    model_type: str
    replace_ln_bn: bool
    some_fp: bool
    weight_bits: int
    input_bits: int
    avg_res3: bool
    avg_res5: bool
    disable_layerscale: bool
    nb_classes: int

    @property
    def binary(self) -> bool:
        return self.weight_bits == 1

    @property
    def pool_kernels(self) -> tuple[int, ...]:
        return tuple(k for k, on in ((3, self.avg_res3), (5, self.avg_res5)) if on)

    def check_expressible(self, source: str) -> None:
        """Raise CheckpointError naming the first flag binaryvit's network cannot express."""
        if self.model_type != PYRAMID_MODEL_TYPE:
            raise CheckpointError(f"{source}: model type {self.model_type!r} is not BinaryViT; "
                                  f"only --model-type {PYRAMID_MODEL_TYPE} maps onto binaryvit")
        if not self.replace_ln_bn:
            raise CheckpointError(f"{source}: a LayerNorm model (trained without "
                                  f"--replace-ln-bn); binaryvit's network has BatchNorm only")
        if self.some_fp:
            raise CheckpointError(f"{source}: --some-fp (float patch merging) is not "
                                  f"expressible; binaryvit merges patches with a binary conv")
        if (self.weight_bits, self.input_bits) not in ((1, 1), (32, 32)):
            raise CheckpointError(f"{source}: --weight-bits {self.weight_bits} "
                                  f"--input-bits {self.input_bits}: only 1/1 (binary) or "
                                  f"32/32 (float) map onto binaryvit")


def flags_from_keys(state_dict: dict[str, Tensor], source: str) -> OfficialFlags:
    """The flags as the parameter names show them (see the module docstring)."""
    quantizer_buffers = sorted(k for k in state_dict
                               if k.endswith(("weight_clip_val", "act_clip_val")))
    if quantizer_buffers:
        raise CheckpointError(f"{source}: {quantizer_buffers[0]} shows weights or activations "
                              f"of 2-31 bits; only 1/1 (binary) or 32/32 (float) map onto "
                              f"binaryvit")
    bits = 1 if any(k.endswith("att_prob_clip") for k in state_dict) else 32
    classifier = state_dict.get("classifier.weight")
    if classifier is None or classifier.dim() != 2:
        raise CheckpointError(f"{source}: unknown layout: no 2-D classifier.weight")
    if "vit.encoder.patch_embed1.proj.weight" not in state_dict:
        raise CheckpointError(f"{source}: unknown layout: no vit.encoder.patch_embed1, so not "
                              f"the official {PYRAMID_MODEL_TYPE} (BinaryViT) model")
    return OfficialFlags(
        model_type=PYRAMID_MODEL_TYPE,
        replace_ln_bn=f"{BLOCK0}layernorm_before.running_mean" in state_dict,
        some_fp="vit.encoder.patch_embed1.rprelu.move1" not in state_dict,
        weight_bits=bits, input_bits=bits,
        avg_res3=f"{BLOCK0}layerscale_w3.alpha" in state_dict,
        avg_res5=f"{BLOCK0}layerscale_w5.alpha" in state_dict,
        disable_layerscale=f"{BLOCK0}attention.output.layerscale.alpha" not in state_dict,
        nb_classes=int(classifier.shape[0]))


def flags_from_args(args: dict[str, Any], keys: OfficialFlags) -> OfficialFlags:
    """``keys`` with every flag ``args`` records replaced by the recorded value."""
    names = {"model_type": str, "replace_ln_bn": bool, "some_fp": bool, "weight_bits": int,
             "input_bits": int, "avg_res3": bool, "avg_res5": bool,
             "disable_layerscale": bool, "nb_classes": int}
    recorded = {}
    for name, kind in names.items():
        if name in args and args[name] is not None:
            try:
                recorded[name] = kind(args[name])
            except (TypeError, ValueError):
                raise CheckpointError(f"args.{name} = {args[name]!r} is not a "
                                      f"{kind.__name__}") from None
    return replace(keys, **recorded)
