"""Interval bounds: sound (random inputs never leave them) and tight (crafted inputs reach both ends)."""
import pytest
import torch

from binaryvit.errors import ConfigError
from binaryvit.golden.intref import (
    affine,
    and_popcount_context,
    attention_mask,
    attention_scores,
    avgpool2d,
    channel_group_avgpool,
    exp_lut,
    fixed_mac,
    global_avgpool,
    residual_add,
    rprelu,
    window_sum2d,
    xnor_popcount_dot,
)
from binaryvit.golden.intref.bounds import (
    Interval,
    affine_bounds,
    and_popcount_context_bounds,
    attention_mask_bounds,
    avgpool2d_bounds,
    bits_needed,
    channel_group_avgpool_bounds,
    fixed_mac_bounds,
    global_avgpool_bounds,
    residual_add_bounds,
    rprelu_bounds,
    xnor_popcount_dot_bounds,
)

GEN = torch.Generator().manual_seed(12)


def rand(lo, hi, shape):
    return torch.randint(lo, hi + 1, shape, generator=GEN)


def span(t):
    return Interval(int(t.min()), int(t.max()))


def inside(t, interval):
    return int(t.min()) >= interval.lo and int(t.max()) <= interval.hi


@pytest.mark.parametrize("lo, hi, width", [
    (0, 0, 1), (-1, -1, 1), (-1, 0, 1), (0, 1, 2), (-2, 1, 2), (-128, 127, 8), (0, 128, 9), (-129, 0, 9),
    (5, 9, 5), (-9, -5, 5), (-(1 << 40), 1, 41),
])
def test_bits_needed_by_hand(lo, hi, width):
    assert bits_needed(lo, hi) == width
    assert Interval(lo, hi).bits == width


def test_interval_validated():
    with pytest.raises(ConfigError, match="lo <= hi"):
        Interval(3, 2)


def test_affine_bounds_by_hand_and_reached():
    # x in [-4, 3]; mul 5, -3; bias 2, -1; shift 2
    b = affine_bounds(Interval(-4, 3), [5, -3], [2, -1], 2)
    # ch0: product [-20, 15], acc [-18, 17]; ch1: product [-9, 12], acc [-10, 11]
    assert b.product == Interval(-20, 15)
    assert b.accumulator == Interval(-18, 17)
    assert b.output == Interval(-4, 4)                       # round_shift(-18, 2) = -4, (17+2)>>2 = 4
    x = torch.tensor([[-4, -4], [3, 3]])
    out = affine(x, torch.tensor([5, -3]), torch.tensor([2, -1]), 2, None)
    assert span(out) == b.output


def test_affine_bounds_sound_per_channel():
    xs = [(-100, 50), (0, 7), (-3, -1)]
    mul, bias, shift = [7, -13, 4], [100, -5, 0], 3
    b = affine_bounds(xs, mul, bias, shift)
    x = torch.stack([rand(lo, hi, (2000,)) for lo, hi in xs], dim=-1)
    m, c = torch.tensor(mul), torch.tensor(bias)
    assert inside(m * x, b.product) and inside(m * x + c, b.accumulator)
    assert inside(affine(x, m, c, shift, None), b.output)
    corners = torch.tensor([[lo for lo, _ in xs], [hi for _, hi in xs]])
    assert span(m * corners + c) == b.accumulator


def test_rprelu_bounds_negative_slope_and_reached():
    # t = x + 2 in [-8, 6]; positive part [0, 6] * 3 = [0, 18]; negative part [-8, -1] * -2 = [2, 16]
    b = rprelu_bounds(Interval(-10, 4), 2, 3, -2, 5, 1)
    assert b.shifted == Interval(-8, 6)
    assert b.product == Interval(0, 18)
    assert b.accumulator == Interval(5, 23)
    assert b.output == Interval(3, 12)
    x = torch.arange(-10, 5).view(-1, 1)
    out = rprelu(x, torch.tensor([2]), torch.tensor([3]), torch.tensor([-2]), torch.tensor([5]), 1, None)
    assert span(out) == b.output


def test_rprelu_bounds_sound_random():
    for _ in range(20):
        lo = int(rand(-300, 300, ()))
        hi = lo + int(rand(0, 400, ()))
        pre, mp, mn, post, shift = (int(rand(-200, 200, ())), int(rand(-50, 50, ())), int(rand(-50, 50, ())),
                                    int(rand(-1000, 1000, ())), int(rand(0, 6, ())))
        b = rprelu_bounds((lo, hi), pre, mp, mn, post, shift)
        x = torch.arange(lo, hi + 1).view(-1, 1)        # every input value: sound and tight at once
        out = rprelu(x, torch.tensor([pre]), torch.tensor([mp]), torch.tensor([mn]), torch.tensor([post]), shift, None)
        assert span(out) == b.output
        t = x + pre
        assert span(torch.where(t >= 0, mp, mn) * t + post) == b.accumulator


def test_residual_add_bounds():
    b = residual_add_bounds(Interval(-128, 127), (-5, 9))
    assert b == Interval(-133, 136) and b.bits == 9
    assert span(residual_add(torch.tensor([-128, 127]), torch.tensor([-5, 9]), None)) == b


def test_xnor_and_context_bounds_reached():
    k = 11
    b = xnor_popcount_dot_bounds(k)
    assert b.dot == Interval(-11, 11) and b.popcount == Interval(0, 11) and b.dot.bits == 5
    ones = torch.ones(1, k, dtype=torch.bool)
    assert span(xnor_popcount_dot(torch.cat([ones, ~ones]), ones)) == b.dot
    c = and_popcount_context_bounds(7)
    bb = torch.ones(1, 7, dtype=torch.bool)
    v = torch.stack([torch.ones(7, dtype=torch.bool), torch.zeros(7, dtype=torch.bool)], dim=-1)
    assert span(and_popcount_context(bb, v)) == c.dot


