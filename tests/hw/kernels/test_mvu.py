# amaranth: UnusedElaboratable=no
# (the bad-parameter tests build components that are meant to fail before elaboration)
"""XnorPopcountMVU in Amaranth's simulator: every output word equals the integer
reference under random bubbles and back-pressure, for corner and random stimulus and
foldings from pe = simd = 1 to fully parallel; the fused threshold; back-to-back images
with `last`; the throughput and latency it documents; clear errors for bad parameters."""
import pytest
import torch

from binaryvit.errors import ConfigError, DataError, FoldingError
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.kernels.popcount import POPCOUNT_STYLES
from binaryvit.quantize.weight_packing import pack_weight_rom
from binaryvit.sim.amaranth_streams import simulate_streams


def random_bits(shape, seed):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).bool()


def check(dut, a_bits, *, seed=0, bubble_prob=0.3, stall_prob=0.3):
    """Run the stimulus and compare every output word with the reference."""
    expected = dut.output_words(a_bits)
    run = simulate_streams(dut, {"i": dut.input_words(a_bits)}, {"o": len(expected)},
                           bubble_prob=bubble_prob, stall_prob=stall_prob, seed=seed)
    assert run.outputs["o"] == expected
    return run


def test_hand_derived_dot_products():
    # a = (+1, +1, -1, -1); rows: (+1,-1,+1,-1) agrees in 2 places -> 2·2-4 = 0,
    # all +1 agrees in 2 -> 0, (+1,+1,-1,-1) agrees in 4 -> 4, (-1,-1,+1,+1) -> -4.
    weights = [[1, 0, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
    dut = XnorPopcountMVU(4, 4, pe=2, simd=2, weights=weights)
    # The default: the fewest iCE40 logic cells registered (bench/bench_mvu.py --cells).
    assert dut.popcount == "counter6"
    run = simulate_streams(dut, {"i": dut.input_words([[1, 1, 0, 0]])}, {"o": 2})
    assert dut.decode_output(run.outputs["o"]).tolist() == [[[0, 0, 4, -4]]]


@pytest.mark.parametrize("K,N,pe,simd", [
    (20, 6, 2, 5),    # K not a multiple of 8
    (20, 6, 3, 10),
    (6, 3, 1, 1),     # pe = simd = 1
    (8, 4, 4, 8),     # fully parallel: pe = N, simd = K (the ROM is one word)
    (12, 6, 3, 12),   # one synapse fold: no accumulator
    (64, 8, 4, 16),
])
@pytest.mark.parametrize("popcount", ["counter4", "counter6", "shared4"])  # shared4: re-encoded ROM
def test_random_vectors_match_reference(K, N, pe, simd, popcount):
    dut = XnorPopcountMVU(K, N, pe, simd, random_bits((N, K), seed=K + N), popcount=popcount)
    check(dut, random_bits((2, 5, K), seed=K * N + pe), seed=pe * 10 + simd)


@pytest.mark.parametrize("popcount", ["counter4", "counter6", "shared4"])
@pytest.mark.parametrize("a_value,w_value", [(0, 0), (1, 1), (0, 1), (1, 0)])
def test_all_minus_and_plus_one(a_value, w_value, popcount):
    K, N = 20, 4
    dut = XnorPopcountMVU(K, N, 2, 5, torch.full((N, K), bool(w_value)), popcount=popcount)
    run = check(dut, torch.full((3, K), bool(a_value)), seed=a_value * 2 + w_value)
    dots = dut.decode_output(run.outputs["o"])
    assert dots.unique().tolist() == [K if a_value == w_value else -K]  # the extremes of out_width


@pytest.mark.parametrize("style", POPCOUNT_STYLES)
@pytest.mark.parametrize("register_every", [0, 1])
def test_every_popcount_structure(style, register_every):
    K, N = 24, 4
    dut = XnorPopcountMVU(K, N, 2, 12, random_bits((N, K), seed=5), popcount=style,
                          register_every=register_every)
    check(dut, random_bits((4, K), seed=6), seed=register_every)


@pytest.mark.parametrize("pe,simd", [(3, 5), (6, 5), (6, 20)])  # 2 or 1 neuron folds; fully parallel
def test_fused_threshold_with_flip(pe, simd):
    K, N = 20, 6
    thresholds = [-20, 0, 3, 21, -2, 4]  # 21 > K: never reached by >=; -20: always
    flip = [0, 0, 1, 0, 1, 1]
    dut = XnorPopcountMVU(K, N, pe, simd, random_bits((N, K), seed=11), thresholds=thresholds,
                          flip=flip)
    a_bits = random_bits((2, 6, K), seed=12)
    run = check(dut, a_bits, seed=4)
    bits = dut.decode_output(run.outputs["o"])
    assert bits[..., 0].all() and not bits[..., 3].any()


def test_last_marks_each_image_end():
    K, N, pe = 10, 4, 2
    dut = XnorPopcountMVU(K, N, pe, 5, random_bits((N, K), seed=1))
    a_bits = random_bits((3, 2, K), seed=2)  # 3 images of 2 vectors
    run = check(dut, a_bits, seed=9)
    lasts = [word >> (dut.out_width * pe) for word in run.outputs["o"]]
    words_per_image = 2 * N // pe
    assert lasts == ([0] * (words_per_image - 1) + [1]) * 3


@pytest.mark.parametrize("K,N,pe,simd,popcount", [(64, 16, 4, 16, "counter4"),
                                                   (8, 4, 4, 8, "counter4"),
                                                   (20, 6, 2, 5, "counter4"),
                                                   (64, 16, 4, 16, "shared4")])
def test_steady_state_throughput_and_latency(K, N, pe, simd, popcount):
    dut = XnorPopcountMVU(K, N, pe, simd, random_bits((N, K), seed=3), popcount=popcount)
    assert dut.cycles_per_vector == (K // simd) * (N // pe)
    one = check(dut, random_bits((1, K), seed=4), bubble_prob=0, stall_prob=0)
    # cycles = first input .. last output: (K/simd) input words, the latency, then the
    # remaining N/pe - 1 output words one neuron fold (K/simd cycles) apart.
    assert one.cycles == (K // simd) + dut.latency + (N // pe - 1) * (K // simd)
    vectors = 64
    dut = XnorPopcountMVU(K, N, pe, simd, random_bits((N, K), seed=3), popcount=popcount)
    batch = check(dut, random_bits((vectors, K), seed=5), bubble_prob=0, stall_prob=0)
    ideal = vectors * dut.cycles_per_vector
    # Double buffering hides the input: only the latency is added to the ideal.
    assert batch.cycles == ideal + dut.latency
    assert ideal / batch.cycles >= 0.9


@pytest.mark.parametrize("popcount", ["counter4", "shared4"])
def test_weights_from_a_rom_image_are_the_same_unit(popcount):
    w = random_bits((6, 20), seed=8)
    image = pack_weight_rom(w, 2, 5)
    from_image = XnorPopcountMVU(20, 6, 2, 5, image, popcount=popcount)
    # The canonical image is kept; shared4 re-encodes only the ROM init it builds.
    assert from_image.rom is image and torch.equal(from_image.weights, w)
    check(from_image, random_bits((3, 20), seed=9))


def test_bad_parameters_name_the_parameter_and_range():
    w = torch.zeros(6, 20, dtype=torch.bool)
    with pytest.raises(ConfigError, match="K: expected an integer ≥ 1, got 0"):
        XnorPopcountMVU(0, 6, 1, 1, w)
    with pytest.raises(FoldingError, match=r"pe: must divide N = 6 .*valid values are \[1, 2, 3, 6\], got 4"):
        XnorPopcountMVU(20, 6, 4, 5, w)
    with pytest.raises(FoldingError, match=r"simd: must divide K = 20 .*got 3"):
        XnorPopcountMVU(20, 6, 2, 3, w)
    with pytest.raises(FoldingError, match=r"simd: .*1 ≤ simd ≤ 20.*got 40"):
        XnorPopcountMVU(20, 6, 2, 40, w)
    with pytest.raises(DataError, match=r"weights: expected a bit matrix of shape \[N, K\] = \[6, 20\], got \(6, 10\)"):
        XnorPopcountMVU(20, 6, 2, 5, torch.zeros(6, 10, dtype=torch.bool))
    with pytest.raises(DataError, match="weights"):
        XnorPopcountMVU(20, 6, 2, 5, torch.full((6, 20), 2))
    with pytest.raises(ConfigError, match="does not match pe=2, simd=5"):
        XnorPopcountMVU(20, 6, 2, 5, pack_weight_rom(w, 3, 5))
    with pytest.raises(DataError, match=r"thresholds: expected one per output channel, shape \(6,\)"):
        XnorPopcountMVU(20, 6, 2, 5, w, thresholds=[0, 0])
    with pytest.raises(ConfigError, match="flip: given without thresholds"):
        XnorPopcountMVU(20, 6, 2, 5, w, flip=[0] * 6)
    with pytest.raises(ConfigError, match="popcount"):
        XnorPopcountMVU(20, 6, 2, 5, w, popcount="fast")
