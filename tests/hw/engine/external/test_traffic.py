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
        plan_traffic(None, ExternalMemory(), "tile")


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