def test_fixed_mac_bounds_by_hand_sound_and_reached():
    w = [[3, -2, 0], [1, 1, 1]]
    b = fixed_mac_bounds(Interval(-4, 5), w, [10, -1], 2)
    # row0 terms [-12, 15], [-10, 8], [0, 0]: dot [-22, 23], partial [-22, 23]
    # row1 terms [-4, 5] x3: dot [-12, 15]
    assert b.dot == Interval(-22, 23)
    assert b.accumulator == Interval(-13, 33)              # row1 -12-1 = -13 ; row0 23+10 = 33
    assert b.output == Interval(-3, 8)                     # (-13+2)>>2 = -3, (33+2)>>2 = 8
    x = torch.tensor([[5, -4, 0], [-4, 5, 0], [-4, -4, -4], [5, 5, 5]])
    assert span(fixed_mac(x, torch.tensor(w), torch.tensor([10, -1]), 2, None)) == b.output
    # partial sums: terms in [2, 6] and [-6, -2] never sum beyond [-6, 6] whatever the order
    p = fixed_mac_bounds([(1, 3), (2, 6)], [[2, -1]], [0], 0)
    assert p.dot == Interval(-4, 4) and p.partial == Interval(-6, 6)
    xs = [(-128, 127)] * 6
    wr = rand(-128, 127, (4, 6))
    br = fixed_mac_bounds(xs, wr.tolist(), [0, 1, 2, 3], 5)
    xr = rand(-128, 127, (3000, 6))
    assert inside(fixed_mac(xr, wr, torch.tensor([0, 1, 2, 3]), 5, None), br.output)
    terms = xr.unsqueeze(1) * wr                          # every prefix of every row stays in partial
    assert inside(terms.cumsum(-1), br.partial)


def test_pool_bounds_with_border_counts():
    # 3x3 grid, 3x3 window, pad 1: windows hold 4 (corner) … 9 (centre) real inputs
    b = avgpool2d_bounds(Interval(2, 10), 3, 3, 1, 1, 1, 3, 3, 57, 9)
    assert b.window_sum == Interval(8, 90)
    assert b.product == Interval(456, 5130)
    assert b.output == Interval(1, 10)                      # (456+256)>>9 = 1, (5130+256)>>9 = 10
    assert span(window_sum2d(torch.full((1, 3, 3, 1), 2), 3, 3, 1, 1, 1)).lo == 8
    assert span(avgpool2d(torch.full((1, 3, 3, 1), 10), 3, 3, 1, 1, 1, 57, 9, None)).hi == 10
    # no padding: every window full
    assert avgpool2d_bounds((-3, 5), 2, 2, 2, 0, 0, 4, 4, 1, 2).window_sum == Interval(-12, 20)
    # 1x5 branch on a 4-wide grid: 3 to 4 real inputs per window
    assert avgpool2d_bounds((1, 1), 1, 5, 1, 0, 2, 4, 4, 1, 0).window_sum == Interval(3, 4)
    for _ in range(5):
        x = rand(-50, 20, (2, 5, 6, 3))
        bb = avgpool2d_bounds((-50, 20), 3, 2, (2, 1), 1, 1, 5, 6, 21, 4)
        assert inside(avgpool2d(x, 3, 2, (2, 1), 1, 1, 21, 4, None), bb.output)


def test_global_and_group_pool_bounds():
    g = global_avgpool_bounds((-8, 7), 16, 3, 4)
    assert g.window_sum == Interval(-128, 112) and g.product == Interval(-384, 336)
    assert span(global_avgpool(torch.tensor([[[-8]] * 16, [[7]] * 16]).view(2, 16, 1), 3, 4, None)) == g.output
    c = channel_group_avgpool_bounds((-8, 7), 4, -1, 2)
    assert c.product == Interval(-28, 32)                  # mul -1 flips the sum [-32, 28]
    x = torch.tensor([[[-8] * 4, [7] * 4]])
    assert span(channel_group_avgpool(x, 4, -1, 2, None)) == c.output


def test_attention_bounds_reached():
    lut = exp_lut(16, 8, 9)
    b = attention_mask_bounds(lut.tolist(), 9, 5, 6)
    assert b.score == Interval(-16, 16) and b.lut_index == Interval(0, 16)
    assert b.exp == Interval(int(lut[0]), 256) and b.row_sum == Interval(9 * int(lut[0]), 9 * 256)
    assert b.scaled_exp.hi == 256 << 6 and b.scaled_row_sum.hi == 5 * 9 * 256
    q = torch.randint(0, 2, (4, 3, 16), generator=GEN).bool()
    k = torch.randint(0, 2, (4, 9, 16), generator=GEN).bool()
    s = attention_scores(q, k)
    assert inside(s, b.score)
    e = lut[(s + 16) // 2]
    assert inside(e, b.exp) and inside(e << 6, b.scaled_exp) and inside(5 * e.sum(-1), b.scaled_row_sum)
    uniform = torch.full((1, 9), 16)                        # every key at the top score: both sums at their maximum
    assert int(lut[16] << 6) == b.scaled_exp.hi and 5 * int(lut[(uniform + 16) // 2].sum()) == b.scaled_row_sum.hi
    assert attention_mask(s, lut, 5, 6).dtype == torch.bool
