"""round_shift / saturate / affine / rprelu / threshold / residual_add, by hand and by loop."""
from fractions import Fraction
import math

import pytest
import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref import affine, residual_add, round_shift, rprelu, saturate, signed_range, threshold


def t(*values):
    return torch.tensor(values, dtype=torch.int64)


@pytest.mark.parametrize("x, shift, expected", [
    (5, 1, 3), (-5, 1, -2), (-6, 2, -1), (6, 2, 2), (-2, 2, 0), (1, 1, 1), (-1, 1, 0),
    (-3, 1, -1), (7, 0, 7), (-7, 0, -7), (-7, 2, -2), (1000, 3, 125), (1004, 3, 126),
])
def test_round_shift_half_up_by_hand(x, shift, expected):
    assert round_shift(t(x), shift).item() == expected


def test_round_shift_matches_exact_rational_rounding():
    gen = torch.Generator().manual_seed(2)
    x = torch.randint(-5000, 5000, (500,), generator=gen)
    for s in range(0, 7):
        expected = [math.floor(Fraction(v, 2 ** s) + Fraction(1, 2)) for v in x.tolist()]
        assert round_shift(x, s).tolist() == expected


def test_saturate_edges():
    assert signed_range(8) == (-128, 127)
    assert signed_range(2) == (-2, 1)
    assert saturate(t(127, 128, -128, -129, 0), 8).tolist() == [127, 127, -128, -128, 0]
    assert saturate(t(5, -5), None).tolist() == [5, -5]
    with pytest.raises(ConfigError, match="width"):
        saturate(t(1), 1)
    with pytest.raises(ConfigError, match="shift"):
        round_shift(t(1), -1)


def test_affine_by_hand():
    mul, bias = t(5, 3), t(2, -1)
    # ch0: 5*3 + 2 = 17 -> (17 + 2) >> 2 = 4 ; ch1: 3*-4 - 1 = -13 -> (-11) >> 2 = -3
    assert affine(t(3, -4).view(1, 2), mul, bias, 2, 4).tolist() == [[4, -3]]
    # ch0: 52 -> 54 >> 2 = 13, saturates to 7 ; ch1: -31 -> -29 >> 2 = -8, the 4-bit minimum
    assert affine(t(10, -10), mul, bias, 2, 4).tolist() == [7, -8]


def test_affine_shape_errors_name_the_argument():
    with pytest.raises(DataError, match="mul"):
        affine(t(1, 2), t(1, 2, 3), t(0, 0), 0, 8)
    with pytest.raises(DataError, match="bias"):
        affine(t(1, 2), t(1, 2), t(0, 0, 0), 0, 8)
    with pytest.raises(DataError, match="int64"):
        affine(t(1 << 40), t(1 << 30), t(0), 0, None)


def test_rprelu_by_hand():
    x = t(5, 2, -1, -10).view(4, 1)
    # t = x - 2 = 3, 0, -3, -12 ; slopes 4 (t >= 0) / 1 ; + 1 ; round_shift 2
    # 13 -> 3 ; 1 -> 0 ; -2 -> 0 ; -11 -> (-9) >> 2 = -3
    out = rprelu(x, t(-2), t(4), t(1), t(1), 2, 8)
    assert out.flatten().tolist() == [3, 0, 0, -3]
    # a negative slope makes it V-shaped: t = -12 -> 24 + 1 = 25 -> 27 >> 2 = 6
    assert rprelu(t(-10).view(1, 1), t(-2), t(4), t(-2), t(1), 2, 8).item() == 6
    # saturation: t = 98 -> 4 * 98 + 1 = 393 -> 98, clamped to 4-bit 7
    assert rprelu(t(100).view(1, 1), t(-2), t(4), t(1), t(1), 2, 4).item() == 7


def test_affine_and_rprelu_match_slow_loop():
    gen = torch.Generator().manual_seed(3)
    c, s, w = 6, 5, 10
    x = torch.randint(-700, 700, (40, c), generator=gen)
    mul = torch.randint(-60, 60, (c,), generator=gen)
    bias = torch.randint(-2000, 2000, (c,), generator=gen)
    pre = torch.randint(-50, 50, (c,), generator=gen)
    mneg = torch.randint(-60, 60, (c,), generator=gen)
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1

    def rs(v):
        return math.floor(Fraction(v, 2 ** s) + Fraction(1, 2))

    want_affine = [[min(hi, max(lo, rs(mul[j].item() * x[i, j].item() + bias[j].item()))) for j in range(c)]
                   for i in range(40)]
    assert affine(x, mul, bias, s, w).tolist() == want_affine
    want_rprelu = []
    for i in range(40):
        row = []
        for j in range(c):
            tt = x[i, j].item() + pre[j].item()
            m = mul[j].item() if tt >= 0 else mneg[j].item()
            row.append(min(hi, max(lo, rs(m * tt + bias[j].item()))))
        want_rprelu.append(row)
    assert rprelu(x, pre, mul, mneg, bias, s, w).tolist() == want_rprelu


def test_threshold_by_hand_with_flip():
    thresh, flip = t(3, 4, 2), torch.tensor([False, False, True])
    # 3 >= 3, 3 >= 4, 3 <= 2 ; 2 >= 3, 5 >= 4, 2 <= 2
    assert threshold(torch.tensor([[3, 3, 3], [2, 5, 2]]), thresh, flip).tolist() == [
        [True, False, False], [False, True, True]]
    with pytest.raises(DataError, match="flip"):
        threshold(t(1, 2, 3), thresh, t(0, 1))


def test_residual_add_saturates():
    assert residual_add(t(100, -100, 3), t(50, -50, -5), 8).tolist() == [127, -128, -2]
    assert residual_add(t(100), t(50), None).tolist() == [150]
    with pytest.raises(DataError, match="same shape"):
        residual_add(t(1, 2), t(1), 8)
