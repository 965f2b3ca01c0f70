"""StreamFIFO: order under bubbles and back-pressure, exact capacity, latency, and a memory
Yosys maps to block RAM without soft read-before-write logic."""
import random

import pytest
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.hw.streams.stream_fifo import StreamFIFO
from binaryvit.hw.streams.stream_width import element_layout
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import simulate_streams
from binaryvit.sim.lint import lint_verilog

LAYOUT = element_layout("fixed", 8, 3)   # 24 data bits + last

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.mark.parametrize("depth,bubbles,stalls,seed", [
    (2, 0.0, 0.0, 1), (2, 0.5, 0.5, 2), (3, 0.3, 0.7, 3), (17, 0.1, 0.9, 4), (17, 0.9, 0.1, 5)])
def test_words_come_out_in_order_whatever_the_pace(depth, bubbles, stalls, seed):
    rng = random.Random(seed)
    words = [0, (1 << 25) - 1] + [rng.randrange(1 << 25) for _ in range(120)]
    run = simulate_streams(StreamFIFO(LAYOUT, depth), {"i": words}, {"o": len(words)},
                           bubble_prob=bubbles, stall_prob=stalls, seed=seed)
    assert run.outputs["o"] == words


@pytest.mark.parametrize("depth", [2, 3, 9])
def test_holds_exactly_depth_words_and_answers_after_two_cycles(depth):
    fifo = StreamFIFO(LAYOUT, depth)
    seen = {}

    async def bench(ctx):
        accepted, cycle = 0, 0
        ctx.set(fifo.o.ready, 0)
        ctx.set(fifo.i.valid, 1)
        while cycle < 3 * depth + 4:
            ctx.set(fifo.i.payload.as_value(), accepted + 1)
            if ctx.get(fifo.i.ready):
                accepted += 1
            if "first_valid" not in seen and ctx.get(fifo.o.valid):
                seen["first_valid"] = cycle
            await ctx.tick()
            cycle += 1
        seen["accepted"] = accepted
        ctx.set(fifo.i.valid, 0)
        ctx.set(fifo.o.ready, 1)
        out = []
        for _ in range(3 * depth):
            if ctx.get(fifo.o.valid):
                out.append(ctx.get(fifo.o.payload.as_value()))
            await ctx.tick()
        seen["out"] = out

    sim = Simulator(fifo)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["accepted"] == depth
    assert seen["first_valid"] == fifo.latency == 2
    assert seen["out"] == list(range(1, depth + 1))


def test_depth_below_two_is_refused():
    with pytest.raises(ConfigError, match="depth"):
        StreamFIFO(LAYOUT, 1)


def test_memory_tells_yosys_that_reads_never_collide_with_writes():
    verilog = to_verilog(StreamFIFO(LAYOUT, 100), "fifo")
    assert "no_rw_check" in verilog
    assert [w for w in lint_verilog(verilog, "fifo") if not w.startswith("DECLFILENAME")] == []
