"""Weights whose official binarization is 0, which binaryvit's cannot express.

The official code binarizes with ``torch.sign`` (sign(0) = 0); binaryvit, like the hardware,
maps 0 to +1. A binary linear weight equal to its row mean (their ``W - mean(W)`` is exactly
0, computed the same way in float32) or a patch-merge weight of exactly 0 makes that
product ternary in their model, so the two networks would differ: such a checkpoint is
refused, naming the first tensor and how many weights it holds of the kind. (Activations
that land exactly on their threshold depend on the input and cannot be checked here.)
"""
from __future__ import annotations

import re

from torch import Tensor

from binaryvit.errors import CheckpointError

_LINEAR = re.compile(r"vit\.encoder\.layer\.\d+\.(attention\.attention\.(query|key|value|reduction)"
                     r"|attention\.output\.dense|intermediate\.dense|output\.dense)\.weight")
_MERGE = re.compile(r"vit\.encoder\.patch_embed\d+\.proj\.weight")


def zero_sign_count(key: str, weight: Tensor) -> int:
    """How many of ``weight``'s entries the official code binarizes to 0 (see the module
    docstring); 0 for tensors that are not binary weights."""
    if _LINEAR.fullmatch(key):
        centred = weight - weight.mean(dim=-1, keepdim=True)
        return int((centred == 0).sum())
    if _MERGE.fullmatch(key):
        return int((weight == 0).sum())
    return 0


def check_no_zero_signs(state_dict: dict[str, Tensor], source: str) -> None:
    """Raise CheckpointError at the first binary weight tensor with an exact-zero sign."""
    for key, weight in state_dict.items():
        count = zero_sign_count(key, weight.float())
        if count:
            what = ("equal to their row mean" if _LINEAR.fullmatch(key)
                    else "exactly 0")
            raise CheckpointError(f"{source}: {key} has {count} weight(s) {what}; the official "
                                  f"sign makes them 0 (a ternary product), binaryvit's +1, so "
                                  f"the import would not be faithful")
