"""XNOR-popcount dot and the fixed-point MAC, by hand and against independent loops."""
import pytest
import torch

from binaryvit.errors import DataError
from binaryvit.golden.intref import fixed_mac, xnor_popcount_dot


def bits(rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_xnor_dot_by_hand():
    a = bits([[1, 0, 1]])                     # +1 -1 +1
    w = bits([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    # +3 ; (-1)(+1)+(-1)(-1)+(-1)(+1) = -1 ; -3
    assert xnor_popcount_dot(a, w).tolist() == [[3, -1, -3]]


def test_xnor_dot_k_not_multiple_of_8():
    a = torch.ones(11, dtype=torch.bool)
    w = torch.ones(1, 11, dtype=torch.bool)
    w[0, [0, 3, 5, 10]] = False
    # popcount(XNOR) = 7 of 11 -> 2*7 - 11 = 3
    assert xnor_popcount_dot(a, w).tolist() == [3]


def test_xnor_dot_matches_popcount_loop():
    gen = torch.Generator().manual_seed(4)
    for k in (1, 13, 64, 67):
        a = torch.randint(0, 2, (2, 3, k), generator=gen).bool()
        w = torch.randint(0, 2, (5, k), generator=gen).bool()
        out = xnor_popcount_dot(a, w)
        assert out.shape == (2, 3, 5)
        for i in range(2):
            for j in range(3):
                for n in range(5):
                    pop = sum(1 for x, y in zip(a[i, j].tolist(), w[n].tolist()) if x == y)
                    assert out[i, j, n].item() == 2 * pop - k


def test_xnor_dot_shape_errors():
    with pytest.raises(DataError, match="K=3"):
        xnor_popcount_dot(bits([[1, 0, 1]]), bits([[1, 0]]))
    with pytest.raises(DataError, match="w_bits"):
        xnor_popcount_dot(bits([1, 0]), bits([1, 0]))
    with pytest.raises(DataError, match="a_bits"):
        xnor_popcount_dot(torch.tensor([[2, 0]]), bits([[1, 0]]))


def test_fixed_mac_by_hand():
    x = torch.tensor([2, -3])
    w = torch.tensor([[1, 2], [-4, 0]])
    # n0: 2 - 6 + 1 = -3 -> (-3 + 1) >> 1 = -1 ; n1: -8 + 3 = -5 -> (-4) >> 1 = -2
    assert fixed_mac(x, w, torch.tensor([1, 3]), 1, 4).tolist() == [-1, -2]
    # 3*7 + 3*7 = 42 saturates to the 4-bit maximum 7
    assert fixed_mac(torch.tensor([[7, 7]]), torch.tensor([[3, 3]]), torch.tensor([0]), 0, 4).tolist() == [[7]]


def test_fixed_mac_matches_loop():
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-128, 128, (7, 20), generator=gen)
    w = torch.randint(-128, 128, (4, 20), generator=gen)
    b = torch.randint(-5000, 5000, (4,), generator=gen)
    out = fixed_mac(x, w, b, 6, 12)
    for i in range(7):
        for n in range(4):
            acc = sum(x[i, k].item() * w[n, k].item() for k in range(20)) + b[n].item()
            q = (acc + 32) // 64
            assert out[i, n].item() == max(-2048, min(2047, q))


def test_fixed_mac_errors():
    with pytest.raises(DataError, match="bias"):
        fixed_mac(torch.tensor([1, 2]), torch.tensor([[1, 2]]), torch.tensor([1, 2]), 0, 8)
    with pytest.raises(DataError, match="K=2"):
        fixed_mac(torch.tensor([1, 2]), torch.tensor([[1, 2, 3]]), torch.tensor([1]), 0, 8)


def test_fixed_mac_exact_on_every_matmul_path():
    # bounds max|x|·max|w|·K below 2^24 (float32), below 2^53 (float64) and above (int64)
    gen = torch.Generator().manual_seed(13)
    for x_max, w_max in [(100, 100), (1 << 20, 1 << 20), (1 << 30, 1 << 21)]:
        x = torch.randint(-x_max, x_max, (3, 300), generator=gen)
        w = torch.randint(-w_max, w_max, (2, 300), generator=gen)
        out = fixed_mac(x, w, torch.tensor([1, -1]), 0, None)
        for i in range(3):
            for n in range(2):
                acc = sum(a * b for a, b in zip(x[i].tolist(), w[n].tolist())) + (1 if n == 0 else -1)
                assert out[i, n].item() == acc
    with pytest.raises(DataError, match="int64"):
        fixed_mac(torch.tensor([[1 << 40]]), torch.tensor([[1 << 30]]), torch.tensor([0]), 0, None)
