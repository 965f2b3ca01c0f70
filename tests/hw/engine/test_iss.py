"""The instruction-set simulator runs compiled programs on their memory images: its logits
equal the integer reference's (``int_network``) on micro, on the trained tiny-digits model over
the whole digits test split, and on a binaryvit-s image; and a corrupted payload word shows."""
import numpy as np
import pytest
import torch

from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import EngineConfig, MemoryBank
from binaryvit.hw.engine.isa import MatMul, MatMulMode
from binaryvit.hw.engine.iss import EngineSimulator, run_program
from binaryvit.quantize.quantizer import quantize_model
from engine_models import ENGINE_FORMATS, binaryvit_s_quantized, engine_quantized
from network_models import digit_images


def _assert_same_logits(program, intmodel, images):
    got = run_program(program, images)
    want = run_int_network(intmodel, images).logits
    assert got.dtype == want.dtype == torch.int64
    assert np.array_equal(got.numpy(), want.numpy())


def test_micro_on_digits_and_on_extreme_pixels():
    q = engine_quantized("micro")
    program = compile_intmodel(q.intmodel, proof=q.proof)
    lo, hi = q.intmodel.input_range
    g = torch.Generator().manual_seed(3)
    extreme = torch.stack([torch.full((1, 8, 8), lo), torch.full((1, 8, 8), hi),
                           torch.randint(lo, hi + 1, (1, 8, 8), generator=g),
                           torch.where(torch.rand(1, 8, 8, generator=g) < 0.5, lo, hi)])
    _assert_same_logits(program, q.intmodel, torch.cat([digit_images(64), extreme]))


def test_simulator_fetches_every_instruction_from_memory():
    q = engine_quantized("micro")
    program = compile_intmodel(q.intmodel, proof=q.proof)
    trace: list[str] = []
    EngineSimulator(program).run(digit_images(2), trace)
    assert trace == [type(i).__name__ for i in program.instructions]


def test_a_corrupted_weight_word_changes_the_logits():
    q = engine_quantized("micro")
    program = compile_intmodel(q.intmodel, proof=q.proof)
    images = digit_images(64)
    clean = run_program(program, images)
    region = next(r for r in program.regions if r.name.endswith("mlp.fc1/weight_bits"))
    offset = 0
    for s in program.segments:   # the region's place in the concatenated payload
        if s.address <= region.address < s.address + s.words:
            offset += region.address - s.address
            break
        offset += s.words
    program.payload[offset:offset + region.words] ^= 0xFFFF
    assert not torch.equal(run_program(program, images), clean)


@pytest.fixture(scope="module")
def trained_digits(trained_checkpoint):
    model = load_checkpoint(trained_checkpoint).build_model()
    data = load_digits_dataset()
    q = quantize_model(model, data.train_images[:64], ENGINE_FORMATS)
    return q, data


def test_trained_tiny_digits_on_all_360_test_images(trained_digits):
    q, data = trained_digits
    images = torch.as_tensor(data.test_images).to(torch.int64)
    assert len(images) == 360
    program = compile_intmodel(q.intmodel, proof=q.proof)
    assert any(isinstance(i, MatMul) and i.mode == MatMulMode.CONTEXT
               for i in program.instructions)
    _assert_same_logits(program, q.intmodel, images)


BINARYVIT_S_ENGINE = EngineConfig(name="sdram-4x8MiB", pe=16, simd=64, vector_lanes=4,
                                  banks=tuple(MemoryBank(f"sdram{i}", 1 << 22) for i in range(4)),
                                  bit_buffer_bits=1 << 16, accumulator_bits=48, wide_words=3,
                                  epilogue_constant_bits=None)


def test_binaryvit_s_on_a_random_image():
    q, image = binaryvit_s_quantized()
    program = compile_intmodel(q.intmodel, BINARYVIT_S_ENGINE, proof=q.proof)
    assert len(program.instructions) < len(q.intmodel.steps) // 4
    _assert_same_logits(program, q.intmodel, image)


@pytest.mark.parametrize("config", [
    EngineConfig(name="one-bank", banks=(MemoryBank("m", 1 << 16),)),
    EngineConfig(name="three-banks", pe=2, simd=8, vector_lanes=1, lane_multipliers=1,
                 banks=tuple(MemoryBank(f"m{i}", 3000) for i in range(3)), bit_buffer_bits=64),
    EngineConfig(name="eight-banks", pe=16, simd=64, vector_lanes=4,
                 banks=tuple(MemoryBank(f"m{i}", 2560) for i in range(8)), wide_words=3),
], ids=lambda c: c.name)
def test_micro_on_other_engines(config):
    """Other bank counts, sizes, array shapes and wide-word widths: the plan changes, the
    logits do not."""
    q = engine_quantized("micro")
    program = compile_intmodel(q.intmodel, config, proof=q.proof)
    # the placement minimises the cycle model, so it need not fill every bank, but it
    # spreads the tensors over several and never past the last
    banks = {t.bank for t in program.tensors}
    assert banks <= set(range(len(config.banks)))
    assert len(banks) >= min(3, len(config.banks))
    _assert_same_logits(program, q.intmodel, digit_images(32))
