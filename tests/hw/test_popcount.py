# amaranth: UnusedElaboratable=no
"""XNOR-popcount datapaths: every style and pipelining equals the integer reference
(``xnor_popcount_dot = 2·popcount − K``) on corner and random inputs, and the stage
count it reports is the delay the simulator sees."""
import random

import pytest
import torch
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.golden.intref import xnor_popcount_dot
from binaryvit.hw.popcount import POPCOUNT_STYLES, XnorPopcount


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
@pytest.mark.parametrize("lanes,register_every", [(1, 0), (2, 1), (3, 0), (5, 1), (7, 2),
                                                  (20, 1), (64, 0), (64, 1), (65, 3)])
def test_count_equals_reference(style, lanes, register_every):
    dut = XnorPopcount(lanes, style=style, register_every=register_every)
    pairs = stimulus(lanes, seed=lanes * 7 + register_every)
    assert run_pipelined(dut, pairs) == [reference_popcount(a, w, lanes) for a, w in pairs]


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
