"""Official parameter names and values -> binaryvit's.

Layers are numbered through the stages in their model (``vit.encoder.layer.N``, N counting
blocks across stages by the depths); ``vit.encoder.patch_embed{i}`` is stage i's patch
merge; ``vit.embeddings.*`` the stem; ``vit.layernorm`` the head's BatchNorm. Inside a
block (``L`` = ``vit.encoder.layer.N``):

============================================  =============================================
ours (``stages.s.blocks.j.``)                  theirs
============================================  =============================================
``norm1`` / ``norm2``                          ``L.layernorm_before`` / ``L.layernorm_after``
``attention.{q,k,v,sr}_proj.weight``           ``L.attention.attention.{query,key,value,reduction}.weight``
``attention.{q,k,v,sr}_proj.input_sign.move``  ``L.attention.attention.move{q,k,v,r}``
``attention.{q,k,v,sr}_norm``                  ``...normq, normk, normv, norm_r``
``attention.{q,k,v,sr}_act``                   ``...rprelu{q,k,v,r}``
``attention.{q,k,v}_sign.move``                ``...move{q,k,v}2``
``attention.prob_binarizer.alpha_raw``         ``...att_prob_clip`` (see below)
``attention.ctx_norm`` / ``ctx_act``           ``...norm_context`` / ``rprelu_context``
``attention.out_*``                            ``L.attention.output.{dense,move,norm,rprelu}``
``layer_scale1`` / ``layer_scale2``            ``L.attention.output.layerscale`` / ``L.output.layerscale``
``mlp.fc1*`` / ``mlp.fc2*``                    ``L.intermediate.*`` / ``L.output.*``
``pool_branches.affines.1x{k}`` / ``{k}x1``    ``L.layerscale_w{k}`` / ``L.layerscale_h{k}``
============================================  =============================================

RPReLU ``shift_in`` / ``slope`` / ``shift_out`` are their ``move1`` / ``prelu.weight`` /
``move2``; LayerScale ``scale`` / ``bias`` their ``alpha`` / ``move``; the patch-merge
``move`` is stored ``[1, C, 1, 1]`` and becomes our conv's ``input_sign.move`` ``[C]``.

Their attention binarizer is ``round(P / c).clamp(0, 1) * c`` with ``c`` the raw
``att_prob_clip``; ours is ``alpha * [2P > alpha]`` with ``alpha = |alpha_raw| + 1e-6``.
:func:`alpha_raw_for_clip` picks the float32 ``alpha_raw`` whose ``alpha`` equals ``c``
exactly; a ``c <= 0`` (their binarizer then outputs 0 or flips sign) or below 1e-6 has none.
"""
from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from binaryvit.errors import CheckpointError
from binaryvit.golden.float_model.attention import ALPHA_EPS
from binaryvit.golden.float_model.config import BinaryViTConfig

_RPRELU = {"shift_in": "move1", "slope": "prelu.weight", "shift_out": "move2"}
_AFFINE = {"scale": "alpha", "bias": "move"}
_ATTENTION_UNITS = {"q": ("query", "moveq", "normq", "rpreluq"),
                    "k": ("key", "movek", "normk", "rpreluk"),
                    "v": ("value", "movev", "normv", "rpreluv"),
                    "sr": ("reduction", "mover", "norm_r", "rprelur")}
_MERGE_NORMS = {"norm": "norm0", "conv_norm": "norm"}
_MLP_UNITS = {"fc1": "intermediate", "fc2": "output"}
ALPHA_SUFFIX = "attention.prob_binarizer.alpha_raw"


def _part(rest: str, table: dict[str, str]) -> str:
    """``shift_in`` -> ``move1`` etc.; a BatchNorm's own names pass through."""
    return table.get(rest, rest)


def _block_key(rest: str) -> str:
    """Our key inside a block -> theirs inside ``vit.encoder.layer.N``."""
    head, _, tail = rest.partition(".")
    if head in ("norm1", "norm2"):
        return f"layernorm_{'before' if head == 'norm1' else 'after'}.{tail}"
    if head in ("layer_scale1", "layer_scale2"):
        owner = "attention.output" if head == "layer_scale1" else "output"
        return f"{owner}.layerscale.{_part(tail, _AFFINE)}"
    if head == "pool_branches":
        match = re.fullmatch(r"affines\.(1x(\d+)|(\d+)x1)\.(\w+)", tail)
        if match:
            side, k = ("w", match.group(2)) if match.group(2) else ("h", match.group(3))
            return f"layerscale_{side}{k}.{_part(match.group(4), _AFFINE)}"
    if head == "mlp":
        match = re.fullmatch(r"(fc[12])(_norm|_act)?\.(.+)", tail)
        if match:
            owner = _MLP_UNITS[match.group(1)]
            return _unit_key(owner, match.group(2), match.group(3), "dense", "move", "norm",
                             "rprelu")
    if head == "attention":
        match = re.fullmatch(r"(q|k|v|sr)_(proj|norm|act|sign)\.(.+)", tail)
        if match:
            unit, part, leaf = match.groups()
            if part == "sign":
                return f"attention.attention.move{unit}2"
            linear, move, norm, act = _ATTENTION_UNITS[unit]
            suffix = {"proj": "", "norm": "_norm", "act": "_act"}[part]
            return _unit_key("attention.attention", suffix, leaf, linear, move, norm, act)
        match = re.fullmatch(r"(ctx|out)_(norm|act|proj)\.(.+)", tail)
        if match:
            unit, part, leaf = match.groups()
            if unit == "ctx":
                name = "norm_context" if part == "norm" else "rprelu_context"
                return f"attention.attention.{name}.{_part(leaf, _RPRELU) if part == 'act' else leaf}"
            suffix = {"proj": "", "norm": "_norm", "act": "_act"}[part]
            return _unit_key("attention.output", suffix, leaf, "dense", "move", "norm", "rprelu")
        if tail == "prob_binarizer.alpha_raw":
            return "attention.attention.att_prob_clip"
    raise KeyError(rest)


