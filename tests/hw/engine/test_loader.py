# amaranth: UnusedElaboratable=no
"""The boot loader against a SPI-flash model: real images land in the SPRAM bank word for
word; images for another design, damaged, truncated or too long are refused and reported."""
import gc
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.loader import DEFAULT_FLASH_OFFSET, LoaderError, ParameterLoader
from binaryvit.hw.engine.loader_memory import BootLoadedSPRAM
from binaryvit.hw.engine.parameter_image import ParameterImage, design_id
from binaryvit.sim.spi_flash_model import SPIFlashModel

# a refused parameter leaves the loader's half-built parts unused
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

DESIGN = design_id(b"engine program for the loader tests")
WAKE = 8


@dataclass
class LoadResult:
    done: int
    error: int
    error_code: int
    words_written: int
    cycles: int
    memory: list[int]          # the words at read_back, read through the engine's port after the load
    flash: SPIFlashModel


def load(flash_bytes: bytes | None, *, banks: int = 4, read_back: list[int] = (),
         design: int = DESIGN, offset: int = DEFAULT_FLASH_OFFSET, half_period: int = 1,
         max_cycles: int = 200_000) -> LoadResult:
    """Program ``flash_bytes`` at ``offset`` of a powered-down flash, boot, and wait for
    ``done`` or ``error``; then read the words at ``read_back`` through the engine's port."""
    dut = BootLoadedSPRAM(design_id=design, banks=banks, implementation="model",
                          flash_offset=offset, half_period=half_period, wake_cycles=WAKE)
    flash = SPIFlashModel(wake_cycles=WAKE)
    if flash_bytes is not None:
        flash.program(offset, flash_bytes)
    result = {}

    async def bench(ctx):
        # the engine's port pokes at the bank all through the load: it must be ignored
        ctx.set(dut.enable, 1)
        ctx.set(dut.write, 1)
        ctx.set(dut.write_mask, 0b1111)
        ctx.set(dut.write_data, 0xDEAD)
        await ctx.tick().repeat(3)
        ctx.set(dut.start, 1)
        cycles = 0
        while not (ctx.get(dut.done) or ctx.get(dut.error)):
            ctx.set(dut.addr, (cycles * 37) % (banks << 14))
            await ctx.tick()
            cycles += 1
            assert cycles < max_cycles, "loader never finished"
        ctx.set(dut.write, 0)
        result.update(done=ctx.get(dut.done), error=ctx.get(dut.error),
                      error_code=ctx.get(dut.error_code), words_written=ctx.get(dut.words_written),
                      cycles=cycles)
        memory = []
        for address in read_back:
            ctx.set(dut.addr, address)
            await ctx.tick()
            memory.append(ctx.get(dut.read_data))     # read latency 1: the word is out now
        ctx.set(dut.enable, 0)
        result["memory"] = memory
        await ctx.tick().repeat(20)
        assert ctx.get(dut.done) == result["done"] and ctx.get(dut.error) == result["error"]

    async def flash_process(ctx):
        await flash.process(ctx, dut.spi)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(flash_process, background=True)
    sim.run()
    return LoadResult(memory=result.pop("memory"), flash=flash, **result)


def random_words(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << 16, count)


def spread_image(seed: int, words: int, design: int = DESIGN) -> ParameterImage:
    """A compiler-like layout: the top of bank 0 running on into bank 1, the top of bank 3,
    a few words low in bank 0, and an empty segment."""
    third = words // 3
    return ParameterImage(design, [
        (16384 - third, random_words(seed, 2 * third)),          # crosses into bank 1
        (65536 - (words - 2 * third - 5), random_words(seed + 100, words - 2 * third - 5)),
        (3, random_words(seed + 200, 5)),
        (40000, []),
    ])


def addresses_of(image: ParameterImage, untouched: list[int]) -> list[int]:
    return [a + i for a, w in image.segments for i in range(len(w))] + untouched


@pytest.mark.parametrize("seed, words, half_period", [(0, 400, 1), (1, 257, 2)])
def test_a_real_image_lands_in_the_spram_word_for_word(seed, words, half_period):
    image = spread_image(seed, words)
    untouched = [0, 2, 8, 16384 - 400, 20000, 65536 - 300]
    read_back = addresses_of(image, untouched)
    result = load(image.to_bytes(), read_back=read_back, half_period=half_period)
    assert (result.done, result.error, result.error_code) == (1, 0, LoaderError.NONE)
    assert result.words_written == words
    # every loaded word in place, and nothing else written (the model starts at zero)
    assert result.memory == image.memory(65536)[read_back].tolist()
    assert result.memory[-len(untouched):] == [0] * len(untouched)
    # one READ at the image's offset, stopped once the last byte was in
    image_bytes = len(image.to_bytes())
    assert [a for a, _ in result.flash.reads] == [DEFAULT_FLASH_OFFSET]
    assert image_bytes <= result.flash.reads[0][1] <= image_bytes + 1
    # 16 half periods per byte: neither the CRC nor the segment checks hold the flash back
    assert result.cycles <= 16 * half_period * (image_bytes + 6) + WAKE + 50


