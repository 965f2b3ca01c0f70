"""FixedMAC, StemUnit, ClassifierUnit: saturate(round_shift(W·x + bias, shift), out_width), folded."""
import pytest
import torch
from pointwise_test_support import lint_warnings, random_ints, run_amaranth, signed_extremes
from sklearn.datasets import load_digits

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.mac import ClassifierUnit, FixedMAC, StemUnit
from binaryvit.sim.runner import run_stream_vectors

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def digit_pixels(count: int) -> torch.Tensor:
    """``[count, 64, 1]``: real 8×8 digits (0…16), one pixel per token in raster order."""
    images = load_digits().images[:count]
    return torch.tensor(images, dtype=torch.int64).reshape(count, 64, 1)


@pytest.mark.parametrize("simd,pe", [(1, 1), (2, 2), (2, 1), (1, 2)])
def test_hand_derived(simd, pe):
    # y0 = 1·3 + 2·(-1) + 1 = 2 → (2+1)>>1 = 1;  y1 = -3·3 + 4·(-1) = -13 → (-12)>>1 = -6
    # y0 = 7 + 14 + 1 = 22 → 11 → clamp 7;       y1 = -21 + 28 = 7 → 8>>1 = 4
    dut = FixedMAC(weights=[[1, 2], [-3, 4]], bias=[1, 0], shift=1, out_width=4, in_width=4,
                   simd=simd, pe=pe)
    x = torch.tensor([[3, -1], [7, 7]])
    expected = torch.tensor([[[1, -6], [7, 4]]])
    assert torch.equal(dut.model(x), expected[0])
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, 4 // pe, seed=simd + pe)
    assert torch.equal(dut.decode_output(run.outputs["o"]), expected)


@pytest.mark.parametrize("out_features,in_features,simd,pe", [
    (10, 8, 2, 5), (4, 6, 3, 1), (6, 4, 4, 6), (5, 5, 1, 5), (3, 6, 6, 1)])
def test_random_folds_under_bubbles_and_backpressure(out_features, in_features, simd, pe):
    g = torch.Generator().manual_seed(out_features * 100 + in_features * 10 + simd + pe)
    dut = FixedMAC(weights=random_ints(g, -30, 30, (out_features, in_features)),
                   bias=random_ints(g, -400, 400, (out_features,)), shift=3, out_width=7,
                   in_width=7, simd=simd, pe=pe)
    x = random_ints(g, -64, 63, (3, 4, in_features))
    y = dut.model(x)
    assert int(y.min()) == -64 and int(y.max()) == 63  # both clamps are exercised
    expected = dut.encode_output(y)
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=simd * 7 + pe)
    assert run.outputs["o"] == expected


def test_extreme_weights_and_inputs_do_not_wrap():
    in_low, in_high = signed_extremes(9)
    w_low, w_high = signed_extremes(8)
    weights = torch.tensor([[w_low] * 4, [w_high] * 4, [w_low, w_high] * 2])
    dut = FixedMAC(weights=weights, bias=[-(1 << 14), (1 << 14) - 1, 0], shift=2, out_width=24,
                   in_width=9, simd=2, pe=3, weight_width=8, bias_width=15)
    x = torch.tensor([[in_low] * 4, [in_high] * 4, [in_low, in_high] * 2])
    # First vector, first output: 4·(-128)·(-256) - 16384 = 114688 → (114688 + 2) >> 2 = 28672.
    assert int(dut.model(x)[0, 0]) == 28672
    expected = dut.encode_output(dut.model(x))
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=3)
    assert run.outputs["o"] == expected


@pytest.mark.parametrize("pe", [4, 32])
def test_stem_on_real_digits(pe):
    g = torch.Generator().manual_seed(pe)
    dut = StemUnit(weights=random_ints(g, -40, 40, (32, 1)), bias=random_ints(g, -64, 64, (32,)),
                   shift=3, out_width=8, pe=pe)
    pixels = digit_pixels(2)
    expected = dut.encode_output(dut.model(pixels))
    run = run_amaranth(dut, {"i": dut.encode_input(pixels)}, len(expected), seed=pe,
                       bubble_prob=0.2, stall_prob=0.3)
    assert run.outputs["o"] == expected