def _unit_key(owner: str, suffix: str | None, leaf: str, linear: str, move: str, norm: str,
              act: str) -> str:
    """One linear unit (binary linear + BN + RPReLU) of their model."""
    if not suffix:
        if leaf == "weight":
            return f"{owner}.{linear}.weight"
        if leaf == "input_sign.move":
            return f"{owner}.{move}"
        raise KeyError(leaf)
    if suffix == "_norm":
        return f"{owner}.{norm}.{leaf}"
    return f"{owner}.{act}.{_part(leaf, _RPRELU)}"


def official_key(ours: str, config: BinaryViTConfig) -> str | None:
    """Their name for our parameter or buffer ``ours``; None for what their file lacks
    (the input normalisation, which their model leaves to the data loader)."""
    if ours.startswith("stem.input_norm."):
        return None
    if ours.startswith("stem."):
        rest = ours[len("stem."):]
        if rest == "pos_embed":
            return "vit.embeddings.position_embeddings"
        if rest.startswith("conv."):
            return "vit.embeddings.patch_embeddings.projection." + rest[len("conv."):]
        return "vit.embeddings." + rest
    if ours.startswith("head_norm."):
        return "vit.layernorm." + ours[len("head_norm."):]
    if ours.startswith("classifier."):
        return ours
    match = re.fullmatch(r"stages\.(\d+)\.merge\.(.+)", ours)
    if match:
        prefix, rest = f"vit.encoder.patch_embed{match.group(1)}", match.group(2)
        merge = {"pos_embed": "position_embeddings", "conv.weight": "proj.weight",
                 "conv.input_sign.move": "move"}
        if rest in merge:
            return f"{prefix}.{merge[rest]}"
        head, _, tail = rest.partition(".")
        if head == "act":
            return f"{prefix}.rprelu.{_part(tail, _RPRELU)}"
        return f"{prefix}.{_MERGE_NORMS[head]}.{tail}"
    match = re.fullmatch(r"stages\.(\d+)\.blocks\.(\d+)\.(.+)", ours)
    if match:
        stage, block = int(match.group(1)), int(match.group(2))
        layer = sum(s.depth for s in config.stages()[:stage]) + block
        return f"vit.encoder.layer.{layer}.{_block_key(match.group(3))}"
    raise KeyError(ours)


def alpha_raw_for_clip(clip: Tensor, key: str) -> Tensor:
    """The float32 ``alpha_raw`` with ``|alpha_raw| + 1e-6 == clip`` exactly (module docstring)."""
    c = float(clip)
    if not c > 0 or not math.isfinite(c):
        raise CheckpointError(f"{key} = {c!r}: an attention clip c <= 0 (or not finite) "
                              f"cannot be represented; binaryvit's binarizer needs c > 0")
    target = clip.detach().to(torch.float32).reshape(())
    start = target - ALPHA_EPS
    candidates = [start]
    up = down = start
    for _ in range(8):
        up, down = torch.nextafter(up, target), torch.nextafter(down, -target)
        candidates += [up, down]
    for raw in candidates:
        if raw >= 0 and torch.equal(raw.abs() + ALPHA_EPS, target):
            return raw.clone()
    raise CheckpointError(f"{key} = {c!r}: no alpha with |alpha| + {ALPHA_EPS} equal to it "
                          f"(c below {ALPHA_EPS} cannot be represented)")


def map_state_dict(theirs: dict[str, Tensor], config: BinaryViTConfig,
                   reference: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Our state_dict from theirs; ``reference`` is a fresh model's (names, shapes, and the
    values their file lacks). A missing, extra or differently shaped parameter raises
    CheckpointError naming it: the config does not match the checkpoint."""
    mapped: dict[str, Tensor] = {}
    used = set()
    mismatch = "(the config does not match the checkpoint)"
    for ours, ref in reference.items():
        if not config.binary and ours.endswith(ALPHA_SUFFIX):
            mapped[ours] = ref.clone()     # float models have no attention binarizer
            continue
        key = official_key(ours, config)
        if key is None:
            mapped[ours] = ref.clone()
            continue
        if key not in theirs:
            raise CheckpointError(f"{source} lacks {key}, which config {config.name!r} "
                                  f"needs {mismatch}")
        used.add(key)
        value = theirs[key]
        if ours.endswith(ALPHA_SUFFIX):
            value = alpha_raw_for_clip(value, key)
        elif ours.endswith("merge.conv.input_sign.move") and value.numel() == ref.numel():
            value = value.reshape(ref.shape)
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"{key} is {list(value.shape)} in {source}, config "
                                  f"{config.name!r} makes it {list(ref.shape)} {mismatch}")
        mapped[ours] = value.detach().to(ref.dtype).clone()
    extra = sorted(set(theirs) - used)
    if extra:
        raise CheckpointError(f"{source} has {extra[0]} (and {len(extra) - 1} more), which "
                              f"config {config.name!r} has no place for {mismatch}"
                              if len(extra) > 1 else
                              f"{source} has {extra[0]}, which config {config.name!r} has no "
                              f"place for {mismatch}")
    return mapped
