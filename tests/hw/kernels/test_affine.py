"""AffineUnit: y = saturate(round_shift(mul·x + bias, shift), out_width), word for word."""
import pytest
import torch
from pointwise_test_support import lint_warnings, random_ints, run_amaranth, signed_extremes

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.affine import AffineUnit
from binaryvit.sim.runner import run_stream_vectors

# Kernels built only to check their constructor or model are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def make_random(channels, lanes, seed, *, in_width=8, shift=4, out_width=6):
    g = torch.Generator().manual_seed(seed)
    mul = random_ints(g, -60, 60, (channels,))
    bias = random_ints(g, -800, 800, (channels,))
    dut = AffineUnit(channels=channels, lanes=lanes, in_width=in_width, mul=mul, bias=bias,
                     shift=shift, out_width=out_width)
    low, high = signed_extremes(in_width)
    x = random_ints(g, low, high, (2, 5, channels))
    return dut, x


def test_hand_derived_ties_and_saturation():
    # shift 1 halves; ties round towards +inf; out_width 4 clamps to [-8, 7].
    dut = AffineUnit(channels=4, lanes=2, in_width=8, mul=[1, 1, -3, 2], bias=[0, 0, 0, -1],
                     shift=1, out_width=4)
    x = torch.tensor([[5, -5, 7, 100],      # 2.5→3, -2.5→-2, -10.5→-10→-8, 99.5→100→7
                      [0, -1, -1, -100]])   # 0, -0.5→0, 1.5→2, -100.5→-100→-8
    expected = torch.tensor([[[3, -2, -8, 7], [0, 0, 2, -8]]])
    assert torch.equal(dut.model(x), expected[0])
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, 4, seed=1)
    assert torch.equal(dut.decode_output(run.outputs["o"]), expected)


@pytest.mark.parametrize("channels,lanes", [(8, 1), (8, 8), (12, 4)])
@pytest.mark.parametrize("shift", [0, 5])
def test_random_under_bubbles_and_backpressure(channels, lanes, shift):
    dut, x = make_random(channels, lanes, seed=channels * 10 + lanes + shift, shift=shift)
    expected = dut.encode_output(dut.model(x))
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=lanes + shift)
    assert run.outputs["o"] == expected


def test_stimulus_saturates_at_both_ends():
    dut, x = make_random(12, 4, seed=7)
    y = dut.model(x)
    assert int(y.min()) == -32 and int(y.max()) == 31  # the random test reaches both clamps
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(dut.encode_input(x)), seed=2)
    assert torch.equal(dut.decode_output(run.outputs["o"]), y)


def test_extreme_constants_do_not_wrap():
    # Largest |mul·x + bias| for the declared widths, with an output wide enough to show it.
    in_low, in_high = signed_extremes(10)
    mul_low, mul_high = signed_extremes(9)
    bias_low, bias_high = signed_extremes(16)
    dut = AffineUnit(channels=4, lanes=2, in_width=10, mul=[mul_low, mul_high, mul_low, mul_high],
                     bias=[bias_low, bias_high, bias_high, bias_low], shift=3, out_width=20,
                     mul_width=9, bias_width=16)
    x = torch.tensor([[in_low, in_low, in_high, in_high], [in_high, in_high, in_low, in_low],
                      [0, 0, 0, 0], [-1, 1, -1, 1]])
    # (-256·-512 - 32768 + 4) >> 3 = 12288, checked by hand for the first element.
    assert int(dut.model(x)[0, 0]) == 12288
    expected = dut.encode_output(dut.model(x))
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=3)
    assert run.outputs["o"] == expected


def test_one_word_per_cycle_and_latency():
    dut, x = make_random(8, 2, seed=4)
    words = dut.encode_input(x)
    run = run_amaranth(dut, {"i": words}, len(words), seed=0, bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == len(words) + dut.latency


def test_words_round_trip():
    dut, x = make_random(12, 4, seed=5)
    y = dut.model(x)
    assert torch.equal(dut.decode_output(dut.encode_output(y)), y)


@pytest.mark.parametrize("kwargs,exc,fragment", [
    ({"lanes": 3}, FoldingError, "lanes: must divide channels = 8; valid values are [1, 2, 4, 8]"),
    ({"in_width": 1}, ConfigError, "in_width: expected an integer in [2, 63]"),
    ({"out_width": 64}, ConfigError, "out_width: expected an integer in [2, 63]"),
    ({"shift": -1}, ConfigError, "shift: expected an integer in [0, 62]"),
    ({"mul_width": 2}, ConfigError, "mul: values must fit signed(2), i.e. [-2, 1]"),
    ({"bias": [1, 2, 3]}, ConfigError, "bias: expected shape (8,)"),
    ({"mul": [0.5] * 8}, ConfigError, "mul: expected integer constants"),
    ({"channels": 0}, ConfigError, "channels: expected an integer ≥ 1, got 0"),
])
def test_bad_parameters_name_the_parameter(kwargs, exc, fragment):
    params = dict(channels=8, lanes=2, in_width=8, mul=list(range(-4, 4)), bias=[0] * 8,
                  shift=2, out_width=8)
    params.update(kwargs)
    with pytest.raises(exc) as info:
        AffineUnit(**params)
    assert fragment in str(info.value)


@pytest.mark.parametrize("lanes", [1, 4, 8])
def test_lint_clean(lanes):
    dut, _ = make_random(8, lanes, seed=6)
    assert lint_warnings(dut, "affine_unit") == []


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_cocotb_matches_model(simulator):
    dut, x = make_random(8, 4, seed=8)
    g = torch.Generator().manual_seed(9)
    corners = torch.tensor([[-128] * 8, [127] * 8, [0] * 8, [-1] * 8])
    x = torch.cat([x.reshape(-1, 8), corners, random_ints(g, -128, 127, (20, 8))]).reshape(2, -1, 8)
    expected = dut.encode_output(dut.model(x))
    run_stream_vectors(dut, "affine_unit", {"i": dut.encode_input(x)}, {"o": expected},
                       simulator=simulator, seed=11, bubble_prob=0.3, stall_prob=0.4)
