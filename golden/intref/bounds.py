"""Interval bounds of every op's intermediates, for the quantizer's overflow prover.

Each function maps input intervals and the op's constants to the exact interval of every
intermediate the hardware holds and of the output *before saturation*. "Exact" means tight
and sound: every input in the box stays inside, and inputs at the interval ends reach both
ends (inputs are taken as independent, each anywhere in its own interval). Per-channel ops
take one interval for all channels or one per channel and return the hull over channels
(the width of a shared datapath). ``bits_needed`` turns an interval into a signed width.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.validation import check_nonnegative_int, check_positive_int, check_shift


def _round_shift_int(value: int, shift: int) -> int:
    return value if shift == 0 else (value + (1 << (shift - 1))) >> shift


@dataclass(frozen=True)
class Interval:
    """The integers ``lo … hi`` (inclusive)."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if not isinstance(self.lo, int) or not isinstance(self.hi, int) or self.lo > self.hi:
            raise ConfigError(f"Interval: expected integers lo <= hi, got lo={self.lo!r}, hi={self.hi!r}")

    @property
    def bits(self) -> int:
        """Signed two's-complement width holding every value (:func:`bits_needed`)."""
        return bits_needed(self.lo, self.hi)

    def __contains__(self, value: int) -> bool:
        return self.lo <= value <= self.hi

    def hull(self, other: "Interval") -> "Interval":
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def __add__(self, other: "Interval") -> "Interval":
        return Interval(self.lo + other.lo, self.hi + other.hi)

    def shift(self, offset: int) -> "Interval":
        return Interval(self.lo + offset, self.hi + offset)

    def scale(self, factor: int) -> "Interval":
        a, b = self.lo * factor, self.hi * factor
        return Interval(min(a, b), max(a, b))

    def round_shift(self, shift: int) -> "Interval":
        """``round_shift`` is monotone, so the ends map to the ends."""
        s = check_shift(shift)
        return Interval(_round_shift_int(self.lo, s), _round_shift_int(self.hi, s))


IntervalLike = Union[Interval, tuple[int, int]]


def bits_needed(lo: int, hi: int) -> int:
    """Smallest signed two's-complement width ``w`` with ``−2^(w−1) ≤ lo`` and ``hi ≤ 2^(w−1) − 1``.

    ``bits_needed(0, 0) = 1``; ``bits_needed(-128, 127) = 8``; ``bits_needed(0, 128) = 9``.
    """
    if lo > hi:
        raise ConfigError(f"bits_needed: lo={lo} exceeds hi={hi}")
    # v and ~v = −v − 1 need the same magnitude bits; one more for the sign
    return max((v if v >= 0 else ~v).bit_length() + 1 for v in (lo, hi))


def _as_interval(value: IntervalLike, name: str) -> Interval:
    if isinstance(value, Interval):
        return value
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected an Interval or a (lo, hi) pair, got {value!r}") from None
    return Interval(int(lo), int(hi))


def _channels(x: IntervalLike | Sequence[IntervalLike], constants: dict[str, Sequence[int] | int]) -> list[tuple]:
    """Zip per-channel intervals and constants (scalars broadcast) into per-channel tuples."""
    lengths = {len(v) for v in constants.values() if not isinstance(v, int)}
    per_channel_x = not isinstance(x, Interval) and not (isinstance(x, tuple) and len(x) == 2
                                                          and all(isinstance(v, int) for v in x))
    if per_channel_x:
        lengths.add(len(x))
    if len(lengths) > 1:
        raise ConfigError(f"per-channel arguments disagree on the channel count: {sorted(lengths)}")
    count = lengths.pop() if lengths else 1
    xs = [_as_interval(v, "x") for v in x] if per_channel_x else [_as_interval(x, "x")] * count
    columns = [[int(v)] * count if isinstance(v, int) else [int(c) for c in v] for v in constants.values()]
    return list(zip(xs, *columns))


def _hull(intervals: list[Interval]) -> Interval:
    out = intervals[0]
    for item in intervals[1:]:
        out = out.hull(item)
    return out


@dataclass(frozen=True)
class AffineBounds:
    """``product = mul·x``, ``accumulator = mul·x + bias``, ``output`` = round-shifted accumulator."""

    product: Interval
    accumulator: Interval
    output: Interval


def affine_bounds(x: IntervalLike | Sequence[IntervalLike], mul: Sequence[int] | int,
                  bias: Sequence[int] | int, shift: int) -> AffineBounds:
    """Bounds of :func:`~binaryvit.golden.intref.affine` before saturation."""
    products, accs, outs = [], [], []
    for xi, m, b in _channels(x, {"mul": mul, "bias": bias}):
        p = xi.scale(m)
        products.append(p)
        accs.append(p.shift(b))
        outs.append(p.shift(b).round_shift(shift))
    return AffineBounds(_hull(products), _hull(accs), _hull(outs))


