# amaranth: UnusedElaboratable=no
"""StripAvgPool: 1×k / k×1 pooling (stride 1, zero padding, divisor k) equals
intref.avgpool2d word for word, borders included, under bubbles and back-pressure."""
import pytest
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.strip_avgpool import StripAvgPool
from binaryvit.sim.runner import run_stream_vectors
from pooling_harness import lint_problems, random_tokens, run_amaranth


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
        x = line.reshape(1, 4, 1)
    else:
        dut = make(height=4, width=1, channels=1, kernel_h=3, kernel_w=1)
        x = line.reshape(1, 4, 1)
    run = run_amaranth(dut, x)
    assert dut.decode_output(run.outputs["o"]).flatten().tolist() == [3, 6, 9, 7]


def test_hand_derived_divide_by_three_rounding():
    # ÷3 as 11/32 (the quantizer's kind of constant): S = 3 → 33/32 → 1; S = −3 → −33/32
    # → −1; S = 1 → 11/32 → 0 (0.34 rounds down); S = 2 → 22/32 = 0.6875 → 1;
    # S = −2 → −0.6875 → −1. Rows: [1, 1, 1] gives sums [2, 3, 2].
    dut = make(height=1, width=3, channels=2, lanes=2, kernel_w=3, mul=11, shift=5)
    x = torch.tensor([[[1, -1], [1, -1], [1, -1]]])
    run = run_amaranth(dut, x)
    assert dut.decode_output(run.outputs["o"]).tolist() == [[[1, -1], [1, -1], [1, -1]]]


@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (4, 4), (8, 8), (3, 6), (6, 2)])
@pytest.mark.parametrize("kernel_h, kernel_w", [(1, 3), (3, 1), (1, 5), (5, 1)])
def test_grids_and_borders_match_model(height, width, kernel_h, kernel_w):
    dut = make(height=height, width=width, channels=2, lanes=1, kernel_h=kernel_h,
               kernel_w=kernel_w, mul=13, shift=6, out_width=7)
    run_amaranth(dut, stimulus(dut, images=2, seed=height * 10 + width), seed=kernel_h + width)


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_lanes_from_one_to_all_channels(lanes):
    dut = make(height=4, width=3, channels=4, lanes=lanes, kernel_h=5, kernel_w=1, mul=13, shift=6)
    run_amaranth(dut, stimulus(dut, images=3, seed=lanes), seed=lanes)


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


@pytest.mark.parametrize("kernel_h, kernel_w", [(1, 3), (5, 1)])
def test_cycles_per_image_without_stalls(kernel_h, kernel_w):
    dut = make(height=8, width=8, channels=4, lanes=2, kernel_h=kernel_h, kernel_w=kernel_w)
    run = run_amaranth(dut, stimulus(dut, images=2, seed=5), bubble_prob=0.0, stall_prob=0.0)
    pad = (max(kernel_h, kernel_w) - 1) // 2
    words_per_row = 8 * 2
    flush = 8 * pad * 2 if kernel_h == 1 else pad * words_per_row
    assert dut.cycles_per_image == 8 * words_per_row + flush
    assert run.cycles == 2 * dut.cycles_per_image + dut.latency


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


@pytest.mark.parametrize("kernel_h, kernel_w", [(1, 5), (5, 1)])
def test_verilog_lint_clean(kernel_h, kernel_w):
    assert lint_problems(make(kernel_h=kernel_h, kernel_w=kernel_w, lanes=2), "strip_avgpool") == []


# k×1 (the line buffer) on Verilator, 1×k on Icarus: one compiled build for the area's
# budget; the stimulus varies, not the hardware.
@pytest.mark.parametrize("kernel_h, kernel_w, simulator", [(5, 1, "verilator"), (1, 5, "icarus")])
def test_generated_verilog_matches_model(kernel_h, kernel_w, simulator):
    dut = make(height=4, width=6, channels=4, lanes=2, kernel_h=kernel_h, kernel_w=kernel_w,
               mul=13, shift=6, out_width=7)
    x = torch.cat([stimulus(dut, 3, seed=9), torch.full((1, 24, 4), 127),
                   torch.full((1, 24, 4), -128)])
    name = f"strip_avgpool_{kernel_h}x{kernel_w}"
    result = run_stream_vectors(dut, name, {"i": dut.encode_input(x)},
                                {"o": dut.encode_output(dut.model(x))}, simulator=simulator,
                                bubble_prob=0.3, stall_prob=0.3, seed=13)
    assert len(result.outputs["o"]) == 5 * dut.words_per_image
