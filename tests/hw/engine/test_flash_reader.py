# amaranth: UnusedElaboratable=no
import random

import pytest
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.flash_reader import FlashReader
from binaryvit.sim.amaranth_streams import stream_get
from binaryvit.sim.spi_flash_model import SPIFlashModel


def read_flash(reader: FlashReader, flash: SPIFlashModel, requests, *, stall_prob: float, seed: int):
    """Run ``requests`` (``(address, count)`` pairs) one after the other, with ``stop``
    after each; return the bytes of each."""
    results = []

    async def bench(ctx):
        rng = random.Random(seed)
        for address, count in requests:
            ctx.set(reader.address, address)
            ctx.set(reader.start, 1)
            await ctx.tick()
            ctx.set(reader.start, 0)
            results.append(bytes(await stream_get(ctx, reader.o, count, rng=rng, stall_prob=stall_prob)))
            ctx.set(reader.stop, 1)
            await ctx.tick()
            ctx.set(reader.stop, 0)
            assert not ctx.get(reader.busy) and not ctx.get(reader.spi.cs)
            await ctx.tick().repeat(rng.randrange(1, 5))

    async def flash_process(ctx):
        await flash.process(ctx, reader.spi)

    sim = Simulator(reader)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(flash_process, background=True)
    sim.run()
    return results


@pytest.mark.parametrize("half_period, stall_prob, seed", [(1, 0.0, 0), (1, 0.5, 1), (3, 0.3, 2)])
def test_reads_random_bytes_from_an_offset_with_back_pressure(half_period, stall_prob, seed):
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(300))
    flash = SPIFlashModel(wake_cycles=12)
    flash.program(0x10_0000, data)
    reader = FlashReader(half_period=half_period, wake_cycles=12)
    (got,) = read_flash(reader, flash, [(0x10_0000, 300)], stall_prob=stall_prob, seed=seed)
    assert got == data
    # woke the powered-down flash first, and it answered the read
    assert flash.commands == [0xAB, 0x03] and flash.ignored == []
    assert flash.reads[0][0] == 0x10_0000 and flash.reads[0][1] >= 300


def test_reads_run_on_into_erased_flash_and_restart_elsewhere():
    flash = SPIFlashModel(powered_down=False, wake_cycles=4)
    flash.program(0x20_0000, b"\x12\x34")
    flash.program(0x00_0100, b"\xa5\x5a\x00")
    reader = FlashReader(wake_cycles=4)
    got = read_flash(reader, flash, [(0x20_0000, 4), (0x00_0100, 3)], stall_prob=0.2, seed=3)
    assert got == [b"\x12\x34\xff\xff", b"\xa5\x5a\x00"]
    assert [address for address, _ in flash.reads] == [0x20_0000, 0x00_0100]


def test_a_flash_not_yet_awake_ignores_the_read():
    """The model enforces t_RES1, so the reader's wait is what makes the other tests pass."""
    flash = SPIFlashModel(wake_cycles=50)
    flash.program(0, b"\x00\x01")
    reader = FlashReader(wake_cycles=10)
    (got,) = read_flash(reader, flash, [(0, 2)], stall_prob=0.0, seed=4)
    assert got == b"\xff\xff" and flash.ignored == [0x03]


def test_byte_rate_is_sixteen_half_periods():
    flash = SPIFlashModel(powered_down=False)
    flash.program(0, bytes(range(64)))
    reader = FlashReader(half_period=2, wake_cycles=1)
    stamps = []

    async def bench(ctx):
        ctx.set(reader.start, 1)
        ctx.set(reader.o.ready, 1)
        for cycle in range(3000):
            await ctx.tick()
            ctx.set(reader.start, 0)
            if ctx.get(reader.o.valid):
                stamps.append(cycle)
            if len(stamps) == 64:
                return

    async def flash_process(ctx):
        await flash.process(ctx, reader.spi)

    sim = Simulator(reader)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(flash_process, background=True)
    sim.run()
    gaps = {b - a for a, b in zip(stamps, stamps[1:])}
    assert gaps == {16 * 2}


@pytest.mark.parametrize("kwargs", [dict(half_period=0), dict(wake_cycles=0), dict(half_period=1.5)])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ConfigError):
        FlashReader(**kwargs)
