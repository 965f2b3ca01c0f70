"""The engine RTL on the UP5K: cycles per image in Verilator against the cycle model, and the
iCE40UP5K build (Yosys, nextpnr) beside the targets.

    python bench/bench_engine_rtl.py [CKPT] [--images 3] [--synth | --pnr [--seeds 3]]

Quantizes the checkpoint (default ``out/model.pt``, from ``make flow``) at the engine's formats,
compiles it for the UP5K engine, runs ``--images`` test digits through the engine RTL in
Verilator (``sim/engine_sim.py``) and prints the logits' mismatches against the integer
reference (bit-exact means 0), the cycles per image beside the core's exact count
(``hw/engine/rtl/cycles.py``) and the compiler's cycle model (the pipelined engine's
target), and per instruction class the core's cycles, the model's and their ratio
(``--images 0``: no simulation, no checkpoint needed). ``--synth``: ``synth_ice40 -dsp`` of
``Engine(UP5K, implementation="spram")``, cell counts against the UP5K's; ``--pnr``: also
nextpnr ``--up5k`` with ``--seeds`` seeds (1, 2, …): logic cells, block RAM, SPRAM, DSPs
(the same for every seed) and the median Fmax.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
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
from binaryvit.hw.engine.rtl.cycles import instruction_core_cycles, program_core_cycles
from binaryvit.hw.engine.rtl.engine import Engine
from binaryvit.hw.verilog import to_verilog
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import DEFAULT_CALIBRATION_IMAGES, quantize_model
from binaryvit.sim.engine_sim import run_engine_images

ENGINE_FORMATS = QuantFormats(stream_width=16, const_bits=16, acc_width=UP5K.accumulator_bits)
TARGETS = {"LCs": "<= 5,280 (bench <= 4,500)", "SB_MAC16": "<= 8", "SB_RAM40_4K": "<= 30",
           "SB_SPRAM256KA": "<= 4", "Fmax MHz": ">= 40 (median)",
           "cycles per image": "model +- 1 %"}
PNR_CELLS = (("ICESTORM_LC", "LCs"), ("ICESTORM_RAM", "SB_RAM40_4K"),
             ("ICESTORM_SPRAM", "SB_SPRAM256KA"), ("ICESTORM_DSP", "SB_MAC16"))


def _row(figure: str, value: str, target: str = "") -> None:
    print(f"{figure:44s} {value:>14} {target:>28}")


def _synthesise(folder: Path) -> None:
    env = yowasp_env()
    (folder / "engine.v").write_text(to_verilog(Engine(UP5K, implementation="spram"), "engine"))
    print("synthesising (about a minute) ...", flush=True)
    subprocess.run([env["YOSYS"], "-q", "-l", "yosys.log", "-p",
                    "read_verilog engine.v; synth_ice40 -dsp -top engine -json engine.json; "
                    "tee -q -o stat.json stat -json"], cwd=folder, env=env, check=True)
    cells = json.loads((folder / "stat.json").read_text())["design"]["num_cells_by_type"]
    _row("SB_LUT4 (Yosys)", f"{cells.get('SB_LUT4', 0):,d}")
    _row("SB_CARRY (Yosys)", f"{cells.get('SB_CARRY', 0):,d}")
    _row("flip-flops (Yosys)", f"{sum(v for k, v in cells.items() if k.startswith('SB_DFF')):,d}")
    for cell in ("SB_MAC16", "SB_RAM40_4K", "SB_SPRAM256KA"):
        _row(f"{cell} (Yosys)", f"{cells.get(cell, 0):,d}", TARGETS[cell])


def _place_and_route(folder: Path, seeds: int) -> None:
    env = yowasp_env()
    fmax = []
    for seed in range(1, seeds + 1):
        print(f"nextpnr --up5k, seed {seed} (a few minutes) ...", flush=True)
        log = folder / f"pnr{seed}.log"
        done = subprocess.run([env["NEXTPNR_ICE40"], "--up5k", "--package", "sg48", "--json",
                               "engine.json", "--pcf-allow-unconstrained", "--freq", "40",
                               "--seed", str(seed), "--report", f"report{seed}.json", "-q",
                               "-l", log.name], cwd=folder, env=env, capture_output=True,
                              text=True)
        text = log.read_text() if log.exists() else ""
        if done.returncode:
            for cell, name in PNR_CELLS:
                used = re.search(rf"{cell}:\s+(\d+)/\s*(\d+)", text)
                if used:
                    _row(f"{name} (nextpnr)", f"{int(used[1]):,d} / {int(used[2]):,d}",
                         TARGETS[name])
            errors = [ln for ln in text.splitlines() if "ERROR" in ln]
            _row("Fmax MHz", "no placement", TARGETS["Fmax MHz"])
            print(f"  ({errors[0][:110] if errors else 'nextpnr failed'})")
            return
        report = json.loads((folder / f"report{seed}.json").read_text())
        if seed == 1:
            use = report["utilization"]
            for cell, name in PNR_CELLS:
                _row(f"{name} (nextpnr)",
                     f"{use[cell]['used']:,d} / {use[cell]['available']:,d}", TARGETS[name])
        fmax.append(min(v["achieved"] for v in report["fmax"].values()))
    _row(f"Fmax MHz (seeds: {', '.join(f'{f:.1f}' for f in fmax)})",
         f"{statistics.median(fmax):.1f}", TARGETS["Fmax MHz"])


def _simulate(checkpoint: str, count: int) -> int:
    """Verilator run of ``count`` test digits; returns the images with mismatching logits."""
    model = load_checkpoint(checkpoint).build_model()
    data = load_dataset(None)
    q = quantize_model(model, data.train_images[:DEFAULT_CALIBRATION_IMAGES], ENGINE_FORMATS)
    program = compile_intmodel(q.intmodel, UP5K, proof=q.proof)
    images = torch.as_tensor(data.test_images[:count]).to(torch.int64)
    print(f"{len(program.instructions)} instructions; {len(images)} test digits through the "
          f"engine RTL in Verilator ...", flush=True)
    began, cpu = time.perf_counter(), time.process_time()
    run = run_engine_images(program, images)
    wall = time.perf_counter() - began
    want = run_int_network(q.intmodel, images).logits
    mismatches = int((run.logits != want).any(dim=1).sum())
    model_cycles = program.total_cycles
    rtl = max(run.cycles)
    _row("images with mismatching logits", f"{mismatches:d}", "0")
    _row("cycles per image (RTL, Verilator)", f"{rtl:,d}", TARGETS["cycles per image"])
    _row("cycles per image (core's count, program)", f"{program_core_cycles(program):,d}",
         "= RTL")
    _row("cycles per image (cycle model)", f"{model_cycles:,d}", "<= 130,000")
    _row("RTL / model", f"{rtl / model_cycles:.2f}", "1.00 +- 0.01")
    classes: dict[str, list[int]] = {}
    for ins, modelled in zip(program.instructions, program.cycles):
        row = classes.setdefault(modelled.kind, [0, 0, 0])
        row[0] += 1
        row[1] += instruction_core_cycles(ins)
        row[2] += modelled.cycles
    print(f"\n{'class':16s} {'count':>6} {'core cycles':>13} {'model cycles':>13} {'ratio':>8}")
    for kind, (count, core, modelled) in sorted(classes.items()):
        print(f"{kind:16s} {count:6d} {core:13,d} {modelled:13,d} {core / modelled:8.1f}")
    print()
    _row("Verilator wall seconds per image", f"{wall / len(images):.1f}")
    print(f"  (wall time on a shared machine; this process's CPU {time.process_time() - cpu:.1f} s,"
          f" the simulator runs in a child process)")
    return mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="out/model.pt")
    parser.add_argument("--images", type=int, default=3,
                        help="test images through Verilator (0: none)")
    parser.add_argument("--synth", action="store_true", help="also synthesise")
    parser.add_argument("--pnr", action="store_true", help="also synthesise, place and route")
    parser.add_argument("--seeds", type=int, default=3, help="nextpnr seeds for --pnr")
    args = parser.parse_args()
    if args.images < 0 or args.seeds < 1:
        print("error: --images must be at least 0 and --seeds at least 1", file=sys.stderr)
        return 2
    _row("figure", "value", "target")
    mismatches = 0
    if args.images:
        try:
            mismatches = _simulate(args.checkpoint, args.images)
        except BinaryVitError as exc:
            print(f"error: {exc} (run `make flow` first or pass a checkpoint)", file=sys.stderr)
            return 2
    if args.synth or args.pnr:
        with tempfile.TemporaryDirectory(prefix="engine-rtl-") as folder:
            _synthesise(Path(folder))
            if args.pnr:
                _place_and_route(Path(folder), args.seeds)
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
