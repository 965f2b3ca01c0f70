"""The engine RTL runs compiled instructions word for word like the ISS: each instruction of
the micro program starts from the ISS's memory after the instructions before it (the
tensors it writes filled with random words), runs in the Amaranth simulator from its place in
the program (fetched and decoded from memory), and the whole memory afterwards must equal
the ISS's. Instruction classes the core does not run yet must stop it with ``error``."""
import numpy as np
import pytest

from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.isa import Mac, Mask, MatMul, MatMulMode, Window, WindowMode
from engine_models import engine_quantized
from engine_rtl_harness import iss_states, program_region, run_one_instruction, run_rtl
from network_models import digit_images


@pytest.fixture(scope="module")
def micro():
    q = engine_quantized("micro")
    return compile_intmodel(q.intmodel, proof=q.proof)


def _assert_bit_exact(program, index, seed=0):
    got, want, before, cycles, error = run_one_instruction(program, digit_images(1), index,
                                                           seed=seed)
    assert not error
    assert (want != before).any()          # the instruction wrote something
    differ = np.nonzero(got != want)[0]
    assert differ.size == 0, f"instruction {index}: {differ.size} words differ, first at {differ[:8]}"
    return cycles


def _indices(program, wanted):
    return [i for i, ins in enumerate(program.instructions) if wanted(ins)]


def test_window_modes_and_their_epilogues_are_bit_exact(micro):
    ins = micro.instructions
    average = _indices(micro, lambda i: isinstance(i, Window) and i.mode == WindowMode.AVERAGE)[0]
    five_tall = next(k for k, i in enumerate(ins) if isinstance(i, Window) and i.kh == 5
                     and len(i.stages) == 5)       # Affine, Add, Affine, Threshold, Store
    global_ = _indices(micro, lambda i: isinstance(i, Window) and i.mode == WindowMode.GLOBAL)[0]
    for index in (average, five_tall, global_):
        _assert_bit_exact(micro, index)


def test_xnor_matmuls_with_patches_tile_and_group_average_are_bit_exact(micro):
    xnor = _indices(micro, lambda i: isinstance(i, MatMul) and i.mode == MatMulMode.XNOR)
    patches = next(k for k in xnor if micro.instructions[k].source.pattern.name == "PATCHES")
    grouped = next(k for k in xnor if any(type(s).__name__ == "GroupAverage"
                                          for s in micro.instructions[k].stages))
    for index in (xnor[1], patches, grouped):
        _assert_bit_exact(micro, index, seed=index)


@pytest.mark.slow
def test_every_window_and_xnor_matmul_of_micro_is_bit_exact(micro):
    done = _indices(micro, lambda i: isinstance(i, Window)
                    or (isinstance(i, MatMul) and i.mode == MatMulMode.XNOR))
    assert len(done) >= 25      # 29 of micro's 35 instructions when this was written
    for index in done:
        _assert_bit_exact(micro, index, seed=index)


def test_an_instruction_the_core_cannot_run_stops_it_with_error(micro):
    _, memory, decoded = iss_states(micro, digit_images(1))
    region = program_region(micro)
    for kind in (Mac, Mask):
        index = next(k for k, (_, i) in enumerate(decoded) if isinstance(i, kind))
        pc = region.address + 2 * decoded[index][0]
        got, cycles, error, _ = run_rtl(micro, memory[0], pc, max_cycles=200)
        assert error and cycles < 200
        assert np.array_equal(got, memory[0])     # nothing written


def test_a_halt_word_ends_the_program_with_done(micro):
    _, memory, decoded = iss_states(micro, digit_images(1))
    image = memory[0].copy()
    region = program_region(micro)
    image[region.address:region.address + 2] = 0
    got, cycles, error, count = run_rtl(micro, image, region.address, max_cycles=50)
    assert not error and count == 0 and cycles < 10
