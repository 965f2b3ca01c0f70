"""Simulation speed: the network's fast path (harness on the simulator side) beside the
per-cycle path (every word moved from Python) and the engine RTL, against the target.

Usage: python bench/bench_sim.py OUT [--images N] [--per-cycle-images M]
                                     [--engine-images K] [--checkpoint CKPT]
(OUT after `binaryvit generate`, e.g. `make flow`; the engine row quantizes CKPT, default
OUT/model.pt, for the UP5K engine and is skipped without it.)

Every simulator is built first (cached: builds are not timed). Then N test digits go
through the fast path with its default jobs (one simulator process per usable CPU) and
again with one job, M through the per-cycle path, and K through the engine RTL
(`sim/engine_sim.py`); all back to back, no bubbles or back-pressure, every run checked
against the integer reference. Per row: images/s and simulated cycles/s in wall time
(simulator starts included), the simulators' CPU seconds (their processes' user + system
time) and images per CPU-second, the machine's load average beside them: on a shared
machine wall time inflates with the load, CPU time much less.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

TARGET_IMAGES_PER_S = 50.0   # issue 15: `binaryvit sim` on tiny-digits


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(function):
    """``function()``'s result, wall seconds and its child processes' CPU seconds."""
    cpu, began = _children_cpu_s(), time.perf_counter()
    result = function()
    return result, time.perf_counter() - began, _children_cpu_s() - cpu


def _network_row(label: str, totals: dict, cpu_s: float, met: bool | None) -> tuple:
    wall = totals["images"] / totals["images_per_second_simulated"]
    return (label, str(totals["images"]), f"{totals['images_per_second_simulated']:.1f}",
            f"{totals['cycles_per_second_simulated']:,.0f}", f"{cpu_s:.1f}",
            f"{totals['images'] / cpu_s:.1f}", f"{wall:.1f}", str(totals["mismatches"]),
            f">= {TARGET_IMAGES_PER_S:g} images/s" if met is not None else "—",
            {True: "yes", False: "NO", None: "—"}[met])


def _engine_row(checkpoint: Path, images: int) -> tuple:
    """The engine RTL in Verilator on ``images`` test digits of the trained ``checkpoint``."""
    import torch

    from binaryvit.golden.float_model.checkpoint import load_checkpoint
    from binaryvit.golden.intref.int_network import run_int_network
    from binaryvit.golden.train.data import load_dataset
    from binaryvit.hw.engine.compiler import compile_intmodel
    from binaryvit.hw.engine.config import UP5K
    from binaryvit.quantize.formats import QuantFormats
    from binaryvit.quantize.quantizer import DEFAULT_CALIBRATION_IMAGES, quantize_model
    from binaryvit.sim import engine_sim
    from binaryvit.sim.simulator import Design, build

    formats = QuantFormats(stream_width=16, const_bits=16, acc_width=UP5K.accumulator_bits)
    data = load_dataset(None)
    model = load_checkpoint(checkpoint).build_model()
    q = quantize_model(model, data.train_images[:DEFAULT_CALIBRATION_IMAGES], formats)
    program = compile_intmodel(q.intmodel, UP5K, proof=q.proof)
    # the build `run_engine_images` makes (cached), so that it is not timed
    build(Design(engine_sim.NAME, {f"{engine_sim.NAME}.v": engine_sim.engine_verilog(program)}),
          kind="engine")
    x = torch.as_tensor(data.test_images[:images]).to(torch.int64)
    run, wall, cpu = _timed(lambda: engine_sim.run_engine_images(program, x))
    mismatches = int((run.logits != run_int_network(q.intmodel, x).logits).any(dim=1).sum())
    return ("engine RTL (UP5K)", str(images), f"{images / wall:.3f}",
            f"{sum(run.cycles) / wall:,.0f}", f"{cpu:.1f}", f"{images / cpu:.3f}",
            f"{wall:.1f}", str(mismatches), "—", "—")


def main() -> int:
    from binaryvit.sim.network_fast import usable_cpus
    from binaryvit.sim.network_sim import simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=360)
    parser.add_argument("--per-cycle-images", type=int, default=20)
    parser.add_argument("--engine-images", type=int, default=2)
    parser.add_argument("--checkpoint", default=None, help="default OUT/model.pt")
    args = parser.parse_args()
    out = Path(args.out)
    if not (out / "rtl" / "network.json").is_file():
        print(f"error: {out}/rtl/network.json not found: run `binaryvit generate {out}` "
              f"first", file=sys.stderr)
        return 2
    for option in ("images", "per_cycle_images"):
        if getattr(args, option) < 1:
            print(f"error: --{option.replace('_', '-')} must be at least 1, got "
                  f"{getattr(args, option)}", file=sys.stderr)
            return 2
    checkpoint = Path(args.checkpoint) if args.checkpoint else out / "model.pt"
    load_before = os.getloadavg()[0]
    _, fast_build, _ = _timed(lambda: simulate(out, images=3, progress=False, jobs=1))
    _, slow_build, _ = _timed(lambda: simulate(out, images=3, per_cycle=True, progress=False))
    fast, fast_whole, fast_cpu = _timed(lambda: simulate(out, images=args.images,
                                                         progress=False))
    one, _, one_cpu = _timed(lambda: simulate(out, images=args.images, progress=False, jobs=1))
    slow, _, slow_cpu = _timed(lambda: simulate(out, images=args.per_cycle_images,
                                                per_cycle=True, progress=False))
    fast, one, slow = fast["totals"], one["totals"], slow["totals"]
    description = json.loads((out / "rtl" / "network.json").read_text())
    print(f"{description['config']}: {fast['cycles_per_image_estimated']} cycles per image "
          f"(estimate), latency {fast['latency_cycles']} cycles; fast path in runs of "
          f"{fast['runs']} images, {fast['jobs']} at a time ({usable_cpus()} usable CPUs)")
    header = ("path", "images", "images/s", "cycles/s", "CPU s", "images/CPU-s", "wall s",
              "mismatches", "target", "met")
    rows = [header,
            _network_row(f"fast, {fast['jobs']} jobs", fast, fast_cpu,
                         fast["images_per_second_simulated"] >= TARGET_IMAGES_PER_S),
            _network_row("fast, 1 job", one, one_cpu, None),
            _network_row("per cycle (Python)", slow, slow_cpu, None)]
    if args.engine_images > 0 and checkpoint.is_file():
        rows.append(_engine_row(checkpoint, args.engine_images))
    widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    if args.engine_images > 0 and not checkpoint.is_file():
        print(f"(engine row skipped: no checkpoint {checkpoint})")
    print(f"`binaryvit sim --images {fast['images']}` whole (data, integer reference, "
          f"simulation, report): {fast_whole:.1f} s, {fast['images'] / fast_whole:.1f} "
          f"images/s")
    print(f"cycles/s: simulated cycles (each run's pipeline fill included; the engine: busy "
          f"cycles, payload loading not counted) per wall second")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
          f"{os.cpu_count()} CPUs; first runs with builds: fast {fast_build:.0f} s, per cycle "
          f"{slow_build:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
