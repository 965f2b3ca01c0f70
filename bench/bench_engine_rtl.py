"""The engine RTL on the UP5K: cycles per image in Verilator against the cycle model, and the
iCE40UP5K synthesis figures, beside the targets.

    python bench/bench_engine_rtl.py [CKPT] [--images 3] [--synth]

Quantizes the checkpoint (default ``out/model.pt``, from ``make flow``) at the engine's formats,
compiles it for the UP5K engine, runs ``--images`` test digits through the engine RTL in
Verilator (``sim/engine_sim.py``) and prints the logits' mismatches against the integer
reference (bit-exact means 0) and the cycles per image beside the cycle model's. With
``--synth``: ``synth_ice40 -dsp -noabc`` (abc9 overflows YoWASP's stack on this core) cell
counts against the UP5K's, then nextpnr ``--up5k`` (Fmax, or why it did not place).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from binaryvit.errors import BinaryVitError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.train.data import load_dataset
from binaryvit.hw.boards.definitions import yowasp_env
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import UP5K
from binaryvit.hw.engine.rtl.engine import Engine
from binaryvit.hw.verilog import to_verilog
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import DEFAULT_CALIBRATION_IMAGES, quantize_model
from binaryvit.sim.engine_sim import run_engine_images

ENGINE_FORMATS = QuantFormats(stream_width=16, const_bits=16, acc_width=UP5K.accumulator_bits)
TARGETS = {"LCs": "<= 5,280 (bench <= 4,500)", "SB_MAC16": "<= 8", "SB_RAM40_4K": "<= 30",
           "SB_SPRAM256KA": "<= 4", "Fmax MHz": ">= 40", "cycles per image": "model +- 1 %"}


def _synthesise(folder: Path) -> None:
    env = yowasp_env()
    (folder / "engine.v").write_text(to_verilog(Engine(UP5K, implementation="spram"), "engine"))
    print("synthesising (a few minutes) ...", flush=True)
    subprocess.run([env["YOSYS"], "-q", "-l", "yosys.log", "-p",
                    "read_verilog engine.v; synth_ice40 -dsp -noabc -top engine -json engine.json; "
                    "tee -q -o stat.json stat -json"], cwd=folder, env=env, check=True)
    cells = json.loads((folder / "stat.json").read_text())["design"]["num_cells_by_type"]
    lcs = cells.get("SB_LUT4", 0)
    flops = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    print(f"{'SB_LUT4 (LCs at least)':40s} {lcs:12,d} {TARGETS['LCs']:>26}")
    print(f"{'SB_CARRY':40s} {cells.get('SB_CARRY', 0):12,d}")
    print(f"{'flip-flops':40s} {flops:12,d}")
    for cell in ("SB_MAC16", "SB_RAM40_4K", "SB_SPRAM256KA"):
        print(f"{cell:40s} {cells.get(cell, 0):12,d} {TARGETS[cell]:>26}")
    done = subprocess.run([env["NEXTPNR_ICE40"], "--up5k", "--package", "sg48", "--json",
                           "engine.json", "--pcf-allow-unconstrained", "--freq", "40",
                           "--report", "report.json", "-q", "-l", "pnr.log"],
                          cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        errors = [ln for ln in (folder / "pnr.log").read_text().splitlines() if "ERROR" in ln]
        print(f"{'Fmax MHz':40s} {'no placement':>12} {TARGETS['Fmax MHz']:>26}  "
              f"({errors[0][:90] if errors else 'nextpnr failed'})")
        return
    report = json.loads((folder / "report.json").read_text())
    fmax = min(v["achieved"] for v in report["fmax"].values())
    print(f"{'Fmax MHz':40s} {fmax:12.1f} {TARGETS['Fmax MHz']:>26}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="out/model.pt")
    parser.add_argument("--images", type=int, default=3, help="test images through Verilator")
    parser.add_argument("--synth", action="store_true", help="also synthesise and place")
    args = parser.parse_args()
    if args.images < 1:
        print("error: --images must be at least 1", file=sys.stderr)
        return 2
    try:
        model = load_checkpoint(args.checkpoint).build_model()
    except BinaryVitError as exc:
        print(f"error: {exc} (run `make flow` first or pass a checkpoint)", file=sys.stderr)
        return 2
    data = load_dataset(None)
    q = quantize_model(model, data.train_images[:DEFAULT_CALIBRATION_IMAGES], ENGINE_FORMATS)
    program = compile_intmodel(q.intmodel, UP5K, proof=q.proof)
    images = torch.as_tensor(data.test_images[:args.images]).to(torch.int64)
    print(f"{len(program.instructions)} instructions; {len(images)} test digits through the "
          f"engine RTL in Verilator ...", flush=True)
    began = time.perf_counter()
    run = run_engine_images(program, images)
    wall = time.perf_counter() - began
    want = run_int_network(q.intmodel, images).logits
    mismatches = int((run.logits != want).any(dim=1).sum())
    model_cycles = program.total_cycles
    rtl = max(run.cycles)
    print(f"\n{'figure':40s} {'value':>12} {'target':>26}")
    print(f"{'images with mismatching logits':40s} {mismatches:12d} {'0':>26}")
    print(f"{'cycles per image (RTL, Verilator)':40s} {rtl:12,d} {TARGETS['cycles per image']:>26}")
    print(f"{'cycles per image (cycle model)':40s} {model_cycles:12,d} {'<= 130,000':>26}")
    print(f"{'RTL / model':40s} {rtl / model_cycles:12.2f} {'1.00 +- 0.01':>26}")
    print(f"{'Verilator seconds per image':40s} {wall / len(images):12.1f}")
    if args.synth:
        with tempfile.TemporaryDirectory(prefix="engine-rtl-") as folder:
            _synthesise(Path(folder))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
