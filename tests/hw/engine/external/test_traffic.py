"""Traffic across the external memory port per image: the classes add up, the block schedule
moves only the residual stream and the weights, stalls follow the port's bandwidth, and
what cannot be served fails at compile time in one line."""
from dataclasses import replace
from math import ceil

import pytest

from binaryvit.errors import CompileError
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import EngineConfig, MemoryBank
from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7
from binaryvit.hw.engine.traffic import ExternalMemory, plan_traffic, unit_of
from engine_models import engine_quantized

SDRAM_ENGINE = EngineConfig(name="sdram", pe=16, simd=64, vector_lanes=4,
                            banks=tuple(MemoryBank(f"sdram{i}", 1 << 22) for i in range(4)),
                            bit_buffer_bits=1 << 16, epilogue_constant_bits=None)


@pytest.fixture(scope="module")
def program():
    q = engine_quantized("tiny-digits")
    return compile_intmodel(q.intmodel, SDRAM_ENGINE, proof=q.proof)


def test_units_are_blocks_merges_and_the_ends():
    assert unit_of("stages.2.blocks.11.attention.q_proj") == "stages.2.blocks.11"
    assert unit_of("stages.1.merge.proj") == "stages.1.merge"
    assert unit_of("classifier") == "classifier" and unit_of("stem.norm") == "stem"


def test_both_schedules_move_the_same_weights_and_io(program):
    layer, block = (plan_traffic(program, ExternalMemory(), s) for s in ("layer", "block"))
    assert layer.bytes_by_class()["weights"] == block.bytes_by_class()["weights"]
    assert layer.bytes_by_class()["weights"] >= program.payload_bytes
    # the host writes the image, the stem reads it, the classifier writes the logits
    image = 64 * 1 * 2
    logits = 10 * SDRAM_ENGINE.wide_words * 2
    assert layer.bytes_by_class()["io"] == block.bytes_by_class()["io"] == 2 * image + logits
    assert block.bytes_by_class()["activations"] == 0
    assert block.total_bytes < layer.total_bytes
    assert layer.compute_cycles == block.compute_cycles == program.total_cycles


def test_block_schedule_moves_each_crossing_tensor_once_per_unit(program):
    """tiny-digits' first block (64 tokens × 32 channels: 4,096 bytes per STREAM tensor, 256
    per sign tensor) takes from the stem its residual stream, its norm1 and the q input's
    signs (the stem's instruction fuses the block's first norm and sign), and leaves the
    same three for block 1: 2 × (4,096 + 4,096 + 256) bytes. Layer by layer the residual
    stream is read by several instructions, so more crosses."""
    block = plan_traffic(program, ExternalMemory(), "block")
    layer = plan_traffic(program, ExternalMemory(), "layer")

    def residual(plan, unit):
        return sum(t.bytes["residual"] for t in plan.instructions if t.unit == unit)

    assert residual(block, "stages.0.blocks.0") == 2 * (4096 + 4096 + 256)
    assert residual(layer, "stages.0.blocks.0") > residual(block, "stages.0.blocks.0")
    assert layer.bytes_by_class()["residual"] > block.bytes_by_class()["residual"]


def test_stalls_are_the_transfer_time_beyond_the_compute(program):
    slow = ExternalMemory(efficiency=0.01)
    plan = plan_traffic(program, slow, "layer")
    for t in plan.instructions:
        want = max(0, ceil(t.total_bytes / (2 * 0.01)) - t.compute)
        assert t.stall == want
    assert plan.stall_cycles > 0
    assert plan.images_per_second() == pytest.approx(100e6 / (plan.compute_cycles
                                                              + plan.stall_cycles))
    fast = plan_traffic(program, ExternalMemory(efficiency=1.0), "block")
    assert fast.stall_cycles < plan.stall_cycles


def test_a_working_set_larger_than_the_memory_fails_in_one_line(program):
    tiny = replace(IS42S16160G_7, name="tiny", rows=4)          # 4 × 4 × 512 words: 16 KiB
    with pytest.raises(CompileError, match=r"^the working set needs \d+ bytes .* external "
                                           r"memory 'ulx3s-sdram' \(tiny\) has 16384 bytes$"):
        plan_traffic(program, ExternalMemory(chip=tiny), "layer")


def test_a_port_narrower_than_a_burst_word_fails_in_one_line(program):
    with pytest.raises(CompileError, match=r"the port is 8 bits wide but a burst of the "
                                           r"IS42S16160G-7 delivers a 16-bit word .* at "
                                           r"least 16 bits$"):
        plan_traffic(program, ExternalMemory(port_bits=8), "block")


