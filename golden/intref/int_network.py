"""The integer forward of a whole BinaryViT: an :class:`IntModel` program run on raw pixels.

Every arithmetic step is one ``binaryvit.golden.intref`` operation; the remaining steps only
move bits and integers around (patch unfolding, channel tiling, head splitting), so the RTL
that implements the same ops in the same order computes the same integers. Vectorised over
images: the whole digits test split runs in one call.

Tensor layouts: raw pixels ``int64 [B, C, H, W]``; tokens ``[B, T, C]`` (raster order);
attention scores and masks ``[B, heads, Tq, Tk]``; logits ``[B, classes]`` in the
``logit_frac`` format.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from binaryvit.errors import CheckpointError, DataError
from binaryvit.golden import intref
from binaryvit.golden.intref.intmodel import IntModel, Step


def unfold_patches(image: Tensor, size: int) -> Tensor:
    """``[B, C, H, W]`` → ``[B, (H/size)·(W/size), C·size·size]``, patches in raster order.

    Element ``c·size² + i·size + j`` of a patch is pixel ``(i, j)`` of channel ``c``: the
    flattening order of a PyTorch conv weight ``[N, C, size, size]``.
    """
    b, c, h, w = image.shape
    x = image.reshape(b, c, h // size, size, w // size, size)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // size) * (w // size), c * size * size)


def _tokens_to_image(x: Tensor, h: int, w: int) -> Tensor:
    return x.reshape(x.shape[0], h, w, x.shape[2]).permute(0, 3, 1, 2)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    b, t, c = x.shape
    return x.reshape(b, t, heads, c // heads).transpose(1, 2)


def _arr(step: Step, key: str) -> Tensor:
    value = step.arrays[key]
    return torch.from_numpy(np.ascontiguousarray(value))


def _expand(constant: Tensor, like: Tensor) -> Tensor:
    return constant.expand_as(like) if constant.shape != like.shape else constant


def _window(step: Step, x: Tensor, mode: str) -> Tensor:
    p = step.params
    grid = intref.tokens_to_grid(x, p["grid_h"], p["grid_w"])
    args = (p["kh"], p["kw"], p["stride"], p["pad_h"], p["pad_w"])
    if mode == "sum":
        out = intref.window_sum2d(grid, *args)
    else:
        out = intref.avgpool2d(grid, *args, p["mul"], p["shift"], p["width"])
    return intref.grid_to_tokens(out)


def _width(step: Step) -> int | None:
    width = step.params.get("width", 0)
    return None if width == 0 else width


OPS: dict[str, Callable[..., Tensor]] = {
    "image_patches": lambda s, x: unfold_patches(x, s.params["size"]),
    "token_patches": lambda s, x: unfold_patches(
        _tokens_to_image(x, s.params["grid_h"], s.params["grid_w"]), s.params["size"]),
    "constant": lambda s: _arr(s, "value"),
    "fixed_mac": lambda s, x: intref.fixed_mac(x, _arr(s, "weight"), _arr(s, "bias"),
                                               s.params["shift"], _width(s)),
    "affine": lambda s, x: intref.affine(x, _arr(s, "mul"), _arr(s, "bias"), s.params["shift"],
                                         _width(s)),
    "rprelu": lambda s, x: intref.rprelu(x, _arr(s, "pre_bias"), _arr(s, "mul_pos"),
                                         _arr(s, "mul_neg"), _arr(s, "post_bias"),
                                         s.params["shift"], _width(s)),
    "residual_add": lambda s, a, b: intref.residual_add(a, _expand(b, a), _width(s)),
    "threshold": lambda s, x: intref.threshold(x, _arr(s, "thresh"), _arr(s, "flip")),
    "xnor_popcount_dot": lambda s, bits: intref.xnor_popcount_dot(bits, _arr(s, "weight_bits")),
    "window_sum2d": lambda s, x: _window(s, x, "sum"),
    "avgpool2d": lambda s, x: _window(s, x, "avg"),
    "channel_group_avgpool": lambda s, x: intref.channel_group_avgpool(
        x, s.params["group"], s.params["mul"], s.params["shift"], _width(s)),
    "tile_channels": lambda s, x: x.repeat(1, 1, s.params["copies"]),
    "nearest_upsample": lambda s, x: intref.nearest_upsample(x, s.params["grid_h"],
                                                             s.params["grid_w"], s.params["factor"]),
    "attention_scores": lambda s, q, k: intref.attention_scores(
        _split_heads(q, s.params["heads"]), _split_heads(k, s.params["heads"])),
    "attention_mask": lambda s, scores: intref.attention_mask(
        scores, _arr(s, "lut"), s.params["theta"], s.params["theta_shift"]),
    "and_popcount_context": lambda s, mask, v: _merge_heads(
        intref.and_popcount_context(mask, _split_heads(v, s.params["heads"]))),
    "global_avgpool": lambda s, x: intref.global_avgpool(x, s.params["mul"], s.params["shift"],
                                                         _width(s)),
}


def _merge_heads(x: Tensor) -> Tensor:
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def as_pixel_tensor(images, model: IntModel) -> Tensor:
    """Raw pixels as ``int64 [B, C, H, W]``; DataError unless integers of the configured shape."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, Tensor) else images
    c = model.config
    expected = (c.in_channels, *c.image_size)
    if x.dim() != 4 or tuple(x.shape[1:]) != expected:
        raise DataError(f"images must have shape [batch, {expected[0]}, {expected[1]}, "
                        f"{expected[2]}] for config {c.name!r}, got {list(x.shape)}")
    if x.is_floating_point():
        if not bool(torch.all(x == torch.round(x))):
            raise DataError("images must hold raw integer pixels (the integer model folds the "
                            "normalisation into the stem); found fractional values")
        x = x.to(torch.int64)
    elif x.dtype == torch.bool:
        raise DataError("images must be integer pixels, got bool")
    return x.to(torch.int64)


