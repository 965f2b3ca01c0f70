"""UART receiver and transmitter in Amaranth's simulator, at the bit level.

The line is driven and sampled by the testbench in clock cycles with hand-written 8N1
timing (start bit 0, data LSB first, stop bit 1), independent of the RTL under test.
"""
import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.hw.boards.uart import UARTReceiver, UARTTransmitter, baud_divisor

DIVISOR = 8


def frame_levels(value: int) -> list[int]:
    return [0] + [(value >> j) & 1 for j in range(8)] + [1]


def run(dut, bench, cycles_limit=None):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_baud_divisor_rounds_and_refuses_what_a_uart_cannot_do():
    assert baud_divisor(12e6, 115200) == 104        # 12e6 / 115200 = 104.17
    assert baud_divisor(25e6, 115200) == 217        # 217.01
    with pytest.raises(ConfigError, match="too fast"):
        baud_divisor(12e6, 4_000_000)
    with pytest.raises(ConfigError, match="% off"):
        baud_divisor(1e6, 230400)                    # 1e6 / 4 = 250000 baud: 8.5 % off
    with pytest.raises(ConfigError, match="divisor"):
        UARTTransmitter(3)


def test_transmitter_frames_every_byte_with_exact_bit_times_and_no_gaps():
    dut = UARTTransmitter(DIVISOR)
    values = [0x00, 0xFF, 0xA5, 0x3C, 0x01]
    line = []

    async def bench(ctx):
        assert ctx.get(dut.tx) == 1
        for v in values:
            ctx.set(dut.i.payload, v)
            ctx.set(dut.i.valid, 1)
            while True:
                ready = ctx.get(dut.i.ready)
                await ctx.tick()
                line.append(ctx.get(dut.tx))
                if ready:
                    break
            ctx.set(dut.i.valid, 0)
        for _ in range(12 * DIVISOR):
            await ctx.tick()
            line.append(ctx.get(dut.tx))

    run(dut, bench)
    start = line.index(0)
    # back-to-back frames: every bit exactly DIVISOR cycles, frames adjacent
    expected = [level for v in values for level in frame_levels(v) for _ in range(DIVISOR)]
    assert line[start:start + len(expected)] == expected
    assert set(line[start + len(expected):]) == {1}


@pytest.mark.parametrize("skew", [-0.03, 0.0, 0.03])
def test_receiver_decodes_frames_with_baud_skew_gaps_and_flags_errors(skew):
    dut = UARTReceiver(DIVISOR)
    rng = random.Random(5)
    values = [0x55, 0x00, 0xFF, 0x80, 0x01] + [rng.randrange(256) for _ in range(10)]
    host_bit = DIVISOR * (1 + skew)
    # the line, one level per cycle: idle, frames at the host's (skewed) bit time, gaps
    levels = [1] * 5
    t = 0.0
    for k, v in enumerate(values):
        for level in frame_levels(v):
            t += host_bit
            levels += [level] * (round(t) - round(t - host_bit))
        if k % 3 == 0:
            levels += [1] * rng.randrange(1, 2 * DIVISOR)
    # a frame whose stop bit is low: frame error, no byte
    levels += [level for lv in [0] + [1] * 8 + [0] for level in [lv] * DIVISOR] + [1] * 3 * DIVISOR
    received, errors = [], []

    async def bench(ctx):
        for level in levels:
            ctx.set(dut.rx, level)
            ctx.set(dut.o.ready, 1)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                received.append(ctx.get(dut.o.payload))
            if ctx.get(dut.frame_error):
                errors.append(len(received))

    run(dut, bench)
    assert received == values
    assert errors == [len(values)]


def test_receiver_keeps_a_waiting_byte_and_reports_overrun():
    dut = UARTReceiver(DIVISOR)
    levels = [1] * 4 + [lv for v in (0x12, 0x34) for lv in frame_levels(v) for _ in range(DIVISOR)] \
        + [1] * 2 * DIVISOR
    overruns = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()
            overruns.append(ctx.get(dut.overrun))
        assert ctx.get(dut.o.valid) == 1
        assert ctx.get(dut.o.payload) == 0x12

    run(dut, bench)
    assert sum(overruns) == 1


def test_loopback_of_every_byte_value():
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(DIVISOR)
    m.submodules.rx = rx = UARTReceiver(DIVISOR)
    m.d.comb += rx.rx.eq(tx.tx)
    received = []

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        for v in range(256):
            ctx.set(tx.i.payload, v)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def collect(ctx):
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            if valid:
                received.append(payload)
                if len(received) == 256:
                    return

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(collect)
    sim.run()
    assert received == list(range(256))
