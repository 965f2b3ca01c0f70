"""The engine RTL runs compiled instructions word for word like the ISS: each instruction of
the micro program starts from the ISS's memory after the instructions before it (the
tensors it writes filled with random words), runs in the Amaranth simulator from its place in
the program (fetched and decoded from memory), and the whole memory afterwards must equal
the ISS's, and its cycles must equal ``instruction_core_cycles`` (computed from the program).
Instruction classes the core does not run yet must stop it with ``error``."""
import numpy as np
import pytest
import torch

from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.isa import (Add, Mac, Mask, MatMul, MatMulMode, Threshold, Window,
                                     WindowMode)
from binaryvit.hw.engine.rtl.cycles import HALT_CYCLES, instruction_core_cycles
from engine_models import engine_quantized
from engine_rtl_harness import (iss_states, program_region, run_one_instruction, run_program_rtl,
                                run_rtl)
from network_models import digit_images


@pytest.fixture(scope="module")
def micro_model():
    return engine_quantized("micro")


@pytest.fixture(scope="module")
def micro(micro_model):
    return compile_intmodel(micro_model.intmodel, proof=micro_model.proof)


def _assert_bit_exact(program, index, seed=0):
    got, want, before, cycles, error = run_one_instruction(program, digit_images(1), index,
                                                           seed=seed)
    assert not error
    assert (want != before).any()          # the instruction wrote something
    differ = np.nonzero(got != want)[0]
    assert differ.size == 0, \
        f"instruction {index}: {differ.size} words differ, first at {differ[:8]}"
    # the harness counts the start cycle, the instruction and the patched-in HALT's fetch
    assert cycles == 1 + instruction_core_cycles(program.instructions[index]) + HALT_CYCLES
    return cycles


def _indices(program, wanted):
    return [i for i, ins in enumerate(program.instructions) if wanted(ins)]


def test_window_average_and_global_with_their_epilogues_are_bit_exact(micro):
    average = _indices(micro, lambda i: isinstance(i, Window) and i.mode == WindowMode.AVERAGE)[0]
    global_ = _indices(micro, lambda i: isinstance(i, Window) and i.mode == WindowMode.GLOBAL)[0]
    assert any(isinstance(s, Threshold) for s in micro.instructions[average].stages)
    for index in (average, global_):
        _assert_bit_exact(micro, index, seed=index)


def test_an_xnor_matmul_through_patches_with_a_tiled_shortcut_is_bit_exact(micro):
    index = next(k for k, i in enumerate(micro.instructions) if isinstance(i, MatMul)
                 and i.source.pattern.name == "PATCHES")
    assert any(isinstance(s, Add) and s.operand.pattern.name == "TILE"
               for s in micro.instructions[index].stages)
    _assert_bit_exact(micro, index, seed=index)


def test_mask_context_and_classifier_mac_are_bit_exact(micro):
    mask = _indices(micro, lambda i: isinstance(i, Mask))[-1]           # two heads
    context = _indices(micro, lambda i: isinstance(i, MatMul) and i.mode == MatMulMode.CONTEXT)
    classifier = _indices(micro, lambda i: isinstance(i, Mac))[-1]      # WIDE token sums
    assert micro.instructions[mask].heads == 2
    for index in (mask, context[-1], classifier):
        _assert_bit_exact(micro, index, seed=index)


@pytest.mark.slow
def test_every_instruction_of_micro_is_bit_exact(micro):
    for index in range(len(micro.instructions)):
        _assert_bit_exact(micro, index, seed=index)


@pytest.mark.slow
def test_the_whole_micro_program_gives_the_integer_networks_logits(micro_model, micro):
    g = torch.Generator().manual_seed(5)
    lo, hi = micro_model.intmodel.input_range
    images = [digit_images(3)[2:], torch.randint(lo, hi + 1, (1, 1, 8, 8), generator=g)]
    for image in images:
        logits, _, cycles, error, count = run_program_rtl(micro, image)
        want = run_int_network(micro_model.intmodel, image).logits[0]
        assert not error and count == len(micro.instructions)
        assert logits.tolist() == want.tolist()


def test_an_unknown_opcode_stops_the_core_with_error_and_writes_nothing(micro):
    _, memory, decoded = iss_states(micro, digit_images(1))
    image = memory[0].copy()
    region = program_region(micro)
    pc = region.address + 2 * decoded[3][0]
    image[pc] = (image[pc] & 0xFFF0) | 0x7            # opcode 7: no such instruction
    got, cycles, error, count = run_rtl(micro, image, pc, max_cycles=200)
    assert error and cycles < 200 and count == 0
    assert np.array_equal(got, image)


def test_a_halt_word_ends_the_program_with_done(micro):
    _, memory, decoded = iss_states(micro, digit_images(1))
    image = memory[0].copy()
    region = program_region(micro)
    image[region.address:region.address + 2] = 0
    got, cycles, error, count = run_rtl(micro, image, region.address, max_cycles=50)
    assert not error and count == 0 and cycles < 10
