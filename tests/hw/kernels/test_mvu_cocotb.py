"""XnorPopcountMVU's generated Verilog: bit-exact against the integer reference in cocotb
on Verilator (integer and fused-threshold variants) and Icarus, under random bubbles and
back-pressure, and lint-clean, also at the folding corners and at every fold of the
tiny-digits network. Three hardware configurations only are simulated (each a Verilator
build); the stimulus is what varies."""
import pytest
import torch
from network_models import int_model

from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.kernels.popcount import POPCOUNT_STYLES
from binaryvit.hw.network.folding import fold_network
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.lint import lint_verilog
from binaryvit.sim.runner import run_stream_vectors, run_throughput

K, N, PE, SIMD = 20, 6, 2, 5  # K not a multiple of 8; 4 synapse folds, 3 neuron folds
THRESHOLDS = [-20, 0, 3, 21, -2, 4]
FLIP = [0, 0, 1, 0, 1, 1]


def bits(shape, seed):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).bool()


def weights():
    w = bits((N, K), seed=100)
    w[0] = True    # one all +1 row
    w[1] = False   # one all -1 row
    return w


def integer_mvu():
    return XnorPopcountMVU(K, N, PE, SIMD, weights(), register_every=1)


def threshold_mvu():
    return XnorPopcountMVU(K, N, PE, SIMD, weights(), thresholds=THRESHOLDS, flip=FLIP,
                           register_every=1)


def shared4_mvu():
    # simd = 10: three full 3-lane groups and a 1-lane remainder (the Amaranth-simulator
    # tests cover the 2-lane remainder with simd = 5).
    return XnorPopcountMVU(K, N, 3, 10, weights(), popcount="shared4", register_every=1)


STIMULI = {
    "random": bits((3, 4, K), seed=7),                      # 3 images of 4 vectors
    "all_minus_one": torch.zeros(2, K, dtype=torch.bool),
    "all_plus_one": torch.ones(2, K, dtype=torch.bool),
    "alternating": torch.tensor([[k % 2 == 0 for k in range(K)]] * 3),
}


@pytest.mark.parametrize("stimulus", sorted(STIMULI))
def test_integer_output_on_verilator(stimulus):
    dut = integer_mvu()
    a_bits = STIMULI[stimulus]
    run_stream_vectors(dut, "xnor_mvu_int", {"i": dut.input_words(a_bits)},
                       {"o": dut.output_words(a_bits)}, seed=len(stimulus))


def test_fused_threshold_on_verilator():
    dut = threshold_mvu()
    a_bits = bits((2, 5, K), seed=8)
    run_stream_vectors(dut, "xnor_mvu_thr", {"i": dut.input_words(a_bits)},
                       {"o": dut.output_words(a_bits)}, bubble_prob=0.5, stall_prob=0.5, seed=2)


@pytest.mark.parametrize("stimulus", ["random", "all_plus_one", "alternating"])
def test_shared4_output_on_verilator(stimulus):
    dut = shared4_mvu()
    a_bits = STIMULI[stimulus]
    run_stream_vectors(dut, "xnor_mvu_shared4", {"i": dut.input_words(a_bits)},
                       {"o": dut.output_words(a_bits)}, seed=len(stimulus) + 1)


def test_integer_output_on_icarus():
    dut = integer_mvu()
    a_bits = STIMULI["random"]
    run_stream_vectors(dut, "xnor_mvu_int", {"i": dut.input_words(a_bits)},
                       {"o": dut.output_words(a_bits)}, simulator="icarus", seed=5)


def test_verilator_cycles_match_the_documented_throughput():
    dut = integer_mvu()
    a_bits = bits((40, K), seed=9)
    result = run_throughput(dut, "xnor_mvu_int", {"i": dut.input_words(a_bits)},
                            {"o": dut.output_words(a_bits)})
    assert result.cycles == 40 * dut.cycles_per_vector + dut.latency


@pytest.mark.parametrize("make", [integer_mvu, threshold_mvu, shared4_mvu])
def test_generated_verilog_is_lint_clean(make):
    assert lint_verilog(to_verilog(make(), "xnor_mvu"), "xnor_mvu") == []


@pytest.mark.parametrize("style", POPCOUNT_STYLES)
@pytest.mark.parametrize("K,N,pe,simd,fused", [
    (32, 32, 1, 32, False),  # one synapse fold (tiny-digits' q_proj): no accumulator
    (8, 4, 4, 2, True),      # one neuron fold: no threshold table
    (8, 4, 4, 8, True),      # fully parallel: a one-word weight ROM
    (1, 1, 1, 1, False),
])
def test_folding_corners_are_lint_clean(K, N, pe, simd, fused, style):
    thresholds = {"thresholds": list(range(-N, N, 2))} if fused else {}
    dut = XnorPopcountMVU(K, N, pe, simd, bits((N, K), seed=K + N), popcount=style,
                          **thresholds)
    assert lint_verilog(to_verilog(dut, "xnor_mvu"), "xnor_mvu") == []


def test_every_fold_of_the_tiny_digits_network_is_lint_clean():
    model = int_model("tiny-digits")
    folding = fold_network(model)
    units = {}
    for step in model.steps:
        if step.op == "xnor_popcount_dot":
            w = torch.as_tensor(step.arrays["weight_bits"]).bool()
            fold = folding.folds[step.name]
            units.setdefault((w.shape[1], w.shape[0], fold["pe"], fold["simd"]), w)
    assert len(units) >= 2 and any(K == simd for K, _, _, simd in units)
    for (K, N, pe, simd), w in units.items():
        dut = XnorPopcountMVU(K, N, pe, simd, w)
        assert lint_verilog(to_verilog(dut, "xnor_mvu"), "xnor_mvu") == [], (K, N, pe, simd)