@dataclass(frozen=True)
class RPReLUBounds:
    """``shifted = x + pre_bias``, ``product = m·shifted``, ``accumulator = product + post_bias``,
    ``output`` = round-shifted accumulator."""

    shifted: Interval
    product: Interval
    accumulator: Interval
    output: Interval


def rprelu_bounds(x: IntervalLike | Sequence[IntervalLike], pre_bias: Sequence[int] | int,
                  mul_pos: Sequence[int] | int, mul_neg: Sequence[int] | int,
                  post_bias: Sequence[int] | int, shift: int) -> RPReLUBounds:
    """Bounds of :func:`~binaryvit.golden.intref.rprelu` before saturation.

    The product is piecewise linear in ``t``: the part of ``t`` at or above 0 scales by
    ``mul_pos``, the part below by ``mul_neg``; each piece's ends are reachable.
    """
    shifted, products, accs, outs = [], [], [], []
    for xi, pre, mp, mn, post in _channels(x, {"pre_bias": pre_bias, "mul_pos": mul_pos,
                                               "mul_neg": mul_neg, "post_bias": post_bias}):
        t = xi.shift(pre)
        pieces = []
        if t.hi >= 0:
            pieces.append(Interval(max(t.lo, 0), t.hi).scale(mp))
        if t.lo < 0:
            pieces.append(Interval(t.lo, min(t.hi, -1)).scale(mn))
        p = _hull(pieces)
        shifted.append(t)
        products.append(p)
        accs.append(p.shift(post))
        outs.append(p.shift(post).round_shift(shift))
    return RPReLUBounds(_hull(shifted), _hull(products), _hull(accs), _hull(outs))


def residual_add_bounds(a: IntervalLike, b: IntervalLike) -> Interval:
    """``a + b`` before saturation."""
    return _as_interval(a, "a") + _as_interval(b, "b")


@dataclass(frozen=True)
class DotBounds:
    """``popcount`` (of the XNOR or AND), any ``partial`` popcount, and the signed ``dot``."""

    popcount: Interval
    dot: Interval


def xnor_popcount_dot_bounds(k: int) -> DotBounds:
    """``popcount(XNOR) ∈ [0, K]`` (also every partial popcount), ``dot ∈ [−K, K]``."""
    k = check_positive_int(k, "k")
    return DotBounds(Interval(0, k), Interval(-k, k))


def and_popcount_context_bounds(tk: int) -> DotBounds:
    """``popcount(b AND v) ∈ [0, Tk]`` and ``popcount(b) ∈ [0, Tk]`` (``popcount``); the
    context ``2·popcount(b AND v) − popcount(b) ∈ [−Tk, Tk]`` (``dot``)."""
    tk = check_positive_int(tk, "tk")
    return DotBounds(Interval(0, tk), Interval(-tk, tk))


@dataclass(frozen=True)
class MacBounds:
    """``partial``: any sum of a subset of the products (every adder-tree node and running
    accumulator, in any order and folding); ``dot = Σ_k w_nk·x_k``; ``accumulator = dot +
    bias``; ``output`` = round-shifted accumulator."""

    partial: Interval
    dot: Interval
    accumulator: Interval
    output: Interval


def fixed_mac_bounds(x: IntervalLike | Sequence[IntervalLike], w: Sequence[Sequence[int]],
                     bias: Sequence[int], shift: int) -> MacBounds:
    """Bounds of :func:`~binaryvit.golden.intref.fixed_mac` before saturation, hull over rows.

    ``x`` is one interval for every input or one per input ``k``; ``w`` is the ``[N, K]``
    integer matrix (nested sequences or a tensor), ``bias`` the ``[N]`` biases.
    """
    rows = [[int(v) for v in row] for row in w]
    biases = [int(b) for b in bias]
    if not rows or len(rows) != len(biases):
        raise ConfigError(f"w and bias: expected N ≥ 1 rows and N biases, got {len(rows)} rows and {len(biases)} biases")
    k = len(rows[0])
    if any(len(row) != k for row in rows):
        raise ConfigError("w: rows of different lengths")
    if isinstance(x, Interval) or (isinstance(x, tuple) and len(x) == 2 and all(isinstance(v, int) for v in x)):
        xs = [_as_interval(x, "x")] * k
    else:
        xs = [_as_interval(v, "x") for v in x]
        if len(xs) != k:
            raise ConfigError(f"x: expected one interval per input (K={k}), got {len(xs)}")
    partials, dots, accs, outs = [], [], [], []
    for row, b in zip(rows, biases):
        terms = [xi.scale(wk) for xi, wk in zip(xs, row)]
        dot = Interval(sum(t.lo for t in terms), sum(t.hi for t in terms))
        partials.append(Interval(sum(min(t.lo, 0) for t in terms), sum(max(t.hi, 0) for t in terms)))
        dots.append(dot)
        accs.append(dot.shift(b))
        outs.append(dot.shift(b).round_shift(shift))
    return MacBounds(_hull(partials), _hull(dots), _hull(accs), _hull(outs))


