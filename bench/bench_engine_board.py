"""The engine on the iCEBreaker's UP5K, built and simulated, beside the dataflow on the ECP5
and the integer model on this CPU, with issue 12's targets beside each figure.

    python bench/bench_engine_board.py [CKPT] [--out DIR] [--seeds 3] [--rtl-images 1]
                                       [--cpu-images 360]

Runs the commands a user runs: ``binaryvit quantize CKPT -o OUT --engine`` and ``binaryvit
generate OUT --board icebreaker --arch engine``, then the real board build of the whole
board top (engine, flash loader, UART front end; YoWASP Yosys ``synth_ice40 -dsp`` and
nextpnr-ice40, ``--seeds`` placements when it places, the median Fmax), the engine RTL in
Verilator on ``--rtl-images`` test digits (``sim/engine_report.simulate_engine``: its busy
cycles per image and its logits against ``int_network``) and ``run_int_network`` on this CPU.

Figures:

* LCs, EBR, SPRAM, DSPs: nextpnr's utilisation. When the design does not place, the LC count
  is the one nextpnr reports before it stops, and every figure that needs a placement
  (Fmax, images/s, GOPS/kLUT) reads "does not fit" instead of a number.
* cycles per image: the compiler's cycle model and the RTL's measured busy cycles.
* images/s at Fmax = Fmax / RTL cycles; the 40 MHz column uses the cycle model, as the
  issue's ">= 300 images/s at 40 MHz" target does.
* XNOR-array utilisation = binary MACs / (cycles x PE x SIMD), from the cycle model.
* binary GOPS/kLUT = 2 x binary MACs x images/s / (LCs / 1000) (XNOR and popcount per MAC,
  as ``bench_boards.py`` counts them).

The dataflow column is the tiny-digits dataflow build recorded in ``docs/boards.md``
(``flow --board ulx3s``, 4,096 cycles, built at 58.7 MHz; 6.62 M binary ops per image from
issue 12): that build takes about 45 minutes, so it is quoted, not repeated.

Takes about 5-10 minutes on the shared 2-core machine (Verilator build and one tiny-digits
image through the sequential core, one synthesis, placements).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from binaryvit.errors import BinaryVitError
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.train.data import load_dataset
from binaryvit.hw.boards.board_build import build_board, place_and_route
from binaryvit.hw.boards.definitions import get_board
from binaryvit.hw.engine.board.design import load_engine_design
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.golden.intref.intmodel import load_intmodel

TARGET_LCS = 4_500
TARGET_MHZ = 40.0
TARGET_CYCLES = 130_000
TARGET_IMAGES_PER_S = 300
DOES_NOT_FIT = "does not fit"

# docs/boards.md, "Measured" under the resource model: the third `flow --board ulx3s` build
DATAFLOW_ECP5 = {"LUT4": 75_089, "DP16KD": 186, "MULT18X18D": 102, "fmax_mhz": 58.7,
                 "cycles": 4_096, "binary_ops": 6.62e6}


def _binaryvit(*args: str) -> None:
    print("$ binaryvit " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-c", "import sys; from binaryvit.cli import main; "
                    "sys.exit(main())", *args], check=True)


def _build(out: Path, seeds: int) -> tuple[dict, list[float]]:
    """Build OUT's engine board top for the iCEBreaker; nextpnr's utilisation of the first
    seed and the Fmax of every seed that placed."""
    from binaryvit.commands.build import engine_board_top
    board = get_board("icebreaker")
    top, _, _ = engine_board_top(out, board)
    folder = out / "build" / "bench-icebreaker"
    start, cpu = time.monotonic(), time.process_time()
    result = build_board(top, board, folder, seed=1, synth_opts="-dsp")
    results = [result]
    if result.ok:
        results += [place_and_route(folder, board, seed) for seed in range(2, seeds + 1)]
    print(f"  build: {time.monotonic() - start:.0f} s wall, {result.seconds:.0f} s in the "
          f"tools, {time.process_time() - cpu:.0f} s CPU here; logs in {folder}", flush=True)
    fmax = [next(iter(r.fmax_mhz.values()))["achieved"] for r in results if r.ok and r.fmax_mhz]
    return result.utilisation, fmax


def _cpu_images_per_s(model, images: torch.Tensor) -> float:
    run_int_network(model, images[:4])                       # warm up
    start = time.perf_counter()
    run_int_network(model, images)
    return len(images) / (time.perf_counter() - start)


def _row(figure: str, engine: str, target: str, dataflow: str = "", cpu: str = "") -> None:
    print(f"{figure:32s} {engine:>22s} {target:>14s} {dataflow:>18s} {cpu:>14s}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="out/model.pt")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the engine's OUT (default: a temporary one)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rtl-images", type=int, default=1,
                        help="test digits through the engine RTL in Verilator")
    parser.add_argument("--cpu-images", type=int, default=360)
    args = parser.parse_args()
    if not Path(args.checkpoint).is_file():
        print(f"error: {args.checkpoint} not found (run `make flow` first or pass a checkpoint)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "out"
        try:
            return _bench(args, out)
        except BinaryVitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


def _bench(args, out: Path) -> int:
    from binaryvit.sim.engine_report import simulate_engine
    _binaryvit("quantize", args.checkpoint, "-o", str(out), "--engine", "--force")
    _binaryvit("generate", str(out), "--board", "icebreaker", "--arch", "engine")
    design = load_engine_design(out / "rtl" / "engine.json")
    model = load_intmodel(out / "intmodel.npz")
    program = compile_intmodel(model, design.config)
    c = program.config
    macs = sum(cyc.binary_macs for cyc in program.cycles)
    model_cycles = program.total_cycles
    utilisation = macs / (model_cycles * c.pe * c.simd)

    print(f"engine RTL in Verilator on {args.rtl_images} test digit(s)...", flush=True)
    report = simulate_engine(out, images=args.rtl_images)
    rtl_cycles = report["totals"]["cycles_per_image_measured"]
    mismatches = report["totals"]["mismatches"]

    print(f"board build, {args.seeds} seed(s)...", flush=True)
    usage, fmax = _build(out, args.seeds)
    data = load_dataset(None, model.config.in_channels)
    test = torch.as_tensor(data.test_images[:args.cpu_images]).to(torch.int64)
    cpu_rate = _cpu_images_per_s(model, test)

    lcs = usage["ICESTORM_LC"]
    placed = bool(fmax)
    mhz = statistics.median(fmax) if placed else None
    rate = mhz * 1e6 / rtl_cycles if placed else None
    gops_per_klut = 2 * macs * rate / 1e9 / (lcs.used / 1000) if placed else None
    df = DATAFLOW_ECP5
    df_rate = df["fmax_mhz"] * 1e6 / df["cycles"]

    print(f"\n{model.config.name}: engine {c.pe} PE x {c.simd} SIMD on the iCEBreaker (UP5K)")
    _row("figure", "engine, UP5K", "target", "dataflow, ECP5-85F", "int model, CPU")
    _row("logic", f"{lcs.used:,} / {lcs.available:,} LC", f"<= {TARGET_LCS:,}",
         f"{df['LUT4']:,} LUT4")
    for name, label in (("ICESTORM_RAM", "EBR"), ("ICESTORM_SPRAM", "SPRAM"),
                        ("ICESTORM_DSP", "DSP")):
        u = usage.get(name)
        limit = {"EBR": "<= 30", "SPRAM": "<= 4", "DSP": "<= 8"}[label]
        other = {"EBR": f"{df['DP16KD']} DP16KD", "DSP": f"{df['MULT18X18D']} MULT18X18D"}
        _row(label, f"{u.used} / {u.available}" if u else "-", limit, other.get(label, ""))
    fmax_text = (f"{mhz:.1f} MHz ({min(fmax):.1f}-{max(fmax):.1f})" if placed else DOES_NOT_FIT)
    _row(f"Fmax, median of {len(fmax) or args.seeds} seeds", fmax_text, f">= {TARGET_MHZ:g} MHz",
         f"{df['fmax_mhz']} MHz")
    _row("cycles/image, cycle model", f"{model_cycles:,}", f"<= {TARGET_CYCLES:,}",
         f"{df['cycles']:,}")
    _row(f"cycles/image, RTL ({args.rtl_images} img)", f"{rtl_cycles:,.0f}",
         f"<= {TARGET_CYCLES:,}")
    _row("images/s at 40 MHz (model)", f"{TARGET_MHZ * 1e6 / model_cycles:,.0f}",
         f">= {TARGET_IMAGES_PER_S}")
    _row("images/s at 40 MHz (RTL)", f"{TARGET_MHZ * 1e6 / rtl_cycles:,.1f}",
         f">= {TARGET_IMAGES_PER_S}")
    _row("images/s at Fmax (RTL)", f"{rate:,.1f}" if placed else DOES_NOT_FIT, "",
         f"{df_rate:,.0f}", f"{cpu_rate:,.0f}")
    _row("XNOR-array utilisation (model)", f"{100 * utilisation:.1f} %", "")
    _row("binary GOPS/kLUT", f"{gops_per_klut:.3f}" if placed else DOES_NOT_FIT, "",
         f"{df['binary_ops'] * df_rate / 1e9 / (df['LUT4'] / 1000):.2f}")
    print(f"\nRTL vs int_network on {args.rtl_images} test digit(s): {mismatches} mismatching "
          "(target 0)")
    print("dataflow column: docs/boards.md (tiny-digits `flow --board ulx3s` build, "
          "4,096 cycles); CPU: run_int_network on "
          f"{len(test)} test digits, {torch.get_num_threads()} thread(s), shared machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
