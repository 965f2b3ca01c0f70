# amaranth: UnusedElaboratable=no
"""StripAvgPool: 1×k / k×1 pooling (stride 1, zero padding, divisor k) equals
intref.avgpool2d word for word, borders included, image after image, under bubbles and
back-pressure; the border flush overlaps the next row's / image's input."""
import pytest
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.strip_avgpool import StripAvgPool
from binaryvit.sim.runner import run_stream_vectors
from pooling_harness import lint_problems, random_tokens, run_amaranth, run_with_gaps

STRIPS = [(1, 3), (3, 1), (1, 5), (5, 1)]


def make(height=4, width=4, channels=2, lanes=1, kernel_h=1, kernel_w=3, in_width=8, out_width=8,
         mul=1, shift=0):
    return StripAvgPool(height=height, width=width, channels=channels, lanes=lanes,
                        kernel_h=kernel_h, kernel_w=kernel_w, in_width=in_width,
                        out_width=out_width, mul=mul, shift=shift)


def stimulus(dut, images, seed):
    return random_tokens(images, dut.height * dut.width, dut.channels, dut.in_width, seed)


@pytest.mark.parametrize("kernel_h, kernel_w", [(1, 3), (3, 1)])
def test_hand_derived_window_sums_with_zero_padding(kernel_h, kernel_w):
    # mul=1, shift=0 leaves the raw window sum S. On the row / column [1, 2, 3, 4] a
    # 3-long window with zero padding gives [0+1+2, 1+2+3, 2+3+4, 3+4+0] = [3, 6, 9, 7].
    line = torch.tensor([1, 2, 3, 4])
    if kernel_w == 3:
        dut = make(height=1, width=4, channels=1, kernel_h=1, kernel_w=3)
    else:
        dut = make(height=4, width=1, channels=1, kernel_h=3, kernel_w=1)
    run = run_amaranth(dut, line.reshape(1, 4, 1))
    assert dut.decode_output(run.outputs["o"]).flatten().tolist() == [3, 6, 9, 7]


def test_hand_derived_strip_longer_than_the_grid():
    # A 5-long window on a 2-wide row covers the whole row: [1, 2] → [3, 3]; rows [4, 8]
    # and [−3, 7] of the next image follow back to back: [12, 12], [4, 4].
    dut = make(height=2, width=2, channels=1, kernel_h=1, kernel_w=5)
    x = torch.tensor([[[1], [2], [4], [8]], [[-3], [7], [0], [0]]])
    run = run_amaranth(dut, x)
    assert dut.decode_output(run.outputs["o"]).flatten().tolist() == [3, 3, 12, 12, 4, 4, 0, 0]


def test_hand_derived_divide_by_three_rounding():
    # ÷3 as 11/32 (the quantizer's kind of constant): S = 3 → 33/32 → 1; S = −3 → −33/32
    # → −1; S = 1 → 11/32 → 0 (0.34 rounds down); S = 2 → 22/32 = 0.6875 → 1;
    # S = −2 → −0.6875 → −1. Rows: [1, 1, 1] gives sums [2, 3, 2].
    dut = make(height=1, width=3, channels=2, lanes=2, kernel_w=3, mul=11, shift=5)
    x = torch.tensor([[[1, -1], [1, -1], [1, -1]]])
    run = run_amaranth(dut, x)
    assert dut.decode_output(run.outputs["o"]).tolist() == [[[1, -1], [1, -1], [1, -1]]]


# Grids smaller than the strip (1×1, 2×2, 4×4 against k = 5) and non-square ones.
@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (4, 4), (8, 8), (3, 6), (6, 2)])
@pytest.mark.parametrize("kernel_h, kernel_w", STRIPS)
def test_grids_and_borders_match_model(height, width, kernel_h, kernel_w):
    dut = make(height=height, width=width, channels=2, lanes=1, kernel_h=kernel_h,
               kernel_w=kernel_w, mul=13, shift=6, out_width=7)
    run_amaranth(dut, stimulus(dut, images=3, seed=height * 10 + width), seed=kernel_h + width)


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("kernel_h, kernel_w", [(5, 1), (1, 5)])
def test_lanes_from_one_to_all_channels(lanes, kernel_h, kernel_w):
    dut = make(height=4, width=3, channels=4, lanes=lanes, kernel_h=kernel_h, kernel_w=kernel_w,
               mul=13, shift=6)
    run_amaranth(dut, stimulus(dut, images=3, seed=lanes), seed=lanes)


# Several images in a row under heavy bubbles and stalls: the overlap of one image's last
# units with the next image's first ones, and the flush when the input pauses between
# images, are where the schedule can go wrong.
@pytest.mark.parametrize("bubble, stall", [(0.8, 0.0), (0.0, 0.8), (0.7, 0.7), (0.5, 0.2)])
@pytest.mark.parametrize("kernel_h, kernel_w, lanes", [(1, 5, 1), (5, 1, 2), (1, 3, 4), (3, 1, 1)])
def test_images_back_to_back_under_heavy_stalls(bubble, stall, kernel_h, kernel_w, lanes):
    dut = make(height=4, width=4, channels=4, lanes=lanes, kernel_h=kernel_h, kernel_w=kernel_w,
               mul=13, shift=6)
    run_amaranth(dut, stimulus(dut, images=6, seed=lanes + kernel_h), bubble_prob=bubble,
                 stall_prob=stall, seed=int(bubble * 10 + stall * 100))


