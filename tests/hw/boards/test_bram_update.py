"""Weights swapped in a built bitstream without place and route (icebram / ecpbram).

The design is the real board design: the UART wrapper around an XnorPopcountMVU whose two
per-PE weight ROMs (8 bits × 2048 words, pseudo-random) Yosys maps to block RAM. The check
reads the *packed* bitstream back (iceunpack / ecpunpack) and searches its block RAMs, so
it sees what the FPGA would load: after the swap the new images are there and the old
ones are gone.
"""
import pytest
import torch

from binaryvit.errors import ConfigError, DataError
from binaryvit.hw.boards.board_build import build_board
from binaryvit.hw.boards.board_wrapper import UARTBoardWrapper
from binaryvit.hw.boards.bram_update import RomSwap, bitstream_holds, swap_rom_contents
from binaryvit.hw.boards.definitions import BoardTop, get_board
from binaryvit.hw.boards.uart import baud_divisor
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.quantize.rom_image import RomImage
from binaryvit.quantize.weight_packing import pack_weight_rom, split_per_pe

# per-PE ROM: (N/PE)·(K/SIMD) = 2048 words of 8 bits: block RAM on both families (Yosys
# puts ECP5 ROMs of a few hundred words in LUT RAM, and ecpbram takes multiples of 512 words)
K, N, PE, SIMD = 512, 64, 2, 8


def weights(seed):
    return torch.randint(0, 2, (N, K), generator=torch.Generator().manual_seed(seed)).bool()


def per_pe_images(w):
    return split_per_pe(pack_weight_rom(w, PE, SIMD))


def build(board_name, folder):
    board = get_board(board_name)
    mvu = XnorPopcountMVU(K, N, PE, SIMD, weights(1))
    top = BoardTop(UARTBoardWrapper(mvu, pixels=K // 8, num_logits=N,
                                    divisor=baud_divisor(board.clock_hz, 115200)))
    result = build_board(top, board, folder)
    assert result.ok
    return board, folder / board.bitstream


def check_swap(board, bitstream, folder):
    old, new = per_pe_images(weights(1)), per_pe_images(weights(2))
    # each check unpacks the bitstream (about a second): check PE 0 before, both PEs after
    assert bitstream_holds(bitstream, board, old[0])
    assert not bitstream_holds(bitstream, board, new[0])
    before = bitstream.read_bytes()
    swap_rom_contents(folder, board, [RomSwap(f"mvu.pe{p}", old[p], new[p]) for p in range(PE)])
    assert bitstream.read_bytes() != before
    assert all(bitstream_holds(bitstream, board, image) for image in new)
    assert not bitstream_holds(bitstream, board, old[1])
    # and back: swapping the new images for the old restores the original bitstream
    swap_rom_contents(folder, board, [RomSwap(f"mvu.pe{p}", new[p], old[p]) for p in range(PE)])
    assert bitstream.read_bytes() == before


@pytest.mark.board
def test_icebram_swaps_the_weight_roms_of_an_ice40_bitstream(tmp_path):
    board, bitstream = build("icebreaker", tmp_path / "ice")
    check_swap(board, bitstream, tmp_path / "ice")
    # contents that were never built are refused by name, and nothing is written
    depth = (N // PE) * (K // SIMD)
    stranger = RomImage(width=SIMD, depth=depth, words=[(7 * a + 3) % 256 for a in range(depth)])
    before = bitstream.read_bytes()
    with pytest.raises(DataError, match="ROM layer9.pe0 .*not found in any block RAM"):
        swap_rom_contents(tmp_path / "ice", board,
                          [RomSwap("layer9.pe0", stranger, per_pe_images(weights(2))[0])])
    assert bitstream.read_bytes() == before


def test_a_swap_must_keep_the_rom_shape():
    a = RomImage(width=8, depth=256, words=[0] * 256)
    b = RomImage(width=8, depth=128, words=[0] * 128)
    with pytest.raises(ConfigError, match="needs a new build"):
        RomSwap("x", a, b)


@pytest.mark.board
@pytest.mark.slow
def test_ecpbram_swaps_the_weight_roms_of_an_ecp5_bitstream(tmp_path):
    board, bitstream = build("ulx3s", tmp_path / "ecp5")
    check_swap(board, bitstream, tmp_path / "ecp5")
