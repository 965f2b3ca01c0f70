"""Memory layouts of the engine's tensors: hand-computed words, round trips through memory,
agreement with intref's bit packing, and refusal of values that do not fit."""
import numpy as np
import pytest
import torch

from binaryvit.errors import CompileError
from binaryvit.golden.intref import pack_bits
from binaryvit.hw.engine.isa import TensorKind, TensorRef
from binaryvit.hw.engine.tensor_words import (
    pack16,
    read_tensor,
    signed_words,
    tensor_words,
    unpack16,
    wide_words,
    write_tensor,
)


def test_hand_computed_words():
    assert signed_words([-1, 0, 1, -32768, 32767], "x").tolist() == [0xFFFF, 0, 1, 0x8000, 0x7FFF]
    # -2 in 32 bits is 0xFFFF_FFFE: low word first
    assert wide_words([-2, 0x12345678], 2, "x").tolist() == [0xFFFE, 0xFFFF, 0x5678, 0x1234]
    assert wide_words([-(1 << 40)], 3, "x").tolist() == [0, 0, 0xFF00]
    # bit i of a row is bit i mod 16 of word i div 16; the 17-bit row needs two words
    row = np.zeros((1, 17), dtype=bool)
    row[0, [0, 2, 16]] = True
    assert pack16(row).tolist() == [[0b101, 1]]


def test_transposed_bits_store_columns_as_rows():
    bits = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)   # [T=3, C=2]
    ref = TensorRef(0, TensorKind.BITS_T, 3, 2)
    # column 0 over tokens = 1,1,0 -> 0b011; column 1 = 0,1,1 -> 0b110
    assert tensor_words(ref, bits, 2, "v").tolist() == [0b011, 0b110]


@pytest.mark.parametrize("k", [1, 15, 16, 17, 64, 100])
def test_pack16_is_intrefs_packing(k):
    bits = torch.rand(5, k, generator=torch.Generator().manual_seed(k)) < 0.5
    assert np.array_equal(pack16(bits.numpy()), pack_bits(bits, 16).numpy())
    assert np.array_equal(unpack16(pack16(bits.numpy()), k), bits.numpy())


@pytest.mark.parametrize("kind", list(TensorKind))
@pytest.mark.parametrize("wide", [2, 3])
def test_round_trip_through_memory(kind, wide):
    g = torch.Generator().manual_seed(int(kind) * 10 + wide)
    rows, cols = 7, 19
    if kind in (TensorKind.BITS, TensorKind.BITS_T):
        value = torch.rand(4, rows, cols, generator=g) < 0.5
    else:
        bits = 16 if kind == TensorKind.STREAM else 16 * wide
        value = torch.randint(-(1 << (bits - 1)), 1 << (bits - 1), (4, rows, cols), generator=g)
        value[0, 0, 0], value[0, 0, 1] = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    ref = TensorRef(5, kind, rows, cols)
    memory = np.full((4, 5 + ref.words(wide) + 3), 0xABCD, dtype=np.uint16)
    write_tensor(memory, ref, value, wide)
    assert torch.equal(read_tensor(memory, ref, wide), value)
    # the words around the tensor are untouched
    assert (memory[:, :5] == 0xABCD).all() and (memory[:, -3:] == 0xABCD).all()


def test_values_that_do_not_fit_are_refused():
    with pytest.raises(CompileError, match=r"bias.*\[-32769, 0\].*16-bit"):
        signed_words([-32769, 0], "bias")
    with pytest.raises(CompileError, match="32 signed bits"):
        wide_words([1 << 31], 2, "lut")
    ref = TensorRef(0, TensorKind.STREAM, 1, 1)
    memory = np.zeros((1, 1), dtype=np.uint16)
    with pytest.raises(CompileError, match="outside the 1-word memory"):
        read_tensor(memory, TensorRef(0, TensorKind.STREAM, 1, 2), 2)
    with pytest.raises(CompileError, match="does not fit"):
        write_tensor(memory, ref, torch.tensor([[[40000]]]), 2)
