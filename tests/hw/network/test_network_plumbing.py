"""The network generator's own stream plumbing: fork, FIFO, width converter, edge (FIFOs
around a converter), channel tile, patch unfold and argmax, each against an independent
expectation under random bubbles and back-pressure in Amaranth's simulator; the last three
also against their own ``model()`` and ``latency``."""
import random

import pytest
import torch

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.int_network import unfold_patches
from binaryvit.hw.kernels.argmax import ArgMax
from binaryvit.hw.kernels.channel_tile import ChannelTile
from binaryvit.hw.streams.fixed_point_stream import (decode_binary, decode_fixed_point, encode_binary,
                                             encode_fixed_point)
from binaryvit.hw.kernels.patch_unfold import PatchUnfold, patch_permutation
from binaryvit.hw.streams.stream_edge import StreamEdge
from binaryvit.hw.streams.stream_fifo import StreamFIFO
from binaryvit.hw.streams.stream_fork import StreamFork
from binaryvit.hw.streams.stream_width import StreamWidthConverter, element_layout
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import simulate_streams
from binaryvit.sim.lint import lint_verilog

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_fork_gives_every_consumer_every_word_at_its_own_pace():
    layout = element_layout("fixed", 8, 2)
    words = [random.Random(1).randrange(1 << 17) for _ in range(40)]
    run = simulate_streams(StreamFork(layout, 3), {"i": words}, {"o0": 40, "o1": 40, "o2": 40},
                           bubble_prob=0.3, stall_prob=0.5, seed=3)
    assert run.outputs == {"o0": words, "o1": words, "o2": words}


def test_fifo_keeps_order_and_fills_to_its_depth():
    layout = element_layout("binary", 1, 4)
    words = list(range(32))
    run = simulate_streams(StreamFIFO(layout, 5), {"i": words}, {"o": 32}, bubble_prob=0.2,
                           stall_prob=0.6, seed=2)
    assert run.outputs["o"] == words
    with pytest.raises(ConfigError, match="depth"):
        StreamFIFO(layout, 1)


@pytest.mark.parametrize("kind,width,channels,a,b", [
    ("fixed", 5, 12, 4, 2), ("fixed", 5, 12, 2, 6), ("fixed", 5, 12, 4, 6),
    ("binary", 1, 16, 8, 2), ("binary", 1, 16, 2, 16), ("pixel", 3, 4, 1, 4)])
def test_width_converter_repacks_elements_in_order(kind, width, channels, a, b):
    g = torch.Generator().manual_seed(a * 10 + b)
    if kind == "binary":
        x = torch.randint(0, 2, (2, 3, channels), generator=g).bool()
        words_in, decode = encode_binary(x, a), lambda w: decode_binary(w, b, channels)
        expected = encode_binary(x, b)
    else:
        signed = kind == "fixed"
        lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
        x = torch.randint(lo, hi, (2, 3, channels), generator=g)
        words_in = encode_fixed_point(x, width, a, is_signed=signed)
        expected = encode_fixed_point(x, width, b, is_signed=signed)
        decode = lambda w: decode_fixed_point(w, width, b, channels, is_signed=signed)  # noqa: E731
    dut = StreamWidthConverter(kind=kind, width=width, channels=channels, in_lanes=a, out_lanes=b)
    run = simulate_streams(dut, {"i": words_in}, {"o": len(expected)}, seed=a + b)
    assert run.outputs["o"] == expected  # last flags included: only the image's final word
    assert torch.equal(decode(run.outputs["o"]), x)


@pytest.mark.parametrize("a,b,before,after", [(4, 1, 3, 0), (1, 4, 0, 5), (4, 6, 3, 4),
                                               (2, 2, 0, 3)])
def test_edge_keeps_every_element_in_order(a, b, before, after):
    x = torch.randint(-16, 16, (3, 2, 12), generator=torch.Generator().manual_seed(a + b))
    dut = StreamEdge(kind="fixed", width=5, channels=12, in_lanes=a, out_lanes=b,
                     input_depth=before, output_depth=after)
    expected = encode_fixed_point(x, 5, b)
    run = simulate_streams(dut, {"i": encode_fixed_point(x, 5, a)}, {"o": len(expected)},
                           bubble_prob=0.4, stall_prob=0.6, seed=a * b)
    assert run.outputs["o"] == expected
    with pytest.raises(ConfigError, match="output_depth: expected 0 .no FIFO. or an integer ≥ 2"):
        StreamEdge(kind="fixed", width=5, channels=12, in_lanes=a, out_lanes=b, output_depth=1)


@pytest.mark.parametrize("lanes,copies", [(2, 3), (4, 2), (1, 4)])
def test_channel_tile_repeats_each_token(lanes, copies):
    x = torch.tensor([[[1, -2, 3, -4], [5, 6, -7, 7]], [[0, 0, 1, 1], [-8, 7, -8, 7]]])
    dut = ChannelTile(channels=4, lanes=lanes, width=4, copies=copies)
    expected = encode_fixed_point(x.repeat(1, 1, copies), 4, lanes)
    run = simulate_streams(dut, {"i": encode_fixed_point(x, 4, lanes)}, {"o": len(expected)},
                           seed=5)
    assert run.outputs["o"] == expected


