"""Binary attention: scores, the exp LUT, the strict row threshold, AND-popcount."""
import math
from fractions import Fraction

import pytest
import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref import and_popcount_context, attention_mask, attention_scores, exp_lut


def test_scores_by_hand():
    q = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    k = torch.tensor([[1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.bool)
    assert attention_scores(q, k).tolist() == [[3, -3, 1]]


def test_exp_lut_by_hand():
    # d = 4, sqrt(d) = 2: E[j] = round(16 * exp(j - 4)) = 0.29, 0.80, 2.17, 5.89, 16
    assert exp_lut(4, 4, 5).tolist() == [0, 1, 2, 6, 16]
    assert exp_lut(16, 8, 9)[-1].item() == 256
    # d = 16: E[0] = round(2^frac · e^-8); 2048 · 0.000335 = 0.69 -> 1, 1024 · 0.000335 = 0.34 -> 0
    assert exp_lut(16, 11, 12)[0].item() == 1 and exp_lut(16, 10, 11)[0].item() == 0
    with pytest.raises(ConfigError, match="width"):
        exp_lut(4, 4, 4)


def test_mask_threshold_is_strict_at_a_tie():
    lut = torch.tensor([0, 1, 2, 6, 16])
    uniform = torch.tensor([[4, 4, 4, 4]])                       # e = 16 each, S = 64
    # e << 2 = 64 vs theta * S = 64: a tie, so no bit is set
    assert attention_mask(uniform, lut, 1, 2).tolist() == [[False] * 4]
    assert attention_mask(uniform, lut, 0, 2).tolist() == [[True] * 4]
    # scores 4, 0, 0 -> e = 16, 2, 2, S = 20; e << 2 = 64, 8, 8 > 3 * 20 = 60
    assert attention_mask(torch.tensor([[4, 0, 0]]), lut, 3, 2).tolist() == [[True, False, False]]


def test_mask_refuses_impossible_scores():
    lut = torch.tensor([0, 1, 2, 6, 16])
    with pytest.raises(DataError, match="scores"):
        attention_mask(torch.tensor([[3, 4]]), lut, 1, 0)
    with pytest.raises(DataError, match="scores"):
        attention_mask(torch.tensor([[6, 4]]), lut, 1, 0)


def test_mask_matches_rational_loop():
    gen = torch.Generator().manual_seed(7)
    d, tq, tk = 16, 5, 9
    lut = exp_lut(d, 8, 9)
    q = torch.randint(0, 2, (2, tq, d), generator=gen).bool()
    k = torch.randint(0, 2, (2, tk, d), generator=gen).bool()
    s = attention_scores(q, k)
    for theta, ts in [(1, 3), (5, 6), (0, 0), (3, 4)]:
        out = attention_mask(s, lut, theta, ts)
        for b in range(2):
            for i in range(tq):
                e = [lut[(s[b, i, j].item() + d) // 2].item() for j in range(tk)]
                for j in range(tk):
                    assert out[b, i, j].item() == (Fraction(e[j], sum(e)) > Fraction(theta, 2 ** ts))


def test_and_popcount_by_hand_and_loop():
    b = torch.tensor([[1, 0, 1, 1]], dtype=torch.bool)
    v = torch.tensor([[1], [1], [0], [0]], dtype=torch.bool)      # +1 +1 -1 -1
    # 2 * popcount(b AND v) - popcount(b) = 2*1 - 3 = -1
    assert and_popcount_context(b, v).tolist() == [[-1]]
    gen = torch.Generator().manual_seed(8)
    bb = torch.randint(0, 2, (3, 4, 7), generator=gen).bool()
    vv = torch.randint(0, 2, (3, 7, 5), generator=gen).bool()
    out = and_popcount_context(bb, vv)
    for h in range(3):
        for i in range(4):
            for c in range(5):
                both = sum(1 for k in range(7) if bb[h, i, k] and vv[h, k, c])
                assert out[h, i, c].item() == 2 * both - int(bb[h, i].sum())