def test_an_empty_payload_is_done_at_once():
    result = load(ParameterImage(DESIGN, []).to_bytes())
    assert (result.done, result.error, result.words_written) == (1, 0, 0)


def test_an_image_for_another_design_is_refused_before_any_write():
    image = spread_image(2, 90, design=DESIGN ^ 0x100)
    result = load(image.to_bytes(), read_back=addresses_of(image, []))
    assert (result.done, result.error, result.error_code) == (0, 1, LoaderError.DESIGN_MISMATCH)
    assert result.words_written == 0
    assert set(result.memory) == {0}          # the model's reset contents: nothing written
    assert result.flash.reads[0][1] == 10    # stopped at the byte that differs (byte 9)


def test_erased_flash_is_not_an_image():
    result = load(None)
    assert (result.done, result.error, result.error_code) == (0, 1, LoaderError.BAD_MAGIC)
    assert result.flash.reads[0][1] == 1     # refused at the first byte


def test_another_format_version_is_refused():
    image = bytearray(ParameterImage(DESIGN, [(0, random_words(3, 10))]).to_bytes())
    image[4] = 2
    result = load(bytes(image))
    assert (result.error, result.error_code) == (1, LoaderError.BAD_VERSION)


def test_a_corrupted_payload_fails_the_checksum_and_is_never_done():
    image = bytearray(ParameterImage(DESIGN, [(100, random_words(4, 160))]).to_bytes())
    image[20 + 133] ^= 0x04
    result = load(bytes(image))
    assert (result.done, result.error, result.error_code) == (0, 1, LoaderError.BAD_CHECKSUM)
    assert result.words_written == 160


def test_a_truncated_image_fails_the_checksum():
    """Only part of the payload was flashed; the rest of the flash is erased (0xFF)."""
    image = ParameterImage(DESIGN, [(0, random_words(5, 120))]).to_bytes()
    result = load(image[:20 + 2 * 80])
    assert (result.done, result.error, result.error_code) == (0, 1, LoaderError.BAD_CHECKSUM)


def test_a_corrupted_length_no_longer_matches_the_segments():
    image = bytearray(ParameterImage(DESIGN, [(0, random_words(6, 120))]).to_bytes())
    image[12] -= 1             # one word shorter than the segment needs
    result = load(bytes(image))
    assert (result.error, result.error_code, result.words_written) == (1, LoaderError.BAD_SEGMENT, 0)


def test_a_segment_past_the_bank_is_refused_before_any_write():
    image = ParameterImage(DESIGN, [(0, [1, 2]), (16380, random_words(7, 10))])
    result = load(image.to_bytes(), banks=1)
    assert (result.done, result.error, result.error_code) == (0, 1, LoaderError.TOO_LONG)
    assert result.words_written == 2           # the first segment, not a word of the second


def test_after_done_the_engine_port_reads_and_writes_the_bank():
    dut = BootLoadedSPRAM(design_id=DESIGN, banks=2, implementation="model", wake_cycles=WAKE)
    flash = SPIFlashModel(wake_cycles=WAKE)
    flash.program(DEFAULT_FLASH_OFFSET, ParameterImage(DESIGN, [(0, [7, 8, 9])]).to_bytes())
    seen = []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        while not ctx.get(dut.done):
            await ctx.tick()
        for addr, write, data in [(0x4001, 1, 0xBEEF), (0x4001, 0, 0), (2, 0, 0), (1, 1, 0x1111), (1, 0, 0)]:
            ctx.set(dut.addr, addr)
            ctx.set(dut.enable, 1)
            ctx.set(dut.write, write)
            ctx.set(dut.write_data, data)
            ctx.set(dut.write_mask, 0b0011)
            await ctx.tick()
            if not write:
                seen.append(ctx.get(dut.read_data))

    async def flash_process(ctx):
        await flash.process(ctx, dut.spi)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(flash_process, background=True)
    sim.run()
    assert seen == [0x00EF, 9, 0x0011]     # nibble mask 0b0011 writes the low byte only


@pytest.mark.parametrize("kwargs, name", [
    (dict(design_id=1 << 32), "design_id"), (dict(design_id=1, capacity_words=65537), "capacity_words"),
    (dict(design_id=1, flash_offset=1 << 24), "flash_offset"),
])
def test_bad_parameters_are_refused(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        ParameterLoader(**kwargs)
    gc.collect()    # a half-built part's "never used" warning comes here, where it is filtered
