"""Window sums, average pooling and token/grid reshapes, by hand and against loops."""
import pytest
import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref import (
    avgpool2d,
    channel_group_avgpool,
    global_avgpool,
    grid_to_tokens,
    nearest_upsample,
    tokens_to_grid,
    window_sum2d,
)

GRID_1_TO_9 = torch.arange(1, 10).view(1, 3, 3, 1)


def test_window_sum_3x3_zero_padded_by_hand():
    s = window_sum2d(GRID_1_TO_9, 3, 3, 1, 1, 1)[0, :, :, 0]
    assert s.tolist() == [[12, 21, 16], [27, 45, 33], [24, 39, 28]]


def test_avgpool_divides_by_nine_with_padding_counted():
    # 57 / 512 ≈ 1/9 ; centre 45*57 = 2565 -> (2565 + 256) >> 9 = 5 ; corner 12*57 = 684 -> 940 >> 9 = 1
    out = avgpool2d(GRID_1_TO_9, 3, 3, 1, 1, 1, 57, 9, 8)[0, :, :, 0]
    assert out[1, 1].item() == 5 and out[0, 0].item() == 1
    # saturation: 45*57 >> 4 (no real divide) = (2565 + 8) >> 4 = 160, clamped to 127
    assert avgpool2d(GRID_1_TO_9, 3, 3, 1, 1, 1, 57, 4, 8)[0, 1, 1, 0].item() == 127


def test_branch_pools_1xk_and_kx1():
    row = torch.tensor([1, 2, 3, 4, 5]).view(1, 1, 5, 1)
    # 1x3, pad 1 on the width only: 0+1+2, 1+2+3, 2+3+4, 3+4+5, 4+5+0
    assert window_sum2d(row, 1, 3, 1, 0, 1).flatten().tolist() == [3, 6, 9, 12, 9]
    col = row.view(1, 5, 1, 1)
    assert window_sum2d(col, 5, 1, 1, 2, 0).flatten().tolist() == [6, 10, 15, 14, 12]


def test_strided_2x2_pool():
    x = torch.arange(16).view(1, 4, 4, 1)
    # windows {0,1,4,5}=10, {2,3,6,7}=18, {8,9,12,13}=42, {10,11,14,15}=50 ; /4 -> 2.5 -> 3, 4.5 -> 5, 10.5 -> 11, 12.5 -> 13
    assert avgpool2d(x, 2, 2, 2, 0, 0, 1, 2, 8).flatten().tolist() == [3, 5, 11, 13]
    assert window_sum2d(torch.arange(12).view(1, 3, 4, 1), 2, 2, (1, 2), 0, 0).flatten().tolist() == [10, 18, 26, 34]


def test_window_sum_matches_loop():
    gen = torch.Generator().manual_seed(6)
    x = torch.randint(-100, 100, (2, 5, 6, 3), generator=gen)
    for kh, kw, stride, ph, pw in [(3, 3, 1, 1, 1), (2, 2, 2, 0, 0), (1, 5, 1, 0, 2), (5, 1, 1, 2, 0), (3, 2, (2, 1), 1, 0)]:
        sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
        out = window_sum2d(x, kh, kw, stride, ph, pw)
        ho, wo = (5 + 2 * ph - kh) // sh + 1, (6 + 2 * pw - kw) // sw + 1
        assert out.shape == (2, ho, wo, 3)
        for b in range(2):
            for i in range(ho):
                for j in range(wo):
                    for c in range(3):
                        acc = 0
                        for u in range(kh):
                            for v in range(kw):
                                r, q = i * sh + u - ph, j * sw + v - pw
                                if 0 <= r < 5 and 0 <= q < 6:
                                    acc += x[b, r, q, c].item()
                        assert out[b, i, j, c].item() == acc


def test_global_and_channel_group_pool_by_hand():
    x = torch.tensor([1, 2, 3, 5]).view(1, 4, 1)
    assert global_avgpool(x, 1, 2, 8).tolist() == [[3]]          # 11/4 = 2.75 -> 3
    y = torch.tensor([[[1, 2, 3, 4, 5, 6]]])
    assert channel_group_avgpool(y, 2, 1, 1, 8).tolist() == [[[2, 4, 6]]]   # 3/2, 7/2, 11/2 up
    with pytest.raises(ConfigError, match=r"\[1, 2, 3, 6\]"):
        channel_group_avgpool(y, 4, 1, 2, 8)


def test_token_grid_round_trip_and_upsample():
    x = torch.tensor([[[10], [11], [12], [13]]])                   # 2x2 grid a b / c d
    assert tokens_to_grid(x, 2, 2)[0, :, :, 0].tolist() == [[10, 11], [12, 13]]
    assert torch.equal(grid_to_tokens(tokens_to_grid(x, 2, 2)), x)
    up = nearest_upsample(x, 2, 2, 2)[0, :, 0].tolist()
    assert up == [10, 10, 11, 11, 10, 10, 11, 11, 12, 12, 13, 13, 12, 12, 13, 13]
    with pytest.raises(DataError, match="2×3"):
        tokens_to_grid(x, 2, 3)


def test_numpy_integer_constants_accepted():
    import numpy as np

    x = np.arange(16, dtype=np.int32).reshape(1, 4, 4, 1)
    assert avgpool2d(x, 2, 2, np.int64(2), 0, 0, np.int64(1), np.int64(2), np.int64(8)).flatten().tolist() == [3, 5, 11, 13]
    with pytest.raises(ConfigError, match="mul"):
        avgpool2d(x, 2, 2, 2, 0, 0, 0.5, 2, 8)