def test_classifier_logits_and_throughput():
    g = torch.Generator().manual_seed(11)
    dut = ClassifierUnit(weights=random_ints(g, -127, 127, (10, 64)),
                         bias=random_ints(g, -5000, 5000, (10,)), shift=6, out_width=12,
                         in_width=8, simd=8, pe=2)
    features = random_ints(g, -128, 127, (3, 1, 64))     # three images, one pooled vector each
    expected = dut.encode_output(dut.model(features))
    run = run_amaranth(dut, {"i": dut.encode_input(features)}, len(expected), seed=5)
    assert run.outputs["o"] == expected
    assert torch.equal(dut.decode_output(run.outputs["o"]), dut.model(features))
    assert dut.cycles_per_vector == (64 // 8) * (10 // 2)
    run = run_amaranth(dut, {"i": dut.encode_input(features)}, len(expected), seed=0,
                       bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == 3 * dut.cycles_per_vector + dut.latency


@pytest.mark.parametrize("kwargs,exc,fragment", [
    ({"simd": 3}, FoldingError, "simd: must divide K (in_features) = 4; valid values are [1, 2, 4]"),
    ({"pe": 4}, FoldingError, "pe: must divide N (out_features) = 6; valid values are [1, 2, 3, 6]"),
    ({"weights": [1, 2, 3]}, ConfigError, "weights: expected a non-empty [N, K] table, got shape (3,)"),
    ({"bias": [0] * 5}, ConfigError, "bias: expected shape (6,)"),
    ({"weight_width": 3}, ConfigError, "weights: values must fit signed(3), i.e. [-4, 3]"),
    ({"in_width": 64}, ConfigError, "in_width: expected an integer in [2, 63]"),
    ({"input_signed": False, "in_width": 0}, ConfigError,
     "in_width (unsigned input): expected an integer in [1, 62]"),
])
def test_bad_parameters_name_the_parameter(kwargs, exc, fragment):
    params = dict(weights=[[k - n for k in range(4)] for n in range(6)], bias=[0] * 6, shift=1,
                  out_width=8, in_width=8, simd=2, pe=3)
    params.update(kwargs)
    with pytest.raises(exc) as info:
        FixedMAC(**params)
    assert fragment in str(info.value)


def test_lint_clean():
    g = torch.Generator().manual_seed(1)
    stem = StemUnit(weights=random_ints(g, -40, 40, (32, 1)), bias=[0] * 32, shift=2, out_width=8, pe=8)
    classifier = ClassifierUnit(weights=random_ints(g, -9, 9, (10, 64)), bias=[3] * 10, shift=4,
                                out_width=12, in_width=8, simd=8, pe=5)
    assert lint_warnings(stem, "stem_unit") == []
    assert lint_warnings(classifier, "classifier_unit") == []
    weights = random_ints(g, -9, 9, (6, 4))
    for simd, pe in [(1, 1), (4, 6), (1, 6), (4, 1)]:  # every fold extreme
        mac = FixedMAC(weights=weights, bias=[1] * 6, shift=1, out_width=8, in_width=6,
                       simd=simd, pe=pe)
        assert lint_warnings(mac, "fixed_mac") == [], (simd, pe)


def test_verilator_stem_on_real_digits():
    g = torch.Generator().manual_seed(21)
    dut = StemUnit(weights=random_ints(g, -40, 40, (32, 1)), bias=random_ints(g, -64, 64, (32,)),
                   shift=3, out_width=8, pe=8)
    pixels = digit_pixels(3)
    run_stream_vectors(dut, "stem_unit", {"i": dut.encode_input(pixels)},
                       {"o": dut.encode_output(dut.model(pixels))}, simulator="verilator",
                       seed=16, bubble_prob=0.3, stall_prob=0.3)


def test_icarus_classifier_matches_model():
    g = torch.Generator().manual_seed(22)
    dut = ClassifierUnit(weights=random_ints(g, -127, 127, (10, 64)),
                         bias=random_ints(g, -5000, 5000, (10,)), shift=6, out_width=12,
                         in_width=8, simd=16, pe=5)
    features = torch.cat([random_ints(g, -128, 127, (2, 1, 64)),
                          torch.full((1, 1, 64), -128), torch.full((1, 1, 64), 127)])
    run_stream_vectors(dut, "classifier_unit", {"i": dut.encode_input(features)},
                       {"o": dut.encode_output(dut.model(features))}, simulator="icarus",
                       seed=17, bubble_prob=0.3, stall_prob=0.3)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_heavy_backpressure_with_buffered_groups(seed):
    # words > 1 and groups > 1: the buffer path, stalled most of the time on both sides.
    g = torch.Generator().manual_seed(40 + seed)
    dut = FixedMAC(weights=random_ints(g, -30, 30, (6, 6)), bias=random_ints(g, -99, 99, (6,)),
                   shift=2, out_width=9, in_width=6, simd=2, pe=2)
    x = random_ints(g, -32, 31, (2, 5, 6))
    expected = dut.encode_output(dut.model(x))
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=seed,
                       bubble_prob=0.6, stall_prob=0.8)
    assert run.outputs["o"] == expected
