"""The tensors of an integer model as hardware sees them: element kind, width, shape.

``infer_tensors`` walks an :class:`~binaryvit.golden.intref.intmodel.IntModel` once and gives
every step's output a :class:`TensorInfo` (what a stream of it carries), without choosing
any folding. The folding pass and the network generator both start from it.
"""
from __future__ import annotations

from dataclasses import dataclass

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.hw.kernels.multiply_round_shift import sum_width

__all__ = ["TensorInfo", "infer_tensors", "pixel_width", "ATTENTION_OPS", "HARDWARE_OPS",
           "attention_groups"]

# Steps that map to one BinaryAttention kernel (named after the context step).
ATTENTION_OPS = ("attention_scores", "attention_mask", "and_popcount_context")
HARDWARE_OPS = ("image_patches", "token_patches", "constant", "fixed_mac", "affine", "rprelu",
                "residual_add", "threshold", "xnor_popcount_dot", "window_sum2d", "avgpool2d",
                "channel_group_avgpool", "tile_channels", "nearest_upsample",
                "global_avgpool", *ATTENTION_OPS)


@dataclass(frozen=True)
class TensorInfo:
    """One tensor per image as a stream: ``tokens`` tokens of ``channels`` elements.

    kind : ``"fixed"`` (signed ``width``-bit), ``"binary"`` (1 bit, 1 ↔ +1) or ``"pixel"``
        (unsigned ``width``-bit raw pixels).
    grid : ``(height, width)`` of the token grid where the tokens form one, else None.
    """

    kind: str
    width: int
    channels: int
    tokens: int
    grid: tuple[int, int] | None


def pixel_width(model: IntModel) -> int:
    """Unsigned bits of a raw pixel (from the model's ``input_range``)."""
    lo, hi = model.input_range
    if lo < 0:
        raise ConfigError(f"input_range {model.input_range}: the pixel stream is unsigned; "
                          f"negative raw pixels are not supported by the hardware")
    return max(1, int(hi).bit_length())


def _width_param(step: Step) -> int:
    width = step.params.get("width", 0)
    if not width:
        raise ConfigError(f"step {step.name!r} ({step.op}) has no output width; the hardware "
                          f"needs a saturating width for it")
    return int(width)


def attention_groups(model: IntModel) -> dict[str, tuple[Step, Step, Step]]:
    """Context step name → its (scores, mask, context) steps; ConfigError if the three are
    not chained as ``fold`` writes them."""
    by_name = {s.name: s for s in model.steps}
    groups = {}
    for s in model.steps:
        if s.op != "and_popcount_context":
            continue
        mask = by_name.get(s.inputs[0])
        scores = by_name.get(mask.inputs[0]) if mask is not None else None
        if mask is None or mask.op != "attention_mask" or scores is None \
                or scores.op != "attention_scores":
            raise ConfigError(f"step {s.name!r}: an and_popcount_context must read an "
                              f"attention_mask of attention_scores (one BinaryAttention)")
        groups[s.name] = (scores, mask, s)
    return groups


def infer_tensors(model: IntModel) -> dict[str, TensorInfo]:
    """TensorInfo of ``"input"`` and of every step's output; ConfigError names a step the
    hardware cannot express."""
    c = model.config
    t: dict[str, TensorInfo] = {
        "input": TensorInfo("pixel", pixel_width(model), c.in_channels,
                            c.image_size[0] * c.image_size[1], tuple(c.image_size))}
    for s in model.steps:
        if s.op not in HARDWARE_OPS:
            raise ConfigError(f"step {s.name!r}: operation {s.op!r} has no hardware kernel")
        x = t.get(s.inputs[0]) if s.inputs else None
        p = s.params
        if s.op == "image_patches":
            k = p["size"]
            h, w = x.grid
            info = TensorInfo("pixel", x.width, x.channels * k * k, (h // k) * (w // k),
                              (h // k, w // k))
        elif s.op == "token_patches":
            k = p["size"]
            info = TensorInfo("binary", 1, x.channels * k * k, x.tokens // (k * k),
                              (p["grid_h"] // k, p["grid_w"] // k))
        elif s.op == "constant":
            tokens, channels = s.arrays["value"].shape
            info = TensorInfo("fixed", 0, channels, tokens, None)
        elif s.op == "fixed_mac":
            info = TensorInfo("fixed", _width_param(s), s.arrays["weight"].shape[0], x.tokens,
                              x.grid)
        elif s.op in ("affine", "rprelu", "residual_add"):
            info = TensorInfo("fixed", _width_param(s), x.channels, x.tokens, x.grid)
        elif s.op == "threshold":
            info = TensorInfo("binary", 1, x.channels, x.tokens, x.grid)
        elif s.op == "xnor_popcount_dot":
            n, k = s.arrays["weight_bits"].shape
            info = TensorInfo("fixed", k.bit_length() + 1, n, x.tokens, x.grid)
        elif s.op == "window_sum2d":
            info = TensorInfo("fixed", sum_width(x.width, p["kh"] * p["kw"]), x.channels,
                              x.tokens, x.grid)
        elif s.op == "avgpool2d":
            r = p["kh"]
            info = TensorInfo("fixed", _width_param(s), x.channels, x.tokens // (r * r),
                              (p["grid_h"] // r, p["grid_w"] // r))
        elif s.op == "channel_group_avgpool":
            info = TensorInfo("fixed", _width_param(s), x.channels // p["group"], x.tokens,
                              x.grid)
        elif s.op == "tile_channels":
            info = TensorInfo("fixed", x.width, x.channels * p["copies"], x.tokens, x.grid)
        elif s.op == "nearest_upsample":
            f = p["factor"]
            info = TensorInfo("fixed", x.width, x.channels, x.tokens * f * f,
                              (p["grid_h"] * f, p["grid_w"] * f))
        elif s.op == "global_avgpool":
            info = TensorInfo("fixed", _width_param(s), x.channels, 1, None)
        elif s.op == "attention_scores":
            info = TensorInfo("scores", 0, x.channels, x.tokens, x.grid)
        elif s.op == "attention_mask":
            info = x
        else:  # and_popcount_context
            q = t[model.step(model.step(s.inputs[0]).inputs[0]).inputs[0]]
            keys = t[s.inputs[1]].tokens
            info = TensorInfo("fixed", keys.bit_length() + 1, q.channels, q.tokens, q.grid)
        t[s.name] = info
    return t
