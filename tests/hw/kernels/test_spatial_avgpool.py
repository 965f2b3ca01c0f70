# amaranth: UnusedElaboratable=no
"""SpatialAvgPool: r×r / stride r pooling equals intref.avgpool2d word for word, in Amaranth's
simulator and in Verilator/Icarus, under bubbles and back-pressure, at full throughput."""
import pytest
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.spatial_avgpool import SpatialAvgPool
from binaryvit.sim.runner import run_stream_vectors
from pooling_harness import lint_problems, random_tokens, run_amaranth


def make(height=4, width=4, channels=4, lanes=2, factor=2, in_width=8, out_width=8, mul=1, shift=2):
    return SpatialAvgPool(height=height, width=width, channels=channels, lanes=lanes, factor=factor,
                          in_width=in_width, out_width=out_width, mul=mul, shift=shift)


def stimulus(dut, images, seed):
    return random_tokens(images, dut.height * dut.width, dut.channels, dut.in_width, seed)


def test_hand_derived_2x2_rounding_ties_and_saturation():
    # One channel, 2×4 grid, ÷4 as mul=1, shift=2; windows [[1,1],[0,0]] (sum 2 → 0.5 rounds
    # up to 1), [[-1,-1],[0,0]] (−0.5 rounds up to 0), [[7,7],[7,6]] (27/4 = 6.75 → 7,
    # which saturates to 3 in a 3-bit output).
    dut = make(height=2, width=4, channels=1, lanes=1, out_width=3)
    grid = torch.tensor([[1, 1, -1, -1], [0, 0, 0, 0]]).reshape(1, 8, 1)
    assert dut.decode_output(dut.encode_output(dut.model(grid))).flatten().tolist() == [1, 0]
    run = run_amaranth(dut, grid)
    assert dut.decode_output(run.outputs["o"]).flatten().tolist() == [1, 0]
    big = torch.tensor([[7, 7, 0, 0], [7, 6, 0, 0]]).reshape(1, 8, 1)
    run = run_amaranth(dut, big)
    assert dut.decode_output(run.outputs["o"]).flatten().tolist() == [3, 0]


@pytest.mark.parametrize("height, width, channels, lanes, factor", [
    (2, 2, 3, 3, 2),    # one window, lanes = C
    (4, 4, 4, 1, 2),    # lanes = 1
    (8, 8, 4, 2, 4),    # SR pooling r=4
    (8, 8, 2, 2, 8),    # r = grid: a single token out
    (4, 6, 2, 1, 2),    # non-square grid
    (6, 3, 2, 2, 3),    # odd factor, non-square
])
def test_random_images_back_to_back_under_backpressure(height, width, channels, lanes, factor):
    dut = make(height=height, width=width, channels=channels, lanes=lanes, factor=factor,
               mul=5, shift=6, out_width=6)
    run_amaranth(dut, stimulus(dut, images=3, seed=factor), seed=height * width)


@pytest.mark.parametrize("value", [127, -128])
def test_all_max_and_all_min_saturate(value):
    dut = make(mul=3, shift=2, out_width=8)  # 3/4 of a window sum of 4·v: |3v| overflows 8 bits
    x = torch.full((2, 16, 4), value)
    run = run_amaranth(dut, x, seed=1)
    assert dut.decode_output(run.outputs["o"]).unique().tolist() == [value]


def test_full_throughput_one_word_per_cycle():
    dut = make(height=8, width=8, channels=4, lanes=2, factor=2)
    x = stimulus(dut, images=2, seed=3)
    run = run_amaranth(dut, x, bubble_prob=0.0, stall_prob=0.0)
    # first input to last output, both included: one cycle per word plus the latency
    assert run.cycles == 2 * dut.input_words_per_image + dut.latency


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(height=6, factor=4), ConfigError, r"factor: must divide the grid height = 6; valid values are \[2, 3, 6\]"),
    (dict(width=5, factor=2), ConfigError, r"factor: must divide the grid width = 5"),
    (dict(factor=1), ConfigError, r"factor: expected an integer.* 2, got 1"),
    (dict(channels=6, lanes=4), FoldingError, r"lanes: must divide channels = 6"),
    (dict(in_width=1), ConfigError, r"in_width: expected an integer in \[2, 63\]"),
    (dict(out_width=64), ConfigError, r"out_width"),
    (dict(shift=-1), ConfigError, r"shift"),
    (dict(mul=1.5), ConfigError, r"mul: expected an integer"),
])
def test_bad_parameters_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


@pytest.mark.parametrize("lanes", [2, 4])  # lanes = C: 1-word tokens, 1-bit counters
def test_verilog_lint_clean(lanes):
    assert lint_problems(make(height=2, width=4, lanes=lanes), "spatial_avgpool") == []


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_generated_verilog_matches_model(simulator):
    dut = make(height=4, width=4, channels=4, lanes=2, factor=2, mul=11, shift=5, out_width=6)
    x = torch.cat([stimulus(dut, 3, seed=7), torch.full((1, 16, 4), 127), torch.full((1, 16, 4), -128)])
    result = run_stream_vectors(dut, "spatial_avgpool", {"i": dut.encode_input(x)},
                                {"o": dut.encode_output(dut.model(x))}, simulator=simulator,
                                bubble_prob=0.3, stall_prob=0.3, seed=11)
    assert len(result.outputs["o"]) == 5 * dut.output_words_per_image
