# amaranth: UnusedElaboratable=no
"""GlobalAvgPool: the per-channel mean over an image's tokens equals intref.global_avgpool
word for word, one output token per image, at one input word per cycle."""
import numpy as np
import pytest
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.global_avgpool import GlobalAvgPool
from binaryvit.sim.runner import run_stream_vectors
from pooling_harness import lint_problems, random_tokens, run_amaranth


def make(tokens=16, channels=4, lanes=2, in_width=8, out_width=8, mul=1, shift=4):
    return GlobalAvgPool(tokens=tokens, channels=channels, lanes=lanes, in_width=in_width,
                         out_width=out_width, mul=mul, shift=shift)


def test_hand_derived_means_with_ties():
    # 4 tokens, ÷4 as shift 2. Channel sums: 0+1+0+1 = 2 → 0.5 → 1 (half up);
    # −2 → −0.5 → 0; 4+4+4+3 = 15 → 3.75 → 4; −15 → −3.75 → −4.
    dut = make(tokens=4, channels=4, lanes=2, mul=1, shift=2)
    x = torch.tensor([[[0, 0, 4, -4], [1, -1, 4, -4], [0, 0, 4, -4], [1, -1, 3, -3]]])
    run = run_amaranth(dut, x)
    assert dut.decode_output(run.outputs["o"]).tolist() == [[[1, 0, 4, -4]]]


@pytest.mark.parametrize("tokens, channels, lanes", [
    (1, 3, 3), (4, 4, 1), (16, 4, 4), (49, 8, 2), (6, 2, 1),
])
def test_random_images_back_to_back_under_backpressure(tokens, channels, lanes):
    dut = make(tokens=tokens, channels=channels, lanes=lanes, mul=167, shift=13, out_width=7)
    x = random_tokens(4, tokens, channels, dut.in_width, seed=tokens)
    run_amaranth(dut, x, seed=channels)


def test_negative_and_numpy_integer_scale():
    # A negative mul (allowed by intref) flips signs before rounding: sums 3 and −3 over
    # 2 tokens times −1/2 give −1.5 → −1 and 1.5 → 2 (half up).
    dut = make(tokens=2, channels=2, lanes=2, mul=np.int64(-1), shift=np.int64(1))
    run = run_amaranth(dut, torch.tensor([[[1, -1], [2, -2]]]))
    assert dut.decode_output(run.outputs["o"]).tolist() == [[[-1, 2]]]


@pytest.mark.parametrize("value", [127, -128])
def test_all_max_and_all_min_saturate(value):
    dut = make(tokens=8, mul=1, shift=2, out_width=8)  # 8·v/4 = 2v: outside 8 bits
    run = run_amaranth(dut, torch.full((2, 8, 4), value), seed=2)
    assert dut.decode_output(run.outputs["o"]).unique().tolist() == [value]


def test_one_input_word_per_cycle():
    dut = make(tokens=16, channels=4, lanes=2)
    x = random_tokens(3, 16, 4, 8, seed=1)
    run = run_amaranth(dut, x, bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == 3 * dut.input_words_per_image + dut.latency


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(tokens=0), ConfigError, r"tokens: expected an integer.* 1, got 0"),
    (dict(channels=4, lanes=3), FoldingError, r"lanes: must divide channels = 4; valid values are \[1, 2, 4\]"),
    (dict(out_width=1), ConfigError, r"out_width: expected an integer in \[2, 63\]"),
    (dict(shift=99), ConfigError, r"shift"),
    (dict(mul="3"), ConfigError, r"mul: expected an integer"),
])
def test_bad_parameters_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


@pytest.mark.parametrize("lanes", [2, 4])
def test_verilog_lint_clean(lanes):
    assert lint_problems(make(lanes=lanes), "global_avgpool") == []


def test_generated_verilog_matches_model():
    dut = make(tokens=16, channels=4, lanes=2, mul=3, shift=6, out_width=6)
    x = torch.cat([random_tokens(4, 16, 4, 8, seed=5), torch.full((1, 16, 4), 127),
                   torch.full((1, 16, 4), -128)])
    result = run_stream_vectors(dut, "global_avgpool", {"i": dut.encode_input(x)},
                                {"o": dut.encode_output(dut.model(x))}, simulator="verilator",
                                bubble_prob=0.3, stall_prob=0.3, seed=17)
    assert len(result.outputs["o"]) == 6 * dut.output_words_per_image
