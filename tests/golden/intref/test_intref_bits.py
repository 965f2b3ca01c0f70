"""sign(0) = +1 and LSB-first packing, against hand-written words."""
import numpy as np
import pytest
import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.intref import pack_bits, pack_bits_to_int, sign_bits, unpack_bits, unpack_int_to_bits


def bits(*values):
    return torch.tensor(values, dtype=torch.bool)


def test_sign_of_zero_is_plus_one():
    assert sign_bits(torch.tensor([-1, 0, 1, -128, 127])).tolist() == [False, True, True, False, True]


def test_sign_accepts_numpy_and_refuses_floats():
    assert sign_bits(np.array([[0, -3]])).tolist() == [[True, False]]
    with pytest.raises(DataError, match="x"):
        sign_bits(torch.tensor([0.5]))


def test_pack_lsb_first_hand_example():
    # bits 1011 0000 1 -> word0 = 1 + 4 + 8 = 13, word1 = 0, word2 = 1 (pad bits zero)
    v = bits(1, 0, 1, 1, 0, 0, 0, 0, 1)
    assert pack_bits(v, 4).tolist() == [13, 0, 1]
    assert pack_bits(bits(1, 1, 1, 1, 1), 3).tolist() == [7, 3]
    assert pack_bits(v, 62).tolist() == [1 + 4 + 8 + 256]


def test_unpack_inverts_pack_for_many_shapes():
    gen = torch.Generator().manual_seed(1)
    for k, w in [(1, 1), (7, 8), (9, 4), (64, 62), (100, 7), (130, 62)]:
        v = torch.randint(0, 2, (3, 2, k), generator=gen).bool()
        words = pack_bits(v, w)
        assert words.shape == (3, 2, -(-k // w))
        assert torch.equal(unpack_bits(words, k, w), v)


def test_unpack_refuses_set_pad_bits_and_wrong_word_count():
    with pytest.raises(DataError, match="pad bits"):
        unpack_bits(torch.tensor([13, 0, 3]), 9, 4)
    with pytest.raises(DataError, match="need 3 words"):
        unpack_bits(torch.tensor([13, 0]), 9, 4)
    with pytest.raises(DataError, match="words"):
        unpack_bits(torch.tensor([16, 0, 0]), 9, 4)


def test_word_width_validated():
    with pytest.raises(ConfigError, match="word_width"):
        pack_bits(bits(1), 63)
    with pytest.raises(DataError, match="bits"):
        pack_bits(torch.tensor([0, 2]), 8)


def test_wide_python_int_packing():
    v = torch.zeros(70, dtype=torch.bool)
    v[69] = True
    v[0] = True
    assert pack_bits_to_int(v) == (1 << 69) + 1
    assert torch.equal(unpack_int_to_bits((1 << 69) + 1, 70), v)
    assert pack_bits_to_int(bits(0, 1, 1)) == 6
    with pytest.raises(DataError, match="value"):
        unpack_int_to_bits(8, 3)
