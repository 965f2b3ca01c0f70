# amaranth: UnusedElaboratable=no
"""ChannelGroupAvgPool: averages of adjacent channel groups equal
intref.channel_group_avgpool word for word, whether a word holds several groups or a group
spans several words."""
import pytest
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.channel_group_avgpool import ChannelGroupAvgPool
from binaryvit.sim.runner import run_stream_vectors
from pooling_harness import lint_problems, random_tokens, run_amaranth


def make(channels=16, group=4, lanes=8, in_width=8, out_width=8, mul=1, shift=2):
    return ChannelGroupAvgPool(channels=channels, group=group, lanes=lanes, in_width=in_width,
                               out_width=out_width, mul=mul, shift=shift)


@pytest.mark.parametrize("lanes", [8, 4, 2, 1])
def test_hand_derived_group_means(lanes):
    # group 4, ÷4 as shift 2. Groups: [1, 1, 0, 0] → 0.5 → 1; [−1, −1, 0, 0] → −0.5 → 0;
    # [5, 6, 7, 8] → 6.5 → 7; [−5, −6, −7, −8] → −6.5 → −6 (ties go up).
    dut = make(channels=16, group=4, lanes=lanes)
    x = torch.tensor([[[1, 1, 0, 0, -1, -1, 0, 0, 5, 6, 7, 8, -5, -6, -7, -8]]])
    run = run_amaranth(dut, x)
    assert dut.out_lanes == max(lanes // 4, 1)
    assert dut.decode_output(run.outputs["o"]).tolist() == [[[1, 0, 7, -6]]]


@pytest.mark.parametrize("channels, group, lanes", [
    (16, 4, 16),   # lanes = C: one word per token in and out
    (16, 4, 8),    # two groups per word
    (32, 8, 4),    # a group spans two words
    (8, 8, 1),     # lanes = 1, one channel out per token
    (12, 3, 3),    # odd group
    (12, 2, 6),
])
def test_random_tokens_under_backpressure(channels, group, lanes):
    dut = make(channels=channels, group=group, lanes=lanes, mul=11, shift=5, out_width=6)
    x = random_tokens(3, 5, channels, dut.in_width, seed=channels + group)
    run_amaranth(dut, x, seed=lanes)


@pytest.mark.parametrize("value", [127, -128])
def test_all_max_and_all_min_saturate(value):
    dut = make(mul=1, shift=1)  # 4·v/2 = 2v: outside 8 bits
    run = run_amaranth(dut, torch.full((2, 3, 16), value), seed=4)
    assert dut.decode_output(run.outputs["o"]).unique().tolist() == [value]


@pytest.mark.parametrize("lanes", [8, 2])
def test_one_input_word_per_cycle(lanes):
    dut = make(lanes=lanes)
    x = random_tokens(2, 8, 16, 8, seed=3)
    run = run_amaranth(dut, x, bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == 2 * 8 * 16 // lanes + dut.latency


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(channels=16, group=3), ConfigError, r"group: must divide channels = 16; valid values are \[2, 4, 8, 16\]"),
    (dict(group=1), ConfigError, r"group: expected an integer.* 2, got 1"),
    (dict(channels=24, group=4, lanes=6), ConfigError, r"lanes: must be a multiple or a divisor of group = 4"),
    (dict(channels=16, group=4, lanes=3), FoldingError, r"lanes: must divide channels = 16"),
    (dict(in_width=0), ConfigError, r"in_width"),
])
def test_bad_parameters_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


@pytest.mark.parametrize("lanes", [8, 2])
def test_verilog_lint_clean(lanes):
    assert lint_problems(make(lanes=lanes), "channel_group_avgpool") == []


def test_generated_verilog_matches_model():
    dut = make(channels=16, group=4, lanes=8, mul=3, shift=4, out_width=6)
    x = torch.cat([random_tokens(3, 6, 16, 8, seed=6), torch.full((1, 6, 16), 127),
                   torch.full((1, 6, 16), -128)])
    result = run_stream_vectors(dut, "channel_group_avgpool", {"i": dut.encode_input(x)},
                                {"o": dut.encode_output(dut.model(x))}, simulator="verilator",
                                bubble_prob=0.3, stall_prob=0.3, seed=19)
    assert len(result.outputs["o"]) == 5 * 6 * 2
