"""Folding: a float BinaryViT (eval mode) → the integer program of intref operations.

What folds where (``F`` = ``stream_frac``, every real-valued tensor in ``(stream_width, F)``;
``M`` a per-step multiplier binary point chosen so the largest constant fills
``const_bits``; constants rounded half up):

* **stem**: normalisation ``(x − mean)/std``, conv weight and bias and BatchNorm fold into one
  ``fixed_mac`` on raw integer pixels; the position embedding is a ``constant`` added by
  ``residual_add``.
* **BatchNorm** on the stream (norm1, norm2, merge norm): ``affine`` with
  ``mul = round(g·2^M)``, ``bias = round(c·2^(F+M))``, ``shift = M``.
* **RSign** ``sign(x + move)``: ``threshold`` with ``T = ceil(−move·2^F)`` (exact on the grid).
* **binary linear / conv + BN**: ``xnor_popcount_dot``, then ``affine`` on the integer dot with
  ``mul = round(g·α·2^M)`` (α the weight scale), then ``residual_add`` of the shortcut.
* **RPReLU** (and the **LayerScale** that follows it, folded in exactly: ``γ·(PReLU(t) + s) + δ``
  is a PReLU with slopes ``γ`` and ``γ·slope``): ``rprelu``.
* **pooling divisors**: powers of two are shifts (``avgpool2d`` / ``channel_group_avgpool``
  with ``mul = 1``); the 1×k / k×1 branches take the exact ``window_sum2d`` and fold ``1/k``
  with the branch affine into one ``affine``.
* **attention**: ``attention_scores`` → ``attention_mask`` (exp LUT, ``theta = round(α/2 ·
  2^theta_shift)``) → ``and_popcount_context``; α folds into the ctx BatchNorm ``affine``.
* **head**: BatchNorm, the mean over tokens and the classifier fold into one ``fixed_mac`` on
  the exact token sum (``global_avgpool`` with ``mul = 1``, ``shift = 0``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from binaryvit.errors import ConfigError
from binaryvit.golden.float_model.attention import BinaryAttention
from binaryvit.golden.float_model.block import BinaryViTBlock
from binaryvit.golden.float_model.channelwise import ChannelAffine, RPReLU
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref import exp_lut, signed_range
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.quantize.formats import QuantFormats

LUT_EXTRA_BITS = 8  # beyond the least LUT precision: measured 0 flipped attention bits on digits
MAX_POINT = 40  # largest multiplier binary point: keeps every product far below 2^62


def round_half_up(x) -> np.ndarray:
    """``floor(x + 1/2)`` in float64, as int64 (the constants' rounding rule)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def fill_point(values, bits: int, minimum: int = 0) -> int:
    """Largest binary point ``M`` (``minimum ≤ M ≤ 40``) with ``|round(v·2^M)| < 2^(bits−1)``."""
    peak = float(np.max(np.abs(np.asarray(values, dtype=np.float64)))) if np.size(values) else 0.0
    if peak == 0.0:
        return max(minimum, 0)
    point = math.floor(math.log2(((1 << (bits - 1)) - 1) / peak))
    while point > minimum and np.max(np.abs(round_half_up(np.asarray(values) * 2.0 ** point))) \
            >= (1 << (bits - 1)):
        point -= 1
    return int(min(max(point, minimum), MAX_POINT))


def mac_point_within(weight, bits: int, x_peak: int, acc_width: int, minimum: int = 0) -> int:
    """``fill_point`` of a MAC's weights, lowered until the worst-case partial sum
    ``Σ_k |w_nk|·x_peak`` of every row fits ``acc_width − 1`` signed bits (one bit for the bias)."""
    point = fill_point(weight, bits, minimum)
    while point > minimum:
        row_sums = np.abs(round_half_up(np.asarray(weight) * 2.0 ** point)).sum(axis=1)
        if int(row_sums.max()) * x_peak < 1 << (acc_width - 2):
            break
        point -= 1
    return point


def batchnorm_scale_offset(bn: nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm as ``y = g·x + c`` per channel (float64)."""
    var = bn.running_var.detach().double().numpy()
    mean = bn.running_mean.detach().double().numpy()
    g = bn.weight.detach().double().numpy() / np.sqrt(var + bn.eps)
    return g, bn.bias.detach().double().numpy() - g * mean


def divisor_mul_shift(divisor: int, bits: int = 16) -> tuple[int, int]:
    """``mul / 2^shift ≈ 1/divisor``: exact (``mul = 1``) for powers of two."""
    if divisor & (divisor - 1) == 0:
        return 1, divisor.bit_length() - 1
    return int(round_half_up(2.0 ** bits / divisor)), bits


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


class _ProgramBuilder:
    """Appends steps; every method returns the name of the tensor it produced."""

    def __init__(self, formats: QuantFormats):
        self.f = formats
        self.frac = formats.stream_frac
        self.width = formats.stream_width
        self.steps: list[Step] = []

    def add(self, name: str, op: str, inputs: list[str], params: dict | None = None,
            arrays: dict | None = None) -> str:
        self.steps.append(Step(name, op, tuple(inputs), dict(params or {}),
                               {k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()}))
        return name

    def affine(self, name: str, x: str, scale, offset, in_frac: int) -> str:
        """``y = scale·x + offset`` into the stream format; ``x`` has ``in_frac``."""
        point = fill_point(scale, self.f.const_bits, minimum=max(self.frac - in_frac, 0))
        mul = round_half_up(np.asarray(scale) * 2.0 ** point)
        bias = round_half_up(np.asarray(offset) * 2.0 ** (in_frac + point))
        return self.add(name, "affine", [x], {"shift": in_frac + point - self.frac,
                                              "width": self.width}, {"mul": mul, "bias": bias})

    def rprelu(self, name: str, x: str, act: RPReLU, scale: ChannelAffine | None) -> str:
        """RPReLU, then (folded) the LayerScale ``scale`` if given."""
        slope, s_in, s_out = _np(act.slope), _np(act.shift_in), _np(act.shift_out)
        gamma = _np(scale.scale) if scale is not None else np.ones_like(slope)
        delta = _np(scale.bias) if scale is not None else np.zeros_like(slope)
        pos, neg = gamma, gamma * slope
        point = fill_point(np.concatenate([pos, neg]), self.f.const_bits)
        arrays = {"pre_bias": round_half_up(-s_in * 2.0 ** self.frac),
                  "mul_pos": round_half_up(pos * 2.0 ** point),
                  "mul_neg": round_half_up(neg * 2.0 ** point),
                  "post_bias": round_half_up((gamma * s_out + delta) * 2.0 ** (self.frac + point))}
        return self.add(name, "rprelu", [x], {"shift": point, "width": self.width}, arrays)

    def threshold(self, name: str, x: str, move: torch.Tensor) -> str:
        """``sign(x + move)`` as ``x ≥ ceil(−move·2^F)``, clamped to the stream range (+1)."""
        lo, hi = signed_range(self.width)
        thresh = np.ceil(-_np(move) * 2.0 ** self.frac)
        thresh = np.clip(thresh, lo, hi + 1).astype(np.int64)
        return self.add(name, "threshold", [x], {},
                        {"thresh": thresh, "flip": np.zeros(len(thresh), dtype=bool)})

    def residual_add(self, name: str, a: str, b: str) -> str:
        return self.add(name, "residual_add", [a, b], {"width": self.width})

    def constant(self, name: str, value: torch.Tensor) -> str:
        lo, hi = signed_range(self.width)
        q = np.clip(round_half_up(_np(value) * 2.0 ** self.frac), lo, hi)
        return self.add(name, "constant", [], {}, {"value": q})

    def binary_linear(self, proj_name: str, x: str, proj,
                      grid: tuple[int, int] | None = None) -> tuple[str, np.ndarray]:
        """Threshold + XNOR-popcount (a conv unfolds its patches of the ``grid`` first);
        returns the dot's name and the weight scales α."""
        weight = proj.weight.detach()
        if weight.dim() == 2:
            bits = (weight - weight.mean(dim=-1, keepdim=True)) >= 0
            alpha = weight.abs().mean(dim=-1)
        else:
            bits = (weight >= 0).reshape(weight.shape[0], -1)
            alpha = weight.abs().mean(dim=(1, 2, 3))
        sign = self.threshold(f"{proj_name}.input_sign", x, proj.input_sign.move)
        if weight.dim() == 4:
            sign = self.add(f"{proj_name}.patches", "token_patches", [sign],
                            {"size": weight.shape[-1], "grid_h": grid[0], "grid_w": grid[1]})
        dot = self.add(proj_name, "xnor_popcount_dot", [sign], {},
                       {"weight_bits": bits.numpy().astype(bool)})
        return dot, _np(alpha)

    def unit(self, proj_name: str, norm_name: str, sum_name: str, act_name: str, x: str,
             shortcut: str, proj, norm, act, scale: ChannelAffine | None = None) -> str:
        """``RP(BN(α·dot(sign(x + move), W)) + shortcut)`` (then LayerScale)."""
        dot, alpha = self.binary_linear(proj_name, x, proj)
        g, c = batchnorm_scale_offset(norm)
        y = self.affine(norm_name, dot, g * alpha, c, in_frac=0)
        return self.rprelu(act_name, self.residual_add(sum_name, y, shortcut), act, scale)

    def pool(self, name: str, x: str, grid: tuple[int, int], size: int) -> str:
        mul, shift = divisor_mul_shift(size * size)
        return self.add(name, "avgpool2d", [x],
                        {"grid_h": grid[0], "grid_w": grid[1], "kh": size, "kw": size,
                         "stride": size, "pad_h": 0, "pad_w": 0, "mul": mul, "shift": shift,
                         "width": self.width})


def attention_lut_frac(d: int, tk: int, theta_shift: int, formats: QuantFormats) -> int:
    """Binary point of the exp LUT: 8 bits beyond the least that keeps ``E[0] ≥ 1`` (so no
    row loses all its attention), fewer if either side of the compare, ``e·2^theta_shift``
    or ``theta·Σe``, would not fit ``acc_width``."""
    least = math.ceil(2 * math.sqrt(d) * math.log2(math.e) - 1)
    fits = formats.acc_width - 2 - max(theta_shift, formats.theta_bits + tk.bit_length())
    return max(least, min(least + LUT_EXTRA_BITS, fits))


def _fold_attention(b: _ProgramBuilder, p: str, att: BinaryAttention, u: str,
                    grid: tuple[int, int], scale: ChannelAffine | None) -> str:
    a = f"{p}.attention"

    def unit(name: str, x: str, out_name: str | None = None, unit_scale=None) -> str:
        return b.unit(f"{a}.{name}_proj", f"{a}.{name}_norm", f"{a}.{name}_sum",
                      out_name or f"{a}.{name}_act", x, x, getattr(att, f"{name}_proj"),
                      getattr(att, f"{name}_norm"), getattr(att, f"{name}_act"), unit_scale)

    r = att.sr_ratio
    q = unit("q", u)
    reduced = unit("sr", b.pool(f"{a}.sr_pool", u, grid, r)) if r > 1 else u
    k, v = unit("k", reduced), unit("v", reduced)
    q_bits = b.threshold(f"{a}.q_sign", q, att.q_sign.move)
    k_bits = b.threshold(f"{a}.k_sign", k, att.k_sign.move)
    v_bits = b.threshold(f"{a}.v_sign", v, att.v_sign.move)
    heads = att.heads
    d = att.q_proj.weight.shape[0] // heads
    alpha = float(att.prob_binarizer.alpha().detach().double())
    tk = (grid[0] // r) * (grid[1] // r)
    theta_real = alpha / 2
    theta_shift = max(0, b.f.theta_bits - 1 - math.floor(math.log2(theta_real)))
    lut_frac = attention_lut_frac(d, tk, theta_shift, b.f)
    scores = b.add(f"{a}.scores", "attention_scores", [q_bits, k_bits],
                   {"heads": heads, "head_dim": d})
    mask = b.add(f"{a}.prob_binarizer", "attention_mask", [scores],
                 {"theta": int(round_half_up(theta_real * 2.0 ** theta_shift)),
                  "theta_shift": theta_shift, "lut_frac": lut_frac, "keys": tk},
                 {"lut": exp_lut(d, lut_frac, lut_frac + 1).numpy()})
    ctx = b.add(f"{a}.context", "and_popcount_context", [mask, v_bits],
                {"heads": heads, "keys": tk})
    g, c = batchnorm_scale_offset(att.ctx_norm)
    total = b.residual_add(f"{a}.ctx_sum_q", b.affine(f"{a}.ctx_norm", ctx, g * alpha, c, 0), q)
    for name, tensor in (("k", k), ("v", v)):
        if r > 1:
            tensor = b.add(f"{a}.{name}_up", "nearest_upsample", [tensor],
                           {"grid_h": grid[0] // r, "grid_w": grid[1] // r, "factor": r})
        total = b.residual_add(f"{a}.ctx_sum_{name}", total, tensor)
    ctx = b.rprelu(f"{a}.ctx_act", total, att.ctx_act, None)
    return unit("out", ctx, f"{p}.layer_scale1" if scale is not None else None, scale)


def _fold_block(b: _ProgramBuilder, p: str, block: BinaryViTBlock, h: str,
                grid: tuple[int, int]) -> str:
    g, c = batchnorm_scale_offset(block.norm1)
    u = b.affine(f"{p}.norm1", h, g, c, b.frac)
    a = _fold_attention(b, p, block.attention, u, grid, block.layer_scale1)
    h1 = b.residual_add(f"{p}.attention_residual", h, a)
    g, c = batchnorm_scale_offset(block.norm2)
    z = b.affine(f"{p}.norm2", h1, g, c, b.frac)
    mlp, m = block.mlp, f"{p}.mlp"
    tiled = b.add(f"{m}.fc1_shortcut", "tile_channels", [z], {"copies": mlp.group})
    t = b.unit(f"{m}.fc1", f"{m}.fc1_norm", f"{m}.fc1_sum", f"{m}.fc1_act", z, tiled,
               mlp.fc1, mlp.fc1_norm, mlp.fc1_act)
    mul, shift = divisor_mul_shift(mlp.group)
    grouped = b.add(f"{m}.fc2_shortcut", "channel_group_avgpool", [t],
                    {"group": mlp.group, "mul": mul, "shift": shift, "width": b.width})
    out_name = f"{p}.layer_scale2" if block.layer_scale2 is not None else f"{m}.fc2_act"
    o = b.unit(f"{m}.fc2", f"{m}.fc2_norm", f"{m}.fc2_sum", out_name, t, grouped,
               mlp.fc2, mlp.fc2_norm, mlp.fc2_act, block.layer_scale2)
    branches = [] if block.pool_branches is None else list(block.pool_branches.affines)
    out = b.residual_add(p if not branches else f"{p}.mlp_residual", h1, o)
    for i, name in enumerate(branches):
        kh, kw = (int(s) for s in name.split("x"))
        q = f"{p}.pool_branches"
        window = b.add(f"{q}.{name}.sum", "window_sum2d", [z],
                       {"grid_h": grid[0], "grid_w": grid[1], "kh": kh, "kw": kw, "stride": 1,
                        "pad_h": kh // 2, "pad_w": kw // 2})
        affine = block.pool_branches.affines[name]
        branch = b.affine(f"{q}.affines.{name}", window, _np(affine.scale) / (kh * kw),
                          _np(affine.bias), b.frac)
        out = b.residual_add(p if i == len(branches) - 1 else f"{q}.{name}.add", out, branch)
    return out


def _fold_merge(b: _ProgramBuilder, m: str, merge, h: str, grid: tuple[int, int]) -> str:
    g, c = batchnorm_scale_offset(merge.norm)
    z = b.affine(f"{m}.norm", h, g, c, b.frac)
    dot, alpha = b.binary_linear(f"{m}.conv", z, merge.conv, grid)
    g, c = batchnorm_scale_offset(merge.conv_norm)
    main = b.affine(f"{m}.conv_norm", dot, g * alpha, c, 0)
    short = b.add(f"{m}.shortcut", "tile_channels", [b.pool(f"{m}.shortcut_pool", z, grid, 2)],
                  {"copies": 2})
    act = b.rprelu(f"{m}.act", b.residual_add(f"{m}.sum", main, short), merge.act, None)
    return b.residual_add(m, act, b.constant(f"{m}.pos_embed", merge.pos_embed[0]))


def _fold_stem(b: _ProgramBuilder, model: BinaryViT) -> str:
    stem = model.stem
    w = _np(stem.conv.weight)                                   # [N, C, p, p]
    mean = _np(stem.input_norm.mean).reshape(1, -1, 1, 1)
    std = _np(stem.input_norm.std).reshape(1, -1, 1, 1)
    g, c = batchnorm_scale_offset(stem.norm)
    weight = (g.reshape(-1, 1, 1, 1) * w / std).reshape(w.shape[0], -1)
    bias = g * (_np(stem.conv.bias) - (w * mean / std).reshape(w.shape[0], -1).sum(1)) + c
    point = fill_point(weight, b.f.const_bits, minimum=b.frac)
    patches = b.add("stem.patches", "image_patches", ["input"], {"size": w.shape[-1]})
    mac = b.add("stem.norm", "fixed_mac", [patches],
                {"shift": point - b.frac, "width": b.width},
                {"weight": round_half_up(weight * 2.0 ** point),
                 "bias": round_half_up(bias * 2.0 ** point)})
    return b.residual_add("stem", mac, b.constant("stem.pos_embed", stem.pos_embed[0]))


def _fold_head(b: _ProgramBuilder, model: BinaryViT, h: str, tokens: int) -> str:
    g, c = batchnorm_scale_offset(model.head_norm)
    w, bias = _np(model.classifier.weight), _np(model.classifier.bias)
    weight = w * g.reshape(1, -1) / tokens
    offset = w @ c + bias
    total = b.add("head.token_sum", "global_avgpool", [h],
                  {"mul": 1, "shift": 0, "width": b.width + tokens.bit_length(),
                   "tokens": tokens})
    x_peak = 1 << (b.width + tokens.bit_length() - 1)
    point = mac_point_within(weight, b.f.const_bits, x_peak, b.f.acc_width)
    return b.add("classifier", "fixed_mac", [total],
                 {"shift": point, "width": b.f.logit_width},
                 {"weight": round_half_up(weight * 2.0 ** point),
                  "bias": round_half_up(offset * 2.0 ** (b.frac + point))})


def check_foldable(model: BinaryViT) -> None:
    """ConfigError unless the integer model can express ``model``'s config."""
    config = model.config
    if not config.binary:
        raise ConfigError(f"config {config.name!r} is the float network (binary=False); only "
                          f"binary networks quantize to XNOR hardware")
    if not config.global_pool:
        raise ConfigError(f"config {config.name!r} uses a class token (global_pool=False); the "
                          f"integer model supports global average pooling only")


@torch.no_grad()
def fold_model(model: BinaryViT, formats: QuantFormats) -> IntModel:
    """The integer program of ``model`` (put in eval mode) at ``formats``; see the module docstring."""
    check_foldable(model)
    model.eval()
    b = _ProgramBuilder(formats)
    h = _fold_stem(b, model)
    grid = model.stages[0].spec.grid
    for i, stage in enumerate(model.stages):
        if stage.merge is not None:
            h = _fold_merge(b, f"stages.{i}.merge", stage.merge, h, grid)
            grid = stage.spec.grid
        for j, block in enumerate(stage.blocks):
            h = _fold_block(b, f"stages.{i}.blocks.{j}", block, h, grid)
    _fold_head(b, model, h, grid[0] * grid[1])
    recorded = {"stream_width": formats.stream_width, "stream_frac": formats.stream_frac,
                "const_bits": formats.const_bits, "logit_width": formats.logit_width,
                "logit_frac": formats.stream_frac, "theta_bits": formats.theta_bits,
                "acc_width": formats.acc_width}
    return IntModel(model.config, recorded, formats.input_range, b.steps)


__all__ = ["fold_model", "check_foldable", "batchnorm_scale_offset", "round_half_up",
           "fill_point", "divisor_mul_shift"]
