"""`binaryvit quantize` end to end on the trained fixture, and its refusals of bad input."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from binaryvit.cli import main
from binaryvit.golden.float_model.checkpoint import load_checkpoint, save_checkpoint
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref.intmodel import load_intmodel
from binaryvit.quantize.fold import fold_model
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import quantize_model

Q_PROJ = "stages.0.blocks.0.attention.q_proj"


def run_cli(capsys, *argv):
    code = main(["quantize", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def quantized(trained_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("quantized")
    code = main(["quantize", str(trained_checkpoint), "-o", str(out),
                 "--calibration-images", "64"])
    assert code == 0
    return out


def test_outputs_and_hashes(quantized):
    manifest = json.loads((quantized / "manifest.json").read_text())
    assert manifest["format"] == "binaryvit-manifest" and manifest["stage"] == "quantize"
    files = manifest["files"]
    # no weight ROMs and no folding: generate chooses the one folding and writes them
    assert list(files) == ["intmodel.npz"] and "folding" not in manifest
    assert not (quantized / "weights").exists()
    for rel, digest in files.items():
        assert hashlib.sha256((quantized / rel).read_bytes()).hexdigest() == digest, rel
    assert not [p for p in quantized.iterdir() if p.name.startswith(".")]
    assert set(manifest["versions"]) >= {"binaryvit", "torch", "numpy", "python"}
    assert manifest["config"]["name"] == "tiny-digits"
    assert manifest["overflow_proof"]["max_bits"] <= manifest["formats"]["acc_width"]


def test_binary_weights_are_the_sign_of_the_centred_weights(quantized, trained_checkpoint):
    step = load_intmodel(quantized / "intmodel.npz").step(Q_PROJ)
    model = load_checkpoint(trained_checkpoint).build_model()
    w = model.stages[0].blocks[0].attention.q_proj.weight.detach()
    expected = (w - w.mean(dim=1, keepdim=True)) >= 0
    assert torch.equal(torch.as_tensor(step.arrays["weight_bits"]).bool(), expected)


def test_written_intmodel_is_the_fold_at_the_recorded_formats(quantized, trained_checkpoint):
    manifest = json.loads((quantized / "manifest.json").read_text())
    loaded = load_intmodel(quantized / "intmodel.npz")
    f = manifest["formats"]
    formats = QuantFormats(stream_width=f["stream_width"], stream_frac=f["stream_frac"],
                           const_bits=f["const_bits"], logit_width=f["logit_width"],
                           theta_bits=f["theta_bits"], acc_width=f["acc_width"],
                           input_range=tuple(manifest["input_range"]))
    assert manifest["input_range"] == [0, 16]  # digits pixels
    again = fold_model(load_checkpoint(trained_checkpoint).build_model(), formats)
    assert [s.name for s in loaded.steps] == [s.name for s in again.steps]
    for a, b in zip(loaded.steps, again.steps):
        assert a.params == b.params, a.name
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=a.name)
    assert manifest["steps"] == [s.describe() for s in loaded.steps]


def test_existing_outputs_are_refused_unless_force(quantized, trained_checkpoint, capsys):
    before = (quantized / "manifest.json").read_bytes()
    code, _, err = run_cli(capsys, trained_checkpoint, "-o", quantized)
    assert code == 2 and err.count("\n") == 1 and "--force" in err
    assert (quantized / "manifest.json").read_bytes() == before


def test_force_replaces_outputs(trained_checkpoint, tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"keep me")
    (tmp_path / "intmodel.npz").write_bytes(b"old")
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "stale.hex").write_text("0\n")
    code, out, _ = run_cli(capsys, trained_checkpoint, "-o", tmp_path, "--force",
                           "--calibration-images", "32")
    assert code == 0 and "wrote" in out
    # weights/ held the ROM images generate wrote for the model being replaced
    assert not (tmp_path / "weights").exists()
    assert (tmp_path / "model.pt").read_bytes() == b"keep me"
    load_intmodel(tmp_path / "intmodel.npz")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_width_that_would_overflow(trained_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(capsys, trained_checkpoint, "-o", tmp_path, "--acc-width", "32",
                           "--calibration-images", "16")
    assert code == 2 and err.count("\n") == 1
    assert "would overflow" in err and "more than the accumulator width 32" in err
    assert list(tmp_path.iterdir()) == []


def test_stream_too_narrow(trained_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(capsys, trained_checkpoint, "-o", tmp_path, "--stream-width", "4",
                           "--calibration-images", "16")
    assert code == 2 and "stream_width=4 is too narrow" in err


def test_checkpoint_of_another_version(tmp_path, capsys, trained_checkpoint):
    payload = torch.load(trained_checkpoint, weights_only=True)
    payload["format_version"] = 7
    bad = tmp_path / "v7.pt"
    torch.save(payload, bad)
    code, _, err = run_cli(capsys, bad, "-o", tmp_path / "out")
    assert code == 2 and "format version 7" in err and err.count("\n") == 1


def test_float_checkpoint_is_refused(tmp_path, capsys):
    path = tmp_path / "float.pt"
    save_checkpoint(path, BinaryViT(get_config("tiny-digits").as_float()), {})
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "out")
    assert code == 2 and "binary=False" in err


def test_checkpoint_of_another_config_than_the_data(tmp_path, capsys):
    path = tmp_path / "big.pt"
    config = get_config("tiny-digits").replace(name="tiny-16", image_size=(16, 16))
    save_checkpoint(path, BinaryViT(config), {})
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "out")
    assert code == 2 and "needs 1 channel(s) of 16x16" in err


def test_missing_checkpoint(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path / "none.pt", "-o", tmp_path / "out")
    assert code == 2 and "not found" in err


def test_binaryvit_s_folds_and_proves(tmp_path):
    """The paper's config: every binary layer's shape, 21,196,800 weight bits, a 48-bit proof."""
    torch.manual_seed(0)
    model = BinaryViT(get_config("binaryvit-s")).eval()
    q = quantize_model(model, None, QuantFormats(stream_frac=16, input_range=(0, 255)))
    layers = {s.name: s.arrays["weight_bits"].shape for s in q.intmodel.xnor_layers()}
    # per block q, k, v, out (+ sr where r > 1), fc1, fc2; 19 blocks, 3 merges
    assert len(layers) == 3 * 7 + 4 * 7 + 8 * 6 + 4 * 6 + 3
    assert layers["stages.3.blocks.3.mlp.fc2"] == (512, 2048)
    assert layers["stages.3.merge.conv"] == (512, 1024)  # 256 -> 512 channels, 2x2 patches
    assert layers["stages.0.blocks.2.attention.sr_proj"] == (64, 64)
    # (5·64² + 2·64·512)·3 + (5·128² + 2·128·1024)·4 + (4·256² + 2·256·1024)·8
    # + (4·512² + 2·512·2048)·4 + 8·(64² + 128² + 256²)
    assert sum(n * k for n, k in layers.values()) == 21_196_800
    assert q.proof.max_bits <= 48
    lut = q.intmodel.step("stages.0.blocks.0.attention.prob_binarizer").arrays["lut"]
    assert len(lut) == 65 and lut[0] >= 1  # d = 64: no row can lose all its attention
