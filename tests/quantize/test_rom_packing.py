"""FINN-style folding of weight bits into ROM words, checked by hand and by an independent loop."""
import dataclasses

import pytest
import torch

from binaryvit.errors import ConfigError, DataError, FoldingError
from binaryvit.quantize.rom_image import RomImage
from binaryvit.quantize.weight_packing import check_folding, pack_weight_rom, split_per_pe, unpack_weight_rom

W_2x3 = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.bool)
W_4x4 = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0], [0, 1, 1, 1]], dtype=torch.bool)


def test_hand_folded_2x3():
    # simd = 3, pe = 1: one row per word, input k at bit k: 1,0,1 -> 5 ; 0,1,1 -> 6
    assert pack_weight_rom(W_2x3, 1, 3).words == [5, 6]
    # pe = 2, simd = 3: PE0 bits 0-2 = 5, PE1 bits 3-5 = 6 -> 5 + 48 = 53
    image = pack_weight_rom(W_2x3, 2, 3)
    assert (image.width, image.depth, image.words) == (6, 1, [53])
    # pe = 2, simd = 1: word sf holds w[0, sf] in bit 0, w[1, sf] in bit 1 -> 1, 2, 3
    assert pack_weight_rom(W_2x3, 2, 1).words == [1, 2, 3]
    assert pack_weight_rom(W_2x3, 1, 1).words == [1, 0, 1, 0, 1, 1]


def test_hand_folded_4x4_pe2_simd2():
    # address nf*SF + sf; PE p in bits [2p, 2p+2); rows 0,1 at nf 0, rows 2,3 at nf 1
    # (nf0,sf0): row0[0:2]=11 -> 3, row1[0:2]=00 -> 0          = 3
    # (nf0,sf1): row0[2:4]=00 -> 0, row1[2:4]=01 -> 2 (<< 2)   = 8
    # (nf1,sf0): row2[0:2]=10 -> 1, row3[0:2]=01 -> 2 (<< 2)   = 9
    # (nf1,sf1): row2[2:4]=10 -> 1, row3[2:4]=11 -> 3 (<< 2)   = 13
    image = pack_weight_rom(W_4x4, 2, 2)
    assert image.words == [3, 8, 9, 13]
    assert [rom.words for rom in split_per_pe(image)] == [[3, 0, 1, 1], [0, 2, 2, 3]]


def test_pack_matches_loop_and_unpacks_for_many_foldings():
    gen = torch.Generator().manual_seed(9)
    for n, k, pe, simd in [(6, 10, 1, 1), (6, 10, 6, 10), (6, 10, 2, 5), (6, 10, 3, 2), (5, 70, 1, 70),
                           (5, 70, 5, 14), (4, 9, 4, 3), (8, 64, 2, 32)]:
        w = torch.randint(0, 2, (n, k), generator=gen).bool()
        image = pack_weight_rom(w, pe, simd)
        sf_count = k // simd
        assert (image.width, image.depth) == (pe * simd, (n // pe) * sf_count)
        for address, word in enumerate(image.words):
            nf, sf = divmod(address, sf_count)
            for p in range(pe):
                for j in range(simd):
                    assert (word >> (p * simd + j)) & 1 == int(w[nf * pe + p, sf * simd + j])
        assert torch.equal(unpack_weight_rom(image), w)


def test_folding_errors_list_the_divisors():
    with pytest.raises(FoldingError, match=r"pe=4 does not divide N \(outputs\)=6; valid pe values: \[1, 2, 3, 6\]"):
        pack_weight_rom(torch.zeros(6, 10, dtype=torch.bool), 4, 1)
    with pytest.raises(FoldingError, match=r"simd=3 .* K \(inputs\)=10; valid simd values: \[1, 2, 5, 10\]"):
        check_folding(6, 10, 1, 3)
    with pytest.raises(FoldingError, match="simd=0"):
        check_folding(6, 10, 1, 0)


def test_image_validation():
    with pytest.raises(DataError, match="word 1"):
        RomImage(width=3, depth=2, words=[7, 8])
    with pytest.raises(DataError, match="depth"):
        RomImage(width=3, depth=3, words=[1, 2])
    with pytest.raises(ConfigError, match="folding"):
        RomImage(width=3, depth=2, words=[1, 2], pe=2, simd=1, n=2, k=3)
    bare = RomImage(width=6, depth=1, words=[53])
    with pytest.raises(ConfigError, match="folding"):
        unpack_weight_rom(bare)
    restored = dataclasses.replace(bare, pe=2, simd=3, n=2, k=3)
    assert torch.equal(unpack_weight_rom(restored), W_2x3)
