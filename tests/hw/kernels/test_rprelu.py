"""RPReLUUnit: t = x + pre_bias; y = saturate(round_shift(m·t + post_bias, shift)), m by sign of t."""
import pytest
import torch
from pointwise_test_support import lint_warnings, random_ints, run_amaranth, signed_extremes

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.rprelu import RPReLUUnit
from binaryvit.sim.runner import run_stream_vectors

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def make_random(channels, lanes, seed, *, shift=4, out_width=7):
    g = torch.Generator().manual_seed(seed)
    dut = RPReLUUnit(channels=channels, lanes=lanes, in_width=8,
                     pre_bias=random_ints(g, -40, 40, (channels,)),
                     mul_pos=random_ints(g, -50, 50, (channels,)),
                     mul_neg=random_ints(g, -50, 50, (channels,)),
                     post_bias=random_ints(g, -600, 600, (channels,)), shift=shift,
                     out_width=out_width)
    x = random_ints(g, -128, 127, (2, 5, channels))
    return dut, x


def test_hand_derived_slopes_ties_and_saturation():
    # ch0: slope 4 above 0, 1 below, no biases, shift 2: x=3 → 12/4 = 3; x=-6 → -6/4 = -1.5 → -1.
    # ch1: pre_bias -2 moves the knee: x=2 → t=0 takes mul_pos (3) → 0; x=1 → t=-1 → -5·-1 = 5
    #      → (5 + 2) >> 2 = 1 (1.25 → 1).
    # ch2: post_bias 2 (= 0.5 after the shift): x=0 → (0 + 2 + 2) >> 2 = 1 (0.5 → 1, tie up).
    # ch3: steep slope saturates at out_width 5 → [-16, 15]: x=100 → 800/4 → 15; x=-100 → -16.
    dut = RPReLUUnit(channels=4, lanes=4, in_width=8, pre_bias=[0, -2, 0, 0],
                     mul_pos=[4, 3, 1, 8], mul_neg=[1, -5, 1, 8], post_bias=[0, 0, 2, 0],
                     shift=2, out_width=5)
    x = torch.tensor([[3, 2, 0, 100], [-6, 1, 0, -100]])
    expected = torch.tensor([[[3, 0, 1, 15], [-1, 1, 1, -16]]])
    assert torch.equal(dut.model(x), expected[0])
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, 2, seed=1)
    assert torch.equal(dut.decode_output(run.outputs["o"]), expected)


@pytest.mark.parametrize("channels,lanes", [(6, 1), (6, 6), (12, 3)])
@pytest.mark.parametrize("shift", [0, 6])
def test_random_under_bubbles_and_backpressure(channels, lanes, shift):
    dut, x = make_random(channels, lanes, seed=channels + lanes + shift, shift=shift)
    y = dut.model(x)
    expected = dut.encode_output(y)
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=shift + lanes)
    assert run.outputs["o"] == expected


def test_stimulus_reaches_both_clamps_and_both_slopes():
    dut, x = make_random(12, 3, seed=3)
    t = x + dut.pre_bias
    assert bool((t < 0).any()) and bool((t >= 0).any())
    y = dut.model(x)
    assert int(y.min()) == -64 and int(y.max()) == 63
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(dut.encode_input(x)), seed=5)
    assert torch.equal(dut.decode_output(run.outputs["o"]), y)


def test_extreme_constants_do_not_wrap():
    low, high = signed_extremes(12)
    dut = RPReLUUnit(channels=2, lanes=1, in_width=12, pre_bias=[low, high], mul_pos=[high, low],
                     mul_neg=[low, high], post_bias=[high, low], shift=1, out_width=30,
                     pre_bias_width=12, mul_width=12, post_bias_width=12)
    x = torch.tensor([[low, high], [high, low], [0, 0], [-1, 1]])
    # ch0 first token: t = -4096; m = mul_neg = -2048; (8388608 + 2047 + 1) >> 1 = 4195328.
    assert int(dut.model(x)[0, 0]) == 4195328
    expected = dut.encode_output(dut.model(x))
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=2)
    assert run.outputs["o"] == expected


def test_one_word_per_cycle_and_latency():
    dut, x = make_random(6, 2, seed=4)
    words = dut.encode_input(x)
    run = run_amaranth(dut, {"i": words}, len(words), seed=0, bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == len(words) + dut.latency


@pytest.mark.parametrize("kwargs,exc,fragment", [
    ({"lanes": 4}, FoldingError, "lanes: must divide channels = 6; valid values are [1, 2, 3, 6]"),
    ({"in_width": 0}, ConfigError, "in_width: expected an integer in [2, 63]"),
    ({"mul_width": 2}, ConfigError, "mul_pos: values must fit signed(2), i.e. [-2, 1]"),
    ({"post_bias": [[1] * 6]}, ConfigError, "post_bias: expected shape (6,)"),
    ({"pre_bias_width": 1}, ConfigError, "pre_bias_width: expected an integer in [2, 63]"),
    ({"shift": 63}, ConfigError, "shift: expected an integer in [0, 62]"),
])
def test_bad_parameters_name_the_parameter(kwargs, exc, fragment):
    params = dict(channels=6, lanes=2, in_width=8, pre_bias=[0] * 6, mul_pos=[3] * 6,
                  mul_neg=[1] * 6, post_bias=[0] * 6, shift=2, out_width=8)
    params.update(kwargs)
    with pytest.raises(exc) as info:
        RPReLUUnit(**params)
    assert fragment in str(info.value)


@pytest.mark.parametrize("lanes", [1, 3, 6])
def test_lint_clean(lanes):
    dut, _ = make_random(6, lanes, seed=6)
    assert lint_warnings(dut, "rprelu_unit") == []


def test_verilator_matches_model():
    dut, x = make_random(6, 3, seed=8)
    corners = torch.tensor([[-128] * 6, [127] * 6, [0] * 6, [-1] * 6])
    x = torch.cat([x.reshape(-1, 6), corners]).reshape(2, -1, 6)
    expected = dut.encode_output(dut.model(x))
    run_stream_vectors(dut, "rprelu_unit", {"i": dut.encode_input(x)}, {"o": expected},
                       simulator="verilator", seed=12, bubble_prob=0.3, stall_prob=0.4)
