# amaranth: UnusedElaboratable=no
"""The receiver alone, fed as a UART would feed it: the image's bytes with random gaps."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.loader_receiver import LoaderError, ParameterImageReceiver
from binaryvit.hw.engine.parameter_image import ParameterImage
from binaryvit.sim.amaranth_streams import stream_put

DESIGN = 0x5EED_0001


def receive(data: bytes, *, capacity: int = 65536, bubble_prob: float = 0.5, seed: int = 0):
    """Feed ``data``; return ``(done, error, error_code, writes, stops)`` where ``writes`` is
    every ``(write_addr, write_data)`` seen and ``stops`` the cycles ``stop`` was high."""
    dut = ParameterImageReceiver(design_id=DESIGN, capacity_words=capacity)
    writes, stops, state = [], [], {}

    async def source(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await stream_put(ctx, dut.i, list(data), rng=random.Random(seed), bubble_prob=bubble_prob)

    async def monitor(ctx):
        for cycle in range(40 * len(data) + 100):
            await ctx.tick()
            if ctx.get(dut.write_enable):
                writes.append((ctx.get(dut.write_addr), ctx.get(dut.write_data)))
            if ctx.get(dut.stop):
                stops.append(cycle)
            if ctx.get(dut.done) or ctx.get(dut.error):
                break
        state.update(done=ctx.get(dut.done), error=ctx.get(dut.error), code=ctx.get(dut.error_code))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source, background=True)
    sim.add_testbench(monitor)
    sim.run()
    return state["done"], state["error"], state["code"], writes, stops


def test_an_image_with_random_gaps_is_written_in_order():
    payload = np.random.default_rng(7).integers(0, 1 << 16, 300)
    done, error, code, writes, stops = receive(ParameterImage(DESIGN, payload).to_bytes())
    assert (done, error, code) == (1, 0, LoaderError.NONE)
    assert writes == list(enumerate(payload.tolist()))
    assert len(stops) == 1


def test_bytes_after_the_image_are_not_taken():
    payload = [1, 2, 3]
    done, error, _, writes, _ = receive(ParameterImage(DESIGN, payload).to_bytes() + b"\x00" * 8,
                                        bubble_prob=0.0)
    assert (done, error) == (1, 0) and writes == [(0, 1), (1, 2), (2, 3)]


def test_a_refused_image_says_stop_at_once():
    image = bytearray(ParameterImage(DESIGN, [5] * 10).to_bytes())
    image[0] = ord("X")
    done, error, code, writes, stops = receive(bytes(image), bubble_prob=0.0)
    assert (done, error, code, writes) == (0, 1, LoaderError.BAD_MAGIC, [])
    assert len(stops) == 1


def test_capacity_is_checked():
    with pytest.raises(ConfigError, match="capacity_words"):
        ParameterImageReceiver(design_id=DESIGN, capacity_words=0)