@dataclass(frozen=True)
class PoolBounds:
    """``window_sum`` (the exact sum ``S``), ``product = S·mul``, ``output`` = round-shifted product."""

    window_sum: Interval
    product: Interval
    output: Interval


def _pool(x: Interval, counts: tuple[int, int], mul: int, shift: int) -> PoolBounds:
    # S is n·x summed over n real inputs (padding adds 0); linear in n, so the extreme
    # counts give the hull.
    lo_n, hi_n = counts
    s = _hull([Interval(lo_n * x.lo, lo_n * x.hi), Interval(hi_n * x.lo, hi_n * x.hi)])
    p = s.scale(mul)
    return PoolBounds(s, p, p.round_shift(shift))


def _covered(size: int, kernel: int, stride: int, pad: int) -> tuple[int, int]:
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise ConfigError(f"a window of {kernel} does not fit {size} + 2·{pad}")
    counts = [min(i * stride - pad + kernel, size) - max(i * stride - pad, 0) for i in range(out)]
    return min(counts), max(counts)


def avgpool2d_bounds(x: IntervalLike, kh: int, kw: int, stride: int | tuple[int, int], pad_h: int, pad_w: int,
                     grid_h: int, grid_w: int, mul: int, shift: int) -> PoolBounds:
    """Bounds of :func:`~binaryvit.golden.intref.avgpool2d` on a ``grid_h × grid_w`` grid.

    Windows at the border hold fewer real inputs (padding is 0), which matters when ``x``
    does not contain 0; the grid size says which counts occur.
    """
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    rows = _covered(check_positive_int(grid_h, "grid_h"), check_positive_int(kh, "kh"),
                    check_positive_int(sh, "stride"), check_nonnegative_int(pad_h, "pad_h"))
    cols = _covered(check_positive_int(grid_w, "grid_w"), check_positive_int(kw, "kw"),
                    check_positive_int(sw, "stride"), check_nonnegative_int(pad_w, "pad_w"))
    return _pool(_as_interval(x, "x"), (rows[0] * cols[0], rows[1] * cols[1]), mul, shift)


def global_avgpool_bounds(x: IntervalLike, tokens: int, mul: int, shift: int) -> PoolBounds:
    """Bounds of :func:`~binaryvit.golden.intref.global_avgpool` over ``tokens`` tokens."""
    t = check_positive_int(tokens, "tokens")
    return _pool(_as_interval(x, "x"), (t, t), mul, shift)


def channel_group_avgpool_bounds(x: IntervalLike, group: int, mul: int, shift: int) -> PoolBounds:
    """Bounds of :func:`~binaryvit.golden.intref.channel_group_avgpool`."""
    g = check_positive_int(group, "group")
    return _pool(_as_interval(x, "x"), (g, g), mul, shift)


@dataclass(frozen=True)
class AttentionBounds:
    """``score ∈ [−d, d]``; ``exp`` the LUT entries; ``row_sum = Σ_k e_ik``;
    ``scaled_exp = e·2^theta_shift`` and ``scaled_row_sum = theta·row_sum`` (the two sides of
    the compare); ``lut_index = (s + d)/2 ∈ [0, d]``."""

    score: Interval
    lut_index: Interval
    exp: Interval
    row_sum: Interval
    scaled_exp: Interval
    scaled_row_sum: Interval


def attention_mask_bounds(lut: Sequence[int], tk: int, theta: int, theta_shift: int) -> AttentionBounds:
    """Bounds of :func:`~binaryvit.golden.intref.attention_scores` and
    :func:`~binaryvit.golden.intref.attention_mask` for ``tk`` keys."""
    table = [int(v) for v in lut]
    if len(table) < 2 or min(table) < 0:
        raise ConfigError("lut: expected d + 1 ≥ 2 non-negative entries")
    tk = check_positive_int(tk, "tk")
    theta = check_nonnegative_int(theta, "theta")
    ts = check_shift(theta_shift, "theta_shift")
    d = len(table) - 1
    e = Interval(min(table), max(table))
    row = Interval(tk * e.lo, tk * e.hi)
    return AttentionBounds(Interval(-d, d), Interval(0, d), e, row,
                           Interval(e.lo << ts, e.hi << ts), row.scale(theta))