@dataclass
class IntForward:
    """Result of :func:`run_int_network`: the logits and the requested taps."""

    logits: Tensor
    taps: dict[str, Tensor]


def run_int_network(model: IntModel, images, taps: Iterable[str] | bool = False,
                    observer: Callable[[Step, Tensor], None] | None = None) -> IntForward:
    """Run the integer program on raw pixels ``[B, C, H, W]``.

    Parameters
    ----------
    model : the integer model.
    images : raw integer pixels (float tensors holding integers are accepted).
    taps : ``True`` for every step's output, an iterable of step names for those, or
        ``False`` for none. Unknown names raise CheckpointError.
    observer : called as ``observer(step, output)`` after every step (calibration uses it to
        reduce each tensor on the fly instead of keeping it).

    Returns
    -------
    IntForward with ``logits`` (int64 ``[B, classes]``, format ``(logit_width,
    logit_frac)``) and ``taps`` (step name → tensor; bits are ``bool``).
    """
    x = as_pixel_tensor(images, model)
    names = {s.name for s in model.steps}
    wanted = names if taps is True else set(taps or ())
    unknown = wanted - names
    if unknown:
        raise CheckpointError(f"no step named {sorted(unknown)[0]!r} in the integer model")
    last_use: dict[str, int] = {}
    for i, s in enumerate(model.steps):
        for name in s.inputs:
            last_use[name] = i
    values: dict[str, Tensor] = {"input": x}
    captured: dict[str, Tensor] = {}
    out = x
    for i, s in enumerate(model.steps):
        if s.op not in OPS:
            raise CheckpointError(f"step {s.name!r}: unknown operation {s.op!r}")
        try:
            args = [values[name] for name in s.inputs]
        except KeyError as exc:
            raise CheckpointError(f"step {s.name!r} reads {exc.args[0]!r}, which no earlier "
                                  f"step produces") from None
        out = OPS[s.op](s, *args)
        values[s.name] = out
        if observer is not None:
            observer(s, out)
        if s.name in wanted:
            captured[s.name] = out
        for name in s.inputs:  # free what no later step reads: keeps big batches small
            if last_use.get(name) == i and name != "input":
                values.pop(name, None)
    return IntForward(out, captured)


def int_predict(model: IntModel, images, batch_size: int = 512) -> Tensor:
    """Top-1 classes (``int64 [B]``) of the integer model, in batches."""
    x = as_pixel_tensor(images, model)
    preds = [run_int_network(model, x[i:i + batch_size]).logits.argmax(dim=-1)
             for i in range(0, len(x), batch_size)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)


__all__ = ["OPS", "IntForward", "run_int_network", "int_predict", "unfold_patches",
           "as_pixel_tensor"]
