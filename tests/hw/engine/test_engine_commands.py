"""The engine through the CLI: quantize --engine, generate --arch engine (and the default
for the iCEBreaker), sim on the engine RTL, update-weights without synthesis, and the one-line
refusals (a model at the wrong formats, a checkpoint of another architecture, a build the
estimate says will not fit)."""
import json

import numpy as np
import pytest
import torch

from binaryvit.cli import main
from binaryvit.golden.float_model.checkpoint import save_checkpoint
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref.int_network import int_predict
from binaryvit.golden.intref.intmodel import load_intmodel, save_intmodel
from binaryvit.hw.engine.board.design import load_engine_design
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import UP5K
from binaryvit.hw.engine.parameter_image import read_parameter_image
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import quantize_model
from engine_models import ENGINE_FORMATS, engine_quantized
from network_models import MICRO, digits


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def micro_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    save_intmodel(engine_quantized("micro").intmodel, out / "intmodel.npz")
    return out


def test_generate_engine_writes_the_design_and_a_parameter_image_of_the_program(micro_out, capsys):
    assert main(["generate", str(micro_out), "--arch", "engine"]) == 0
    assert "engine for the icebreaker" in capsys.readouterr().out
    design = load_engine_design(micro_out / "rtl" / "engine.json")
    image = read_parameter_image(micro_out / "params.bin", expected_design_id=design.design_id)
    program = compile_intmodel(engine_quantized("micro").intmodel, UP5K)
    memory = np.zeros(UP5K.total_words, dtype=np.uint16)
    for address, words in program.segment_words():
        memory[address:address + len(words)] = words
    assert np.array_equal(image.memory(UP5K.total_words), memory)
    assert (design.program_address, design.input_address, design.output_address) == \
        (program.program_address, program.input.address, program.output.address)
    assert (design.pixels, design.classes, design.pixel_width, design.pixel_signed) == (64, 10, 5, False)
    estimate = json.loads((micro_out / "reports" / "estimate.json").read_text())
    assert estimate["arch"] == "engine" and estimate["cycles_per_image"] == program.total_cycles
    assert estimate["resources"]["ice40"]["total"]["sprams"] == 4
    assert not (micro_out / "rtl" / "network.json").exists()
    assert (micro_out / "rtl" / "engine.v").read_text().count("SB_SPRAM256KA") == 4