def test_patch_permutation_by_hand():
    # 2×2 grid of 2-channel tokens, one 2×2 patch: channel-major, then row, then column.
    # token t channel c is input bit 2t + c.
    assert patch_permutation(2, 2, 2, 2) == [0, 2, 4, 6, 1, 3, 5, 7]


@pytest.mark.parametrize("in_simd,out_simd", [(2, 8), (4, 4), (1, 16)])
def test_patch_unfold_matches_unfold_patches(in_simd, out_simd):
    g = torch.Generator().manual_seed(in_simd)
    bits = torch.randint(0, 2, (3, 16, 4), generator=g).bool()  # 3 images, 4×4 grid, C = 4
    image = bits.reshape(3, 4, 4, 4).permute(0, 3, 1, 2)
    expected = encode_binary(unfold_patches(image, 2), out_simd)
    dut = PatchUnfold(height=4, width=4, channels=4, size=2, in_simd=in_simd, out_simd=out_simd)
    run = simulate_streams(dut, {"i": encode_binary(bits, in_simd)}, {"o": len(expected)},
                           seed=7)
    assert run.outputs["o"] == expected


def test_argmax_takes_the_first_maximum():
    logits = torch.tensor([[[3, -1, 7, 7, 0, 2]], [[-5, -5, -6, -9, -5, -7]],
                           [[-8, -8, -8, -8, -8, 9]]])
    dut = ArgMax(classes=6, lanes=2, width=5)
    run = simulate_streams(dut, {"i": encode_fixed_point(logits, 5, 2)}, {"o": 3}, seed=1)
    last = 1 << dut.index_bits
    assert run.outputs["o"] == [2 | last, 0 | last, 5 | last]


@pytest.mark.parametrize("make", [
    lambda: StreamFork(element_layout("fixed", 8, 2), 3),
    lambda: StreamFIFO(element_layout("binary", 1, 4), 6),
    lambda: StreamWidthConverter(kind="fixed", width=5, channels=12, in_lanes=4, out_lanes=6),
    lambda: StreamEdge(kind="fixed", width=5, channels=12, in_lanes=4, out_lanes=6,
                       input_depth=3, output_depth=4),
    lambda: ChannelTile(channels=12, lanes=4, width=6, copies=3),
    lambda: PatchUnfold(height=4, width=4, channels=4, size=2, in_simd=2, out_simd=8),
    lambda: ArgMax(classes=10, lanes=2, width=12)])
def test_plumbing_lints_clean(make):
    assert lint_verilog(to_verilog(make(), "plumbing"), "plumbing") == []


def _one_word_run(dut, words: list[int], count: int):
    """No bubbles, no back-pressure: cycles from the first input transfer to the last
    output transfer, both included."""
    return simulate_streams(dut, {"i": words}, {"o": count}, bubble_prob=0, stall_prob=0,
                            seed=0)


def test_channel_tile_latency_and_model():
    x = torch.tensor([[[3, -4]], [[-8, 7]]])
    dut = ChannelTile(channels=2, lanes=2, width=4, copies=3)
    assert dut.model(x).tolist() == [[[3, -4, 3, -4, 3, -4]], [[-8, 7, -8, 7, -8, 7]]]
    run = _one_word_run(dut, encode_fixed_point(x[:1], 4, 2), 3)
    # the pass-through copy leaves `latency` cycles after the input, the replays follow
    assert run.cycles == 1 + dut.latency + 2
    run = simulate_streams(dut, {"i": encode_fixed_point(x, 4, 2)}, {"o": 6}, seed=4)
    assert torch.equal(decode_fixed_point(run.outputs["o"], 4, 2, 6), dut.model(x))


def test_patch_unfold_latency_and_model():
    bits = torch.randint(0, 2, (2, 16, 2), generator=torch.Generator().manual_seed(3)).bool()
    small = PatchUnfold(height=2, width=2, channels=2, size=2, in_simd=2, out_simd=8)
    run = _one_word_run(small, encode_binary(bits[:1, :4], 2), 1)
    assert run.cycles == 4 + small.latency   # four load words, then the permuted image
    assert small.cycles_per_image == 5       # four loads and the move to the shift register
    image = bits.reshape(2, 4, 4, 2).permute(0, 3, 1, 2)
    dut = PatchUnfold(height=4, width=4, channels=2, size=2, in_simd=2, out_simd=4)
    # patch (0, 0) of image 0: channel 0's four pixels, then channel 1's
    assert dut.model(bits)[0, 0].tolist() == [int(image[0, c, i, j]) for c in range(2)
                                             for i in range(2) for j in range(2)]
    run = simulate_streams(dut, {"i": encode_binary(bits, 2)}, {"o": 16}, seed=9)
    assert torch.equal(decode_binary(run.outputs["o"], 4, 8).to(torch.int64), dut.model(bits))


def test_argmax_latency_and_model():
    logits = torch.tensor([[3, -1, 7, 7, 0, 2], [-5, -5, -6, -9, -5, -7]])
    dut = ArgMax(classes=6, lanes=6, width=5)
    assert dut.model(logits).tolist() == [2, 0]
    run = _one_word_run(dut, encode_fixed_point(logits[:1, None], 5, 6), 1)
    assert run.cycles == 1 + dut.latency
