"""Whole programs on the engine RTL in Verilator (payload and pixels through the host port,
with gaps): the logits equal ``int_network``'s; the busy cycles per image are the same for
every image (the sequencing does not depend on the data), equal ``program_core_cycles``
(the sequential core's exact count, from the program) and are printed beside the compiler's
cycle model (the pipelined engine's target; this core is far slower: ``docs/engine-rtl.md``)."""
import pytest
import torch

from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.rtl.cycles import program_core_cycles
from binaryvit.quantize.quantizer import quantize_model
from binaryvit.sim.engine_sim import run_engine_images
from engine_models import ENGINE_FORMATS, engine_quantized
from network_models import digit_images


def _check(program, intmodel, images):
    run = run_engine_images(program, images)
    want = run_int_network(intmodel, images).logits
    assert run.logits.dtype == torch.int64
    assert torch.equal(run.logits, want)
    assert run.instructions == [len(program.instructions)] * len(images)
    assert run.cycles == [program_core_cycles(program)] * len(images)
    model = sum(c.cycles for c in program.cycles)
    print(f"engine RTL: {run.cycles[0]} cycles per image, cycle model {model} "
          f"({run.cycles[0] / model:.1f}x)")
    return run


@pytest.mark.slow
def test_micro_program_in_verilator_on_digits_and_extreme_pixels():
    q = engine_quantized("micro")
    program = compile_intmodel(q.intmodel, proof=q.proof)
    lo, hi = q.intmodel.input_range
    images = torch.cat([digit_images(3), torch.full((1, 1, 8, 8), lo),
                        torch.full((1, 1, 8, 8), hi)])
    _check(program, q.intmodel, images)


@pytest.mark.slow
def test_trained_tiny_digits_on_20_test_images_in_verilator(trained_checkpoint):
    model = load_checkpoint(trained_checkpoint).build_model()
    data = load_digits_dataset()
    q = quantize_model(model, data.train_images[:64], ENGINE_FORMATS)
    program = compile_intmodel(q.intmodel, proof=q.proof)
    images = torch.as_tensor(data.test_images[:20]).to(torch.int64)
    _check(program, q.intmodel, images)
