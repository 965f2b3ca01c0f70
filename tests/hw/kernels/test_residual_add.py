"""ResidualAdd and PositionEmbeddingAdd: saturate(a + b, out_width) per element."""
import pytest
import torch
from pointwise_test_support import lint_warnings, random_ints, run_amaranth, signed_extremes

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.residual_add import PositionEmbeddingAdd, ResidualAdd
from binaryvit.sim.runner import run_stream_vectors

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def random_pair(channels, seed, width=8, tokens=6):
    g = torch.Generator().manual_seed(seed)
    low, high = signed_extremes(width)
    return (random_ints(g, low, high, (2, tokens, channels)),
            random_ints(g, low, high, (2, tokens, channels)))


def test_hand_derived_saturating_add():
    dut = ResidualAdd(channels=4, lanes=2, in_width=4, out_width=4)
    a = torch.tensor([[7, -8, 3, -1], [7, -8, -8, 0]])
    b = torch.tensor([[1, -1, -3, 1], [-8, 7, 0, 0]])
    expected = torch.tensor([[[7, -8, 0, 0], [-1, -1, -8, 0]]])  # 8→7, -9→-8
    assert torch.equal(dut.model(a, b), expected[0])
    run = run_amaranth(dut, {"i": dut.encode_input(a), "residual": dut.encode_residual(b)}, 4, seed=1)
    assert torch.equal(dut.decode_output(run.outputs["o"]), expected)


@pytest.mark.parametrize("channels,lanes", [(6, 1), (6, 6), (12, 4)])
def test_random_lock_step_under_bubbles_and_backpressure(channels, lanes):
    dut = ResidualAdd(channels=channels, lanes=lanes, in_width=8, out_width=8)
    a, b = random_pair(channels, seed=channels + lanes)
    y = dut.model(a, b)
    assert int(y.min()) == -128 and int(y.max()) == 127  # both clamps are exercised
    expected = dut.encode_output(y)
    run = run_amaranth(dut, {"i": dut.encode_input(a), "residual": dut.encode_residual(b)},
                       len(expected), seed=lanes, bubble_prob=0.5, stall_prob=0.3)
    assert run.outputs["o"] == expected


def test_mixed_widths_widen_without_clamping():
    dut = ResidualAdd(channels=4, lanes=4, in_width=8, residual_width=12, out_width=13)
    g = torch.Generator().manual_seed(3)
    a = random_ints(g, -128, 127, (5, 4))
    b = torch.cat([torch.tensor([[-2048] * 4, [2047] * 4]), random_ints(g, -2048, 2047, (3, 4))])
    expected = a + b  # 13 bits hold every sum: no clamp
    assert torch.equal(dut.model(a, b), expected)
    run = run_amaranth(dut, {"i": dut.encode_input(a), "residual": dut.encode_residual(b)}, 5, seed=3)
    assert torch.equal(dut.decode_output(run.outputs["o"])[0], expected)


def test_one_word_per_cycle_and_latency():
    dut = ResidualAdd(channels=6, lanes=3, in_width=8, out_width=8)
    a, b = random_pair(6, seed=4)
    words = dut.encode_input(a)
    run = run_amaranth(dut, {"i": words, "residual": dut.encode_residual(b)}, len(words), seed=0,
                       bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == len(words) + dut.latency


def make_embedding(tokens, channels, lanes, seed):
    g = torch.Generator().manual_seed(seed)
    embedding = random_ints(g, -100, 100, (tokens, channels))
    return PositionEmbeddingAdd(embedding=embedding, lanes=lanes, in_width=8, out_width=8)


def test_embedding_hand_derived():
    dut = PositionEmbeddingAdd(embedding=[[1, -1], [100, -100]], lanes=1, in_width=8, out_width=8)
    x = torch.tensor([[[5, 5], [100, -100]], [[127, -128], [-5, 5]]])   # two images
    expected = torch.tensor([[[6, 4], [127, -128]], [[127, -128], [95, -95]]])
    assert torch.equal(dut.model(x), expected)
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, 8, seed=1)
    assert torch.equal(dut.decode_output(run.outputs["o"]), expected)


@pytest.mark.parametrize("lanes", [1, 3, 12])
def test_embedding_random_images(lanes):
    dut = make_embedding(5, 12, lanes, seed=lanes)
    x, _ = random_pair(12, seed=20 + lanes, tokens=5)
    expected = dut.encode_output(dut.model(x))
    run = run_amaranth(dut, {"i": dut.encode_input(x)}, len(expected), seed=lanes)
    assert run.outputs["o"] == expected
    words = dut.encode_input(x)
    run = run_amaranth(dut, {"i": words}, len(words), seed=0, bubble_prob=0.0, stall_prob=0.0)
    assert run.cycles == len(words) + dut.latency


@pytest.mark.parametrize("make,exc,fragment", [
    (lambda: ResidualAdd(channels=6, lanes=4, in_width=8, out_width=8), FoldingError,
     "lanes: must divide channels = 6; valid values are [1, 2, 3, 6]"),
    (lambda: ResidualAdd(channels=6, lanes=2, in_width=8, out_width=1), ConfigError,
     "out_width: expected an integer in [2, 63]"),
    (lambda: ResidualAdd(channels=6, lanes=2, in_width=8, out_width=8, residual_width=99),
     ConfigError, "residual_width: expected an integer in [2, 63]"),
    (lambda: PositionEmbeddingAdd(embedding=[1, 2, 3], lanes=1, in_width=8, out_width=8),
     ConfigError, "embedding: expected a non-empty [tokens, C] table, got shape (3,)"),
    (lambda: PositionEmbeddingAdd(embedding=[[200, 0]], lanes=1, in_width=8, out_width=8,
                                  embedding_width=8), ConfigError,
     "embedding: values must fit signed(8), i.e. [-128, 127]"),
    (lambda: PositionEmbeddingAdd(embedding=[[1, 0, 2]], lanes=2, in_width=8, out_width=8),
     FoldingError, "lanes: must divide channels = 3"),
])
def test_bad_parameters_name_the_parameter(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


@pytest.mark.parametrize("lanes", [1, 6])
def test_lint_clean(lanes):
    assert lint_warnings(ResidualAdd(channels=6, lanes=lanes, in_width=8, out_width=8),
                         "residual_add") == []
    assert lint_warnings(make_embedding(4, 6, lanes, seed=1), "position_embedding_add") == []
    assert lint_warnings(make_embedding(1, 6, 6, seed=1), "position_embedding_add") == []


def test_verilator_residual_matches_model():
    dut = ResidualAdd(channels=6, lanes=3, in_width=8, out_width=8)
    a, b = random_pair(6, seed=30)
    run_stream_vectors(dut, "residual_add", {"i": dut.encode_input(a), "residual": dut.encode_residual(b)},
                       {"o": dut.encode_output(dut.model(a, b))}, simulator="verilator", seed=14,
                       bubble_prob=0.4, stall_prob=0.4)


def test_icarus_embedding_matches_model():
    dut = make_embedding(5, 6, 2, seed=31)
    x, _ = random_pair(6, seed=32, tokens=5)
    run_stream_vectors(dut, "position_embedding_add", {"i": dut.encode_input(x)},
                       {"o": dut.encode_output(dut.model(x))}, simulator="icarus", seed=15,
                       bubble_prob=0.3, stall_prob=0.4)