def test_generate_for_the_icebreaker_defaults_to_the_engine(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    save_intmodel(engine_quantized("tiny-digits").intmodel, out / "intmodel.npz")
    assert main(["generate", str(out), "--board", "icebreaker"]) == 0
    printed = capsys.readouterr().out
    assert "no folding fits" in printed and "generating the engine instead" in printed
    assert load_engine_design(out / "rtl" / "engine.json").classes == 10


def test_generate_engine_refuses_a_model_at_wider_formats_naming_the_option(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    torch.manual_seed(0)
    model = BinaryViT(MICRO).eval()
    q = quantize_model(model, torch.as_tensor(digits().train_images[:64]), QuantFormats())
    save_intmodel(q.intmodel, out / "intmodel.npz")
    assert main(["generate", str(out), "--arch", "engine"]) == 2
    _one_error_line(capsys, "stream_width=24", "--stream-width 16")
    assert not (out / "params.bin").exists()


def test_update_weights_writes_a_new_image_for_the_same_design_and_refuses_another(micro_out, tmp_path, capsys):
    assert main(["generate", str(micro_out), "--arch", "engine"]) == 0
    design = load_engine_design(micro_out / "rtl" / "engine.json")
    before = (micro_out / "params.bin").read_bytes()
    # another seed: other weights and constants, the same architecture and memory plan
    torch.manual_seed(5)
    retrained = quantize_model(BinaryViT(MICRO).eval(),
                               torch.as_tensor(digits().train_images[:64]), ENGINE_FORMATS)
    save_intmodel(retrained.intmodel, tmp_path / "retrained.npz")
    capsys.readouterr()
    assert main(["update-weights", str(micro_out), str(tmp_path / "retrained.npz")]) == 0
    assert "iceprog -o 1M" in capsys.readouterr().out
    after = read_parameter_image(micro_out / "params.bin", expected_design_id=design.design_id)
    assert after.to_bytes() != before
    want = compile_intmodel(retrained.intmodel, UP5K)
    assert [(a, list(w)) for a, w in after.segments] == \
        [(a, list(w)) for a, w in want.segment_words()]
    # a checkpoint of another architecture: refused, the image left alone
    save_intmodel(engine_quantized("tiny-digits").intmodel, tmp_path / "other.npz")
    assert main(["update-weights", str(micro_out), str(tmp_path / "other.npz")]) == 2
    _one_error_line(capsys, "does not fit", "engine design", "plan")
    assert read_parameter_image(micro_out / "params.bin").to_bytes() == after.to_bytes()


def test_build_refuses_an_engine_the_estimate_says_does_not_fit(micro_out, capsys):
    assert main(["generate", str(micro_out), "--arch", "engine"]) == 0
    path = micro_out / "reports" / "estimate.json"
    estimate = json.loads(path.read_text())
    estimate["resources"]["ice40"]["total"]["dsps"] = 9
    path.write_text(json.dumps(estimate))
    capsys.readouterr()
    assert main(["build", str(micro_out), "--board", "icebreaker"]) == 2
    _one_error_line(capsys, "ICESTORM_DSP: 9 needed of 8", "--force")
    assert not (micro_out / "build").exists()


def test_sim_runs_the_engine_rtl_against_the_integer_reference(micro_out, capsys):
    assert main(["generate", str(micro_out), "--arch", "engine"]) == 0
    assert main(["sim", str(micro_out), "--images", "2"]) == 0
    report = json.loads((micro_out / "reports" / "sim.json").read_text())
    want = load_intmodel(micro_out / "intmodel.npz")
    from binaryvit.golden.intref.int_network import run_int_network
    logits = run_int_network(want, torch.as_tensor(digits().test_images[:2]).to(torch.int64)).logits
    assert [im["rtl_logits"] for im in report["images"]] == logits.tolist()
    assert report["totals"]["mismatches"] == 0
    assert "0 mismatches" in capsys.readouterr().out
    assert main(["sim", str(micro_out), "--per-cycle"]) == 2
    _one_error_line(capsys, "--per-cycle", "dataflow")


def test_quantize_engine_prints_the_accuracy_at_both_formats(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "micro.pt", BinaryViT(MICRO).eval(), {})
    out = tmp_path / "out"
    assert main(["quantize", str(checkpoint), "-o", str(out), "--engine"]) == 0
    printed = capsys.readouterr().out
    model = load_intmodel(out / "intmodel.npz")
    assert (model.formats["stream_width"], model.formats["const_bits"]) == (16, 16)
    data = digits()
    top1 = float((int_predict(model, torch.as_tensor(data.test_images)) ==
                  torch.as_tensor(data.test_labels)).float().mean())
    line = next(l for l in printed.splitlines() if l.startswith("integer top-1"))
    assert f"({len(data.test_labels)} images)" in line
    assert f"{100 * top1:.2f} % at these formats (stream 16, constants 16, accumulator 36 bits)" in line
    assert "at the default formats (stream 24, constants 20, accumulator 48 bits)" in line


@pytest.mark.slow
def test_flow_for_the_icebreaker_targets_the_engine_end_to_end(trained_checkpoint, tmp_path, capsys):
    """`flow --board icebreaker` on the trained fixture: quantize at 24 bits, no dataflow
    folding fits, quantize again at the engine's formats (both accuracies printed), compile,
    one image through the engine RTL bit-exact, then the build (exit 2 while the core does
    not fit the UP5K, naming the overflow)."""
    import shutil
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(trained_checkpoint, out / "model.pt")
    code = main(["flow", "-o", str(out), "--board", "icebreaker", "--images", "1",
                 "--seeds", "1", "--no-progress"])
    printed = capsys.readouterr()
    assert "the flow targets the engine instead" in printed.out
    assert "at the engine's formats (stream 16, constants 16, accumulator 36 bits)" in printed.out
    assert "at the board formats (stream 24" in printed.out
    assert "0 mismatching logits" in printed.out
    assert (out / "params.bin").is_file() and (out / "rtl" / "engine.json").is_file()
    build = json.loads((out / "build" / "icebreaker" / "build.json").read_text())
    if code == 0:
        assert "iceprog -o 1M" in printed.out and build["bitstream"]
    else:
        assert code == 2 and "does not fit" in printed.err


def test_designs_the_uart_protocol_cannot_carry_and_damaged_design_files_are_refused(tmp_path):
    from binaryvit.errors import ConfigError, DataError
    from binaryvit.hw.engine.board.design import engine_design
    program = compile_intmodel(engine_quantized("micro").intmodel, UP5K)
    with pytest.raises(ConfigError, match=r"pixels in \[-300, 300\] need 10 bits"):
        engine_design(program, (-300, 300), (1, 8, 8))
    assert engine_design(program, (-8, 7), (1, 8, 8)).pixel_width == 4
    with pytest.raises(ConfigError, match="not a STREAM of the"):
        engine_design(program, (0, 16), (3, 8, 8))
    path = tmp_path / "engine.json"
    path.write_text('{"arch": "engine", "config": {}}')
    with pytest.raises(DataError, match="not an engine design"):
        load_engine_design(path)
    with pytest.raises(DataError, match="generate the engine first"):
        load_engine_design(tmp_path / "missing.json")
