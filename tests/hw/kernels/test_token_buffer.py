# amaranth: UnusedElaboratable=no
"""TokenBuffer / NearestUpsample: a stored h×w map replayed as the (h·f)×(w·f) map equals
intref.nearest_upsample word for word, image after image, under bubbles and back-pressure."""
import pytest
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.kernels.token_buffer import NearestUpsample, TokenBuffer
from binaryvit.sim.runner import run_stream_vectors
from pooling_harness import lint_problems, random_tokens, run_amaranth, run_with_gaps


def make(height=2, width=2, channels=4, lanes=2, data_width=8, factor=2):
    return NearestUpsample(height=height, width=width, channels=channels, lanes=lanes,
                           data_width=data_width, factor=factor)


def test_hand_derived_2x2_upsampled_by_2():
    # Tokens a b / c d (one channel) become the 4×4 map
    # a a b b / a a b b / c c d d / c c d d.
    dut = make(height=2, width=2, channels=1, lanes=1, factor=2)
    x = torch.tensor([[[1], [2], [3], [4]]])
    run = run_amaranth(dut, x)
    assert dut.decode_output(run.outputs["o"]).flatten().tolist() == [
        1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]


@pytest.mark.parametrize("height, width, channels, lanes, factor", [
    (1, 1, 2, 1, 3),   # one token
    (2, 2, 4, 4, 2),   # lanes = C
    (4, 4, 4, 1, 2),   # lanes = 1, SR r = 2 on an 8×8 grid
    (2, 3, 2, 2, 4),   # non-square
    (1, 4, 3, 3, 2),
])
def test_random_images_back_to_back_under_backpressure(height, width, channels, lanes, factor):
    dut = make(height=height, width=width, channels=channels, lanes=lanes, factor=factor)
    x = random_tokens(3, height * width, channels, dut.data_width, seed=factor * 7 + width)
    run_amaranth(dut, x, seed=height + factor)


def test_factor_one_replays_the_map_unchanged():
    dut = TokenBuffer(height=3, width=2, channels=2, lanes=1, data_width=8)
    x = random_tokens(2, 6, 2, 8, seed=9)
    run = run_amaranth(dut, x, seed=5)
    assert torch.equal(dut.decode_output(run.outputs["o"]), x)


@pytest.mark.parametrize("value", [127, -128])
def test_extreme_values_pass_unchanged(value):
    dut = make()
    run = run_amaranth(dut, torch.full((2, 4, 4), value), seed=6)
    assert dut.decode_output(run.outputs["o"]).unique().tolist() == [value]


# Several images in a row under heavy bubbles and stalls: loading one bank while the other
# replays is where the schedule can go wrong.
@pytest.mark.parametrize("bubble, stall", [(0.8, 0.0), (0.0, 0.8), (0.7, 0.7), (0.1, 0.5)])
@pytest.mark.parametrize("height, width, channels, lanes, factor", [
    (2, 2, 4, 2, 2), (1, 1, 2, 2, 3), (2, 3, 2, 1, 1), (4, 4, 4, 4, 2)])
def test_images_back_to_back_under_heavy_stalls(bubble, stall, height, width, channels, lanes,
                                                factor):
    dut = TokenBuffer(height=height, width=width, channels=channels, lanes=lanes, data_width=8,
                      factor=factor)
    x = random_tokens(6, height * width, channels, 8, seed=height * 10 + factor)
    run_amaranth(dut, x, bubble_prob=bubble, stall_prob=stall, seed=int(bubble * 10 + stall * 100))


@pytest.mark.parametrize("factor", [1, 2])
def test_every_pause_between_images(factor):
    dut = TokenBuffer(height=2, width=2, channels=2, lanes=1, data_width=8, factor=factor)
    x = random_tokens(4, 4, 2, 8, seed=factor)
    for gap in range(dut.output_words_per_image + 3):
        run_with_gaps(dut, x, gap)


@pytest.mark.parametrize("height, width, channels, lanes, factor", [
    (2, 2, 4, 2, 2), (2, 3, 2, 1, 1), (1, 1, 1, 1, 2)])
def test_cycles_per_image_are_the_replay(height, width, channels, lanes, factor):
    dut = TokenBuffer(height=height, width=width, channels=channels, lanes=lanes, data_width=8,
                      factor=factor)
    words = height * width * channels // lanes
    assert dut.cycles_per_image == words * factor * factor
    x = random_tokens(3, height * width, channels, 8, seed=2)
    run = run_amaranth(dut, x, bubble_prob=0.0, stall_prob=0.0)
    # The first image loads alone; from then on the replays run back to back while the
    # next image loads into the other bank. The first output word leaves `latency` cycles
    # after the first image's last input word.
    assert run.cycles == words + dut.latency - 1 + 3 * dut.cycles_per_image


@pytest.mark.parametrize("cls, kwargs, error, match", [
    (NearestUpsample, dict(factor=1), ConfigError, r"factor: expected an integer.* 2, got 1"),
    (TokenBuffer, dict(factor=0), ConfigError, r"factor: expected an integer.* 1, got 0"),
    (NearestUpsample, dict(channels=4, lanes=3), FoldingError, r"lanes: must divide channels = 4"),
    (NearestUpsample, dict(height=0), ConfigError, r"height"),
    (NearestUpsample, dict(data_width=64), ConfigError, r"data_width: expected an integer in \[2, 63\]"),
])
def test_bad_parameters_name_the_parameter(cls, kwargs, error, match):
    params = dict(height=2, width=2, channels=4, lanes=2, data_width=8, factor=2) | kwargs
    with pytest.raises(error, match=match):
        cls(**params)


@pytest.mark.parametrize("dut", [
    make(),
    NearestUpsample(height=4, width=4, channels=32, lanes=2, data_width=24, factor=2),  # tiny-digits k_up
    NearestUpsample(height=1, width=1, channels=2, lanes=1, data_width=8, factor=3),
    TokenBuffer(height=1, width=1, channels=4, lanes=4, data_width=8),  # one word per image
], ids=["small", "tiny_digits", "one_token", "one_word"])
def test_verilog_lint_clean(dut):
    assert lint_problems(dut, "token_buffer") == []


def test_generated_verilog_matches_model():
    dut = make(height=2, width=3, channels=4, lanes=2, factor=2)
    x = torch.cat([random_tokens(3, 6, 4, 8, seed=8), torch.full((1, 6, 4), 127),
                   torch.full((1, 6, 4), -128), random_tokens(2, 6, 4, 8, seed=9)])
    expected = {"o": dut.encode_output(dut.model(x))}
    for seed, (bubble, stall) in enumerate([(0.3, 0.3), (0.8, 0.1), (0.1, 0.8), (0.0, 0.0)]):
        result = run_stream_vectors(dut, "nearest_upsample", {"i": dut.encode_input(x)}, expected,
                                    simulator="verilator", bubble_prob=bubble, stall_prob=stall,
                                    seed=23 + seed)
        assert len(result.outputs["o"]) == 7 * dut.output_words_per_image
    # With no stalls, the documented count holds in the generated Verilog too.
    assert result.cycles == dut.input_words_per_image + dut.latency - 1 + 7 * dut.cycles_per_image
