"""One folding: `generate` writes `weights/` for the hardware's folding, the generated Verilog's
MVU ROMs hold exactly those words, and the manifest records that folding once."""
import dataclasses
import hashlib
import json
import re

import pytest
import torch
from network_models import int_model

from binaryvit.cli import main
from binaryvit.golden.intref.intmodel import save_intmodel
from binaryvit.quantize.rom_formats import ROM_FORMATS, read_rom_image
from binaryvit.quantize.weight_packing import unpack_weight_rom

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

FC1 = "stages.0.blocks.0.mlp.fc1"


def verilog_roms(verilog: str, layer: str) -> dict[int, list[int]]:
    """PE → the words of ``weights_pe<p>`` in the Verilog module of ``layer``'s kernel (a
    memory's ``initial`` block, or the one register of a one-word ROM)."""
    module = re.escape("\\binaryvit_top.u_" + layer.replace(".", "_"))
    body = re.search(rf"^module {module} \(.*?^endmodule", verilog, re.S | re.M).group(0)
    roms = {}
    for pe, index, value in re.findall(r"^\s*weights_pe(\d+)\[(\d+)\] = \d+'h([0-9a-f]+);",
                                       body, re.M):
        roms.setdefault(int(pe), {})[int(index)] = int(value, 16)
    for pe, value in re.findall(r"^\s*reg \[\d+:0\] weights_pe(\d+) = \d+'h([0-9a-f]+);",
                                body, re.M):
        roms[int(pe)] = {0: int(value, 16)}
    return {pe: [words[i] for i in range(len(words))] for pe, words in roms.items()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    model = int_model("micro")
    save_intmodel(model, out / "intmodel.npz")
    (out / "manifest.json").write_text(json.dumps({"format": "binaryvit-manifest",
                                                   "files": {"intmodel.npz": "x"}}))
    (out / "fold.json").write_text(json.dumps({FC1: {"pe": 4, "simd": 8}}))
    assert main(["generate", str(out), "--target-cycles", "512",
                 "--folding", str(out / "fold.json")]) == 0
    return out, model


def test_weight_images_are_the_verilog_roms_word_for_word(generated):
    out, model = generated
    verilog = (out / "rtl" / "binaryvit_top.v").read_text()
    estimate = json.loads((out / "reports" / "estimate.json").read_text())
    folds = {layer["name"]: layer["fold"] for layer in estimate["layers"]}
    manifest = json.loads((out / "manifest.json").read_text())
    layers = [s for s in model.steps if s.op == "xnor_popcount_dot"]
    assert set(manifest["folding"]) == {s.name for s in layers}
    assert folds[FC1] == {"pe": 4, "simd": 8}
    for step in layers:
        n, k = step.arrays["weight_bits"].shape
        pe, simd = folds[step.name]["pe"], folds[step.name]["simd"]
        record = manifest["folding"][step.name]
        assert (record["n"], record["k"], record["pe"], record["simd"]) == (n, k, pe, simd)
        assert (record["width"], record["depth"]) == (pe * simd, (n // pe) * (k // simd))
        image = read_rom_image(out / "weights" / f"{step.name}.hex", width=pe * simd,
                               depth=record["depth"])
        # the MVU splits each word into pe ROMs of simd bits, PE p at bits [p·simd, (p+1)·simd)
        roms = verilog_roms(verilog, step.name)
        assert sorted(roms) == list(range(pe)), step.name
        rebuilt = [sum(roms[p][address] << (p * simd) for p in range(pe))
                   for address in range(record["depth"])]
        assert rebuilt == image.words, step.name
        folded = dataclasses.replace(image, pe=pe, simd=simd, n=n, k=k)
        assert torch.equal(unpack_weight_rom(folded),
                           torch.as_tensor(step.arrays["weight_bits"]).bool()), step.name
        for fmt in ROM_FORMATS:
            again = read_rom_image(out / "weights" / f"{step.name}.{fmt}", width=pe * simd,
                                   depth=record["depth"])
            assert again.words == image.words, (step.name, fmt)


def test_manifest_hashes_every_weight_file(generated):
    out, model = generated
    manifest = json.loads((out / "manifest.json").read_text())
    files = manifest["files"]
    layers = [s.name for s in model.steps if s.op == "xnor_popcount_dot"]
    assert sorted(f for f in files if f.startswith("weights/")) == sorted(
        f"weights/{name}.{fmt}" for name in layers for fmt in ROM_FORMATS)
    assert sorted(p.name for p in (out / "weights").iterdir()) == sorted(
        f"{name}.{fmt}" for name in layers for fmt in ROM_FORMATS)
    for rel, digest in files.items():
        if rel.startswith("weights/"):
            assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    assert files["intmodel.npz"] == "x"   # the quantizer's entries stay
