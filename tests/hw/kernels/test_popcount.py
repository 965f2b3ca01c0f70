# amaranth: UnusedElaboratable=no
"""XNOR-popcount datapaths: every style and pipelining equals the integer reference
(``xnor_popcount_dot = 2·popcount − K``) on corner and random inputs, alone and as
several PEs sharing one activation word (encoded weights, shared features), and the stage
count it reports is the delay the simulator sees."""
import random

import pytest
import torch
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.golden.intref import xnor_popcount_dot
from binaryvit.hw.kernels.popcount import (POPCOUNT_STYLES, XnorPopcount, XnorPopcountArray,
                                   encode_weight_word, feature_width)


def reference_popcount(a: int, w: int, lanes: int) -> int:
    bits = lambda v: torch.tensor([(v >> i) & 1 for i in range(lanes)], dtype=torch.bool)
    dot = int(xnor_popcount_dot(bits(a), bits(w).unsqueeze(0))[0])
    return (dot + lanes) // 2


def stimulus(lanes: int, seed: int) -> list[tuple[int, int]]:
    full = (1 << lanes) - 1
    rng = random.Random(seed)
    corners = [(0, 0), (full, full), (0, full), (full, 0), (0x5555555555555555 & full, full)]
    return corners + [(rng.getrandbits(lanes), rng.getrandbits(lanes)) for _ in range(40)]


def run_pipelined(dut: XnorPopcount, pairs: list[tuple[int, int]]) -> list[int]:
    """Feed one pair per cycle with en=1; read count `latency` cycles later."""
    results = []

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for cycle in range(len(pairs) + dut.latency):
            if cycle < len(pairs):
                ctx.set(dut.a, pairs[cycle][0])
                ctx.set(dut.w, pairs[cycle][1])
            if cycle >= dut.latency:
                results.append(ctx.get(dut.count))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("style", POPCOUNT_STYLES)
@pytest.mark.parametrize("lanes,register_every", [
    (1, 0), (2, 1), (3, 0), (5, 1), (7, 2), (20, 1), (64, 0), (64, 1), (65, 3),
    (8, 1),    # the heap ends in two rows, added without carry-in
    (256, 1),  # the benchmark's width; counter4: 127 2-lane counters, one row padded with 0
])
def test_count_equals_reference(style, lanes, register_every):
    dut = XnorPopcount(lanes, style=style, register_every=register_every)
    pairs = stimulus(lanes, seed=lanes * 7 + register_every)
    assert run_pipelined(dut, pairs) == [reference_popcount(a, w, lanes) for a, w in pairs]


@pytest.mark.parametrize("style", POPCOUNT_STYLES)
def test_every_word_pair_of_four_lanes(style):
    # All 256 (a, w) pairs. counter4: a 2-lane and two 1-lane counters, then one adder
    # with a row padded with 0; counter6: a 3-lane and a 1-lane counter, then two rows.
    dut = XnorPopcount(4, style=style, register_every=1)
    pairs = [(a, w) for a in range(16) for w in range(16)]
    assert run_pipelined(dut, pairs) == [reference_popcount(a, w, 4) for a, w in pairs]


def test_registering_every_level_adds_stages():
    # The output register alone, then plain's XNOR level + log2(64) = 6 adder levels.
    assert XnorPopcount(64, style="plain", register_every=0).latency == 1
    assert XnorPopcount(64, style="plain", register_every=1).latency == 1 + 7


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="lanes"):
        XnorPopcount(0)
    with pytest.raises(ConfigError, match="popcount style"):
        XnorPopcount(8, style="fast")
    with pytest.raises(ConfigError, match="register_every"):
        XnorPopcount(8, register_every=-1)


def run_array(dut: XnorPopcountArray, stimulus: list[tuple[int, list[int]]]) -> list[list[int]]:
    """Feed (a, [w_p]) per cycle, weights encoded as a ROM holds them; read every PE's
    count ``latency`` cycles later."""
    results = []
    mask = (1 << dut.count_width) - 1

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for cycle in range(len(stimulus) + dut.latency):
            if cycle < len(stimulus):
                a, words = stimulus[cycle]
                ctx.set(dut.a, a)
                ctx.set(dut.w, sum(encode_weight_word(w, dut.lanes, dut.style) << (p * dut.lanes)
                                   for p, w in enumerate(words)))
            if cycle >= dut.latency:
                count = ctx.get(dut.count)
                results.append([(count >> (p * dut.count_width)) & mask for p in range(dut.pe)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("style", POPCOUNT_STYLES)
@pytest.mark.parametrize("lanes,pe,register_every", [(1, 1, 1), (2, 2, 0), (3, 3, 1),
                                                     (20, 3, 1), (64, 2, 1), (65, 2, 2)])
def test_array_counts_equal_reference(style, lanes, pe, register_every):
    dut = XnorPopcountArray(lanes, pe, style=style, register_every=register_every)
    full = (1 << lanes) - 1
    rng = random.Random(lanes * 13 + pe)
    pairs = stimulus(lanes, seed=lanes + pe)
    cycles = [(a, [w] + [rng.getrandbits(lanes) for _ in range(pe - 1)]) for a, w in pairs]
    cycles.append((full, [full] * pe))  # every PE agrees everywhere: count = lanes
    results = run_array(dut, cycles)
    assert results == [[reference_popcount(a, w, lanes) for w in words] for a, words in cycles]
    assert results[-1] == [lanes] * pe


def test_shared4_weight_encoding_by_hand():
    # (w1, w2, w3) -> (w1, w1^w2, w1^w3), bit 0 first; a 2-lane group (w1, w2) -> (w1, w1^w2).
    assert encode_weight_word(0b110, 3, "shared4") == 0b110  # w1 = 0: unchanged
    assert encode_weight_word(0b001, 3, "shared4") == 0b111
    assert encode_weight_word(0b011, 3, "shared4") == 0b101
    # 20 lanes: six 3-lane groups and one 2-lane group (lanes 18, 19); 20 + 6 features.
    assert feature_width(20, "shared4") == 26
    assert encode_weight_word(0b01 << 18 | 0b001, 20, "shared4") == 0b11 << 18 | 0b111
    assert encode_weight_word(0b10110, 5, "counter4") == 0b10110


def test_shared4_encoding_is_a_bijection_and_features_add_one_bit_per_3_lane_group():
    assert len({encode_weight_word(w, 7, "shared4") for w in range(1 << 7)}) == 1 << 7
    # Groups (3), (2, 1, 1), (3, 1, 1), (3, 2, 1); 64 lanes: nineteen 3-lane groups.
    assert [feature_width(n, "shared4") for n in (3, 4, 5, 6, 64)] == [4, 4, 6, 7, 83]
    assert feature_width(64, "counter4") == 64


def test_bad_array_parameters_are_named():
    with pytest.raises(ConfigError, match="pe: expected an integer ≥ 1"):
        XnorPopcountArray(8, 0)
    with pytest.raises(ConfigError, match=r"word: expected an integer in \[0, 2\*\*3\)"):
        encode_weight_word(8, 3, "shared4")
    with pytest.raises(ConfigError, match="popcount style"):
        feature_width(8, "fast")