def test_a_block_that_does_not_fit_the_on_chip_buffer_fails_in_one_line(program):
    with pytest.raises(CompileError, match=r"^schedule 'block': unit 'stem' "
                                           r"keeps \d+ bytes of tensors on chip at instruction "
                                           r"'.*' but the on-chip buffer of 'ulx3s-sdram' "
                                           r"holds 1000 bytes$"):
        plan_traffic(program, ExternalMemory(on_chip_bytes=1000), "block")
    # the layer schedule keeps nothing on chip between instructions
    plan_traffic(program, ExternalMemory(on_chip_bytes=1000), "layer")


def test_unknown_schedule():
    with pytest.raises(CompileError, match="schedule must be one of"):
        plan_traffic(None, ExternalMemory(), "tiles")


def test_the_bench_refuses_a_narrow_port_in_one_line_with_exit_2():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[4] / "bench" / "bench_paper_scale.py"
    done = subprocess.run([sys.executable, str(bench), "--port-bits", "8"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "the port is 8 bits wide" in done.stderr


def test_fit_fuses_the_units_that_fit_and_runs_the_rest_layer_by_layer(program):
    layer = plan_traffic(program, ExternalMemory(on_chip_bytes=1000), "layer")
    block = plan_traffic(program, ExternalMemory(), "block")
    peaks = block.unit_peak_bytes
    assert layer.fused_units == [] and set(block.fused_units) == set(peaks)
    assert plan_traffic(program, ExternalMemory(on_chip_bytes=1), "fit").total_bytes \
        == layer.total_bytes
    assert plan_traffic(program, ExternalMemory(), "fit").total_bytes == block.total_bytes
    middle = sorted(set(peaks.values()))[len(set(peaks.values())) // 2]
    fit = plan_traffic(program, ExternalMemory(on_chip_bytes=middle), "fit")
    assert set(fit.fused_units) == {u for u, p in peaks.items() if p <= middle}
    assert block.total_bytes < fit.total_bytes < layer.total_bytes


def test_tile_equals_block_when_every_unit_fits(program):
    block = plan_traffic(program, ExternalMemory(), "block")
    tile = plan_traffic(program, ExternalMemory(), "tile")
    assert tile.tiles == {}
    assert tile.bytes_by_class() == block.bytes_by_class()
    assert tile.compute_cycles == block.compute_cycles


def test_tile_runs_the_large_blocks_in_token_tiles_that_fit(program):
    """tiny-digits' stage-0 blocks need 17,408 bytes whole (8 × 8 tokens); with 9,000 bytes
    they run in tiles of 2 token rows (4 tiles). Pass 1 is the spatial reduction and the
    K/V projections (instructions 1, 3, 4, 5 of the listing). The sr pool reads the
    block's norm1 (4,096 bytes) in pass 1 and q_proj reads it again in pass 2: the unit's
    residual is the block schedule's 2 × (4,096 + 4,096 + 256) plus 4,096."""
    memory = ExternalMemory(on_chip_bytes=9000)
    tile = plan_traffic(program, memory, "tile")
    block = plan_traffic(program, ExternalMemory(), "block")
    assert set(tile.tiles) == {"stages.0.blocks.0", "stages.0.blocks.1"}
    choice = tile.tiles["stages.0.blocks.0"]
    assert (choice.rows, choice.grid, choice.tiles, choice.pass1) == (2, 8, 4, (1, 3, 4, 5))
    assert choice.need <= 9000
    assert tile.bytes_by_class()["activations"] == 0

    def unit(plan, name, cls):
        return sum(t.bytes[cls] for t in plan.instructions if t.unit == name)

    assert unit(tile, "stages.0.blocks.0", "residual") == 2 * (4096 + 4096 + 256) + 4096
    # the sr pool runs per tile (4 times its constants); sr_proj on the 16 reduced tokens once
    rows = {t.label: t for t in tile.instructions}
    brows = {t.label: t for t in block.instructions}
    pool, proj = "stages.0.blocks.0.attention.sr_pool", "stages.0.blocks.0.attention.sr_proj"
    assert rows[pool].bytes["weights"] == 4 * brows[pool].bytes["weights"]
    assert rows[proj].bytes["weights"] == brows[proj].bytes["weights"]
    overhead = SDRAM_ENGINE.instruction_overhead
    assert rows[pool].compute == brows[pool].compute + 3 * overhead
    assert rows[proj].compute == brows[proj].compute
    # units that fit are unchanged
    assert unit(tile, "stages.1.blocks.0", "residual") == unit(block, "stages.1.blocks.0",
                                                               "residual")
    assert block.total_bytes < tile.total_bytes


def test_a_unit_no_tile_fits_fails_in_one_line(program):
    with pytest.raises(CompileError, match=r"^schedule 'tile': unit 'stem' needs \d+ bytes "
                                           r"on chip even in tiles of one of its 8 token rows "
                                           r"but the on-chip buffer holds 1000 bytes$"):
        plan_traffic(program, ExternalMemory(on_chip_bytes=1000), "tile")


def test_wide_buffers_divide_only_the_bank_term(program):
    from binaryvit.hw.engine.traffic import wide_buffer_cycles

    assert wide_buffer_cycles(program, SDRAM_ENGINE, 1) == [c.cycles for c in program.cycles]
    wide = wide_buffer_cycles(program, SDRAM_ENGINE, 1 << 20)
    overhead = SDRAM_ENGINE.instruction_overhead
    assert wide == [max(c.array, c.vector, 1) + overhead for c in program.cycles]
    four = wide_buffer_cycles(program, SDRAM_ENGINE, 4)
    assert all(w <= f <= c.cycles for w, f, c in zip(wide, four, program.cycles))
    plan = plan_traffic(program, ExternalMemory(), "block", compute=four)
    assert plan.compute_cycles == sum(four)


def test_the_ulx3s_engine_fits_the_ecp5_budget_and_a_larger_one_does_not():
    from binaryvit.errors import ConfigError
    from binaryvit.hw.engine.external.ulx3s_engine import (
        BUFFER_WORDS_PER_CYCLE, ON_CHIP_BYTES, ULX3S_SDRAM_ENGINE, ecp5_budget)

    budget = ecp5_budget(ULX3S_SDRAM_ENGINE, ON_CHIP_BYTES, BUFFER_WORDS_PER_CYCLE)
    # 32 lanes × 2 multipliers × 2 MULT18X18D; 192 buffer + 4 bit buffer + 12 reserved
    assert budget == {"MULT18X18D": (128, 156), "DP16KD": (208, 208)}
    with pytest.raises(ConfigError, match=r"needs 160 MULT18X18D but the device has 156$"):
        ecp5_budget(replace(ULX3S_SDRAM_ENGINE, vector_lanes=40), ON_CHIP_BYTES, 16)
    with pytest.raises(ConfigError, match=r"needs 209 DP16KD"):
        ecp5_budget(ULX3S_SDRAM_ENGINE, ON_CHIP_BYTES + 1, 16)


@pytest.mark.slow
def test_binaryvit_s_tiles_fit_the_ulx3s_buffers():
    """binaryvit-s (quantize and compile ~2-3 min) on the ULX3S's 384 KiB of buffers: every
    tiled unit's tile fits; stages 0-1 keep their weights on chip (read once, not once per
    tile: no more than the block schedule reads for them), stage 2's blocks (K and V of 196
    tokens whole) do not and read them per tile (more than the block schedule); the stage-0
    blocks cross the residual stream, norm1 and the q input's signs once in and once out,
    and norm1 once more for the K/V pass: 2 × (401,408 + 401,408 + 25,088) + 401,408 bytes."""
    from engine_models import binaryvit_s_quantized

    from binaryvit.hw.engine.external.ulx3s_engine import ON_CHIP_BYTES

    q, _ = binaryvit_s_quantized()
    engine = replace(SDRAM_ENGINE, accumulator_bits=48, wide_words=3)
    program = compile_intmodel(q.intmodel, engine, proof=q.proof)
    memory = ExternalMemory(on_chip_bytes=ON_CHIP_BYTES)
    tile = plan_traffic(program, memory, "tile")
    block = plan_traffic(program, ExternalMemory(on_chip_bytes=1 << 40), "block")
    fit = plan_traffic(program, memory, "fit")
    assert all(c.need <= ON_CHIP_BYTES for c in tile.tiles.values())
    assert {u for u in tile.tiles if u.startswith(("stages.0.", "stages.1.", "stages.2.",
                                                     "stem"))} == set(tile.tiles)
    assert len([u for u in tile.tiles if u.startswith("stages.2.blocks.")]) == 8

    def weights(plan, unit):
        return sum(t.bytes["weights"] for t in plan.instructions if t.unit == unit)

    for unit, choice in tile.tiles.items():
        if unit.startswith(("stages.0.blocks", "stages.1.blocks")):
            assert choice.weights_held and weights(tile, unit) <= weights(block, unit)
        if unit.startswith("stages.2.blocks"):
            assert not choice.weights_held and weights(tile, unit) > weights(block, unit)
    residual = sum(t.bytes["residual"] for t in tile.instructions
                   if t.unit == "stages.0.blocks.1")
    assert residual == 2 * (401408 + 401408 + 25088) + 401408
    assert block.total_bytes < tile.total_bytes < fit.total_bytes
