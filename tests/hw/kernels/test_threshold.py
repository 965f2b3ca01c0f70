"""ThresholdUnit: bit c = x_c >= thresh_c (flip 0) or x_c <= thresh_c (flip 1), packed LSB-first."""
import pytest
import torch
from pointwise_test_support import lint_warnings, random_ints, run_amaranth

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.threshold import ThresholdUnit
from binaryvit.sim.runner import run_stream_vectors

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def make_random(channels, lanes, seed, in_width=6):
    g = torch.Generator().manual_seed(seed)
    thresh = random_ints(g, -20, 20, (channels,))
    flip = random_ints(g, 0, 1, (channels,))
    dut = ThresholdUnit(channels=channels, lanes=lanes, in_width=in_width, thresh=thresh, flip=flip)
    # Values near the thresholds, so equality (the tie both directions include) is frequent.
    x = (thresh + random_ints(g, -2, 2, (2, 6, channels))).clamp(-(1 << (in_width - 1)),
                                                                (1 << (in_width - 1)) - 1)
    return dut, x


def test_hand_derived_bits_and_packing():
    # thresholds 0 (>=), 0 (<=), -3 (>=), 5 (<=); sign(0) = +1 for the plain compare.
    dut = ThresholdUnit(channels=4, lanes=4, in_width=8, thresh=[0, 0, -3, 5], flip=[0, 1, 0, 1])
    x = torch.tensor([[0, 0, -3, 5],       # ties are 1 in both directions → 0b1111
                      [-1, 1, -4, 6],      # all on the wrong side → 0b0000
                      [7, -7, 0, -128]])   # 1, 1, 1, 1 → 0b1111
    bits = torch.tensor([[[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]]], dtype=torch.bool)
    assert torch.equal(dut.model(x), bits[0])
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, 3, seed=1)
    # Words: data in bits 0..3, last in bit 4 (set on the final word of the image).
    assert run.outputs["o"] == [0b01111, 0b00000, 0b11111]
    assert torch.equal(dut.decode_output(run.outputs["o"]), bits)


@pytest.mark.parametrize("channels,lanes", [(8, 1), (8, 8), (12, 4)])
def test_random_under_bubbles_and_backpressure(channels, lanes):
    dut, x = make_random(channels, lanes, seed=channels + lanes)
    bits = dut.model(x)
    assert bool(bits.any()) and bool((~bits).any())
    assert bool((x == dut.thresh).any())  # ties are exercised
    expected = dut.encode_output(bits)
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=lanes)
    assert run.outputs["o"] == expected


def test_extreme_inputs_and_thresholds():
    # A threshold above every input (never / always true by direction) and below every input.
    dut = ThresholdUnit(channels=4, lanes=2, in_width=4, thresh=[100, 100, -100, -100],
                        flip=[0, 1, 0, 1])
    x = torch.tensor([[-8, -8, -8, -8], [7, 7, 7, 7]])
    bits = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(dut.model(x), bits)
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, 4, seed=2)
    assert torch.equal(dut.decode_output(run.outputs["o"])[0], bits)


def test_one_word_per_cycle_and_latency():
    dut, x = make_random(8, 2, seed=4)
    words = dut.encode_input(x)
    run = run_amaranth(dut, {"i": words}, len(words), seed=0, bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == len(words) + dut.latency


@pytest.mark.parametrize("kwargs,exc,fragment", [
    ({"lanes": 5}, FoldingError, "lanes: must divide channels = 4; valid values are [1, 2, 4]"),
    ({"flip": [0, 1, 2, 0]}, ConfigError, "flip: expected bits (0 or 1)"),
    ({"flip": [0, 1]}, ConfigError, "flip: expected shape (4,)"),
    ({"thresh_width": 3}, ConfigError, "thresh: values must fit signed(3), i.e. [-4, 3]"),
    ({"in_width": 1}, ConfigError, "in_width: expected an integer in [2, 63]"),
])
def test_bad_parameters_name_the_parameter(kwargs, exc, fragment):
    params = dict(channels=4, lanes=2, in_width=8, thresh=[0, 5, -5, 9], flip=[0, 1, 0, 1])
    params.update(kwargs)
    with pytest.raises(exc) as info:
        ThresholdUnit(**params)
    assert fragment in str(info.value)


@pytest.mark.parametrize("lanes", [1, 4, 8])
def test_lint_clean(lanes):
    dut, _ = make_random(8, lanes, seed=6)
    assert lint_warnings(dut, "threshold_unit") == []


def test_verilator_matches_model():
    dut, x = make_random(8, 4, seed=8)
    expected = dut.encode_output(dut.model(x))
    run_stream_vectors(dut, "threshold_unit", {"i": dut.encode_input(x)}, {"o": expected},
                       simulator="verilator", seed=13, bubble_prob=0.3, stall_prob=0.4)
