"""Stream-word packing agrees with the harness' independent payload conversion."""
import pytest
import torch

from binaryvit.errors import DataError
from binaryvit.hw.streams.fixed_point_stream import (
    binary_layout,
    decode_binary,
    decode_fixed_point,
    encode_binary,
    encode_fixed_point,
    fixed_point_layout,
)
from binaryvit.sim.amaranth_streams import payload_to_int


def test_hand_packed_fixed_point_word():
    # Two 4-bit lanes: 3 → 0x3, -2 → 0xE; last above the 8 data bits.
    assert encode_fixed_point(torch.tensor([[3, -2]]), 4, 2) == [0x1E3]
    assert encode_fixed_point(torch.tensor([[3, -2, 0, 0]]), 4, 2) == [0x0E3, 0x100]


@pytest.mark.parametrize("width,lanes,is_signed", [(5, 1, True), (7, 3, True), (4, 6, False)])
def test_fixed_point_matches_payload_to_int(width, lanes, is_signed):
    g = torch.Generator().manual_seed(width * lanes)
    low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed else (0, (1 << width) - 1)
    x = torch.randint(low, high + 1, (2, 3, 6), generator=g)
    layout = fixed_point_layout(width, lanes, is_signed=is_signed)
    words = encode_fixed_point(x, width, lanes, is_signed=is_signed)
    rows = x.reshape(-1, lanes).tolist()
    per_image = 3 * 6 // lanes
    reference = [payload_to_int(layout, {"data": row, "last": int(n % per_image == per_image - 1)})
                 for n, row in enumerate(rows)]
    assert words == reference
    assert torch.equal(decode_fixed_point(words, width, lanes, 6, is_signed=is_signed), x)


def test_binary_matches_payload_to_int():
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 2, (2, 4, 8), generator=g).bool()
    words = encode_binary(bits, 4)
    rows = bits.reshape(-1, 4).tolist()
    reference = [payload_to_int(binary_layout(4), {"data": sum(int(b) << j for j, b in enumerate(row)),
                                                   "last": int(n % 8 == 7)})
                 for n, row in enumerate(rows)]
    assert words == reference
    assert torch.equal(decode_binary(words, 4, 8), bits)


def test_bad_words_and_values_are_refused():
    with pytest.raises(DataError, match=r"x: values must fit signed\(4\), i.e. \[-8, 7\]"):
        encode_fixed_point(torch.tensor([[8, 0]]), 4, 2)
    with pytest.raises(DataError, match="channels do not fill words of 4 lanes"):
        encode_fixed_point(torch.tensor([[1, 0]]), 4, 4)
    with pytest.raises(DataError, match="final word does not carry last"):
        decode_fixed_point([0x0E3], 4, 2, 2)
    with pytest.raises(DataError, match="do not split the stream into equal images"):
        decode_fixed_point([0x1E3, 0x0E3, 0x1E3], 4, 2, 2)