# Every gap between images from none to longer than the flush: a flush may stop after any
# of its units, the rest of the tail then rides on the next image's first units.
@pytest.mark.parametrize("kernel_h, kernel_w, lanes", [(1, 5, 2), (5, 1, 2), (1, 5, 1)])
def test_every_pause_between_images(kernel_h, kernel_w, lanes):
    dut = make(height=3, width=4, channels=2, lanes=lanes, kernel_h=kernel_h, kernel_w=kernel_w,
               mul=13, shift=6)
    x = stimulus(dut, images=3, seed=4)
    for gap in range(dut.lag + 3):
        run_with_gaps(dut, x, gap)


@pytest.mark.parametrize("value", [127, -128])
@pytest.mark.parametrize("kernel_h, kernel_w", [(1, 5), (5, 1)])
def test_all_max_and_all_min_saturate(value, kernel_h, kernel_w):
    # Sum 5·v times 1/4 exceeds the 8-bit range wherever all five taps lie inside.
    dut = make(height=6, width=6, channels=2, lanes=2, kernel_h=kernel_h, kernel_w=kernel_w,
               mul=1, shift=2)
    x = torch.full((2, 36, 2), value)
    run = run_amaranth(dut, x, seed=3)
    centre = dut.decode_output(run.outputs["o"]).reshape(2, 6, 6, 2)[:, 2:4, 2:4]
    assert centre.unique().tolist() == [value]


@pytest.mark.parametrize("kernel_h, kernel_w, height, width, lag", [
    (1, 3, 8, 8, 1 * 2),    # q = 1 token of 2 words
    (5, 1, 8, 8, 2 * 16),   # q = 2 rows of 8 tokens × 2 words
    (1, 5, 4, 2, 1 * 2),    # q = min(2, W − 1) = 1
    (5, 1, 1, 8, 0),        # one row: q = 0, no delay line
])
def test_cycles_are_one_word_per_cycle_plus_a_one_time_lag(kernel_h, kernel_w, height, width, lag):
    dut = make(height=height, width=width, channels=4, lanes=2, kernel_h=kernel_h,
               kernel_w=kernel_w)
    run = run_amaranth(dut, stimulus(dut, images=3, seed=5), bubble_prob=0.0, stall_prob=0.0)
    assert dut.cycles_per_image == height * width * 2
    assert dut.lag == lag and dut.latency == lag + 2
    # The images stream at one word per cycle; the last image's final units are flushed
    # right after its last input word, and every output leaves 2 cycles after its step.
    assert run.cycles == 3 * dut.cycles_per_image + dut.latency


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_h=1, kernel_w=4), ConfigError, r"kernel_w: the strip length must be odd"),
    (dict(kernel_h=2, kernel_w=1), ConfigError, r"kernel_h: the strip length must be odd"),
    (dict(kernel_h=3, kernel_w=3), ConfigError, r"kernel_h, kernel_w: exactly one must be 1"),
    (dict(kernel_h=1, kernel_w=1), ConfigError, r"exactly one must be 1"),
    (dict(kernel_h=0, kernel_w=3), ConfigError, r"kernel_h: expected an integer.* 1, got 0"),
    (dict(channels=3, lanes=2), FoldingError, r"lanes: must divide channels = 3; valid values are \[1, 3\]"),
    (dict(height=0), ConfigError, r"height"),
    (dict(in_width=64), ConfigError, r"in_width: expected an integer in \[2, 63\]"),
    (dict(shift=63), ConfigError, r"shift"),
])
def test_bad_parameters_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_h=1, kernel_w=5, lanes=2),
    dict(kernel_h=5, kernel_w=1, lanes=2),
    dict(kernel_h=1, kernel_w=5, channels=64, lanes=1),     # tiny-digits stage 1: k > W
    dict(kernel_h=5, kernel_w=1, channels=64, lanes=1),
    dict(kernel_h=3, kernel_w=1, height=1, width=1),        # q = 0: no delay line
    dict(kernel_h=1, kernel_w=5, height=2, width=2, channels=2, lanes=2),  # q = 1, one word
])
def test_verilog_lint_clean(kwargs):
    assert lint_problems(make(**kwargs), "strip_avgpool") == []


# k×1 (the line buffer) on Verilator, 1×k on Icarus: one compiled build each; the stimulus
# varies, not the hardware. k = 5 on a 4-row grid, as in the network's stage 1.
@pytest.mark.parametrize("kernel_h, kernel_w, simulator", [(5, 1, "verilator"), (1, 5, "icarus")])
def test_generated_verilog_matches_model(kernel_h, kernel_w, simulator):
    dut = make(height=4, width=6, channels=4, lanes=2, kernel_h=kernel_h, kernel_w=kernel_w,
               mul=13, shift=6, out_width=7)
    x = torch.cat([stimulus(dut, 3, seed=9), torch.full((1, 24, 4), 127),
                   torch.full((1, 24, 4), -128), stimulus(dut, 2, seed=10)])
    name = f"strip_avgpool_{kernel_h}x{kernel_w}"
    runs = [(0.3, 0.3)] if simulator == "icarus" else [(0.3, 0.3), (0.7, 0.7), (0.0, 0.0)]
    for seed, (bubble, stall) in enumerate(runs):
        result = run_stream_vectors(dut, name, {"i": dut.encode_input(x)},
                                    {"o": dut.encode_output(dut.model(x))}, simulator=simulator,
                                    bubble_prob=bubble, stall_prob=stall, seed=13 + seed)
        assert len(result.outputs["o"]) == 7 * dut.words_per_image
    # With no stalls, the documented count holds in the generated Verilog too.
    if simulator == "verilator":
        assert result.cycles == 7 * dut.cycles_per_image + dut.latency
