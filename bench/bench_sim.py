"""Whole-network simulation speed: the fast path (harness on the simulator side) beside the
per-cycle path (every word moved from Python), against the target.

Usage: python bench/bench_sim.py OUT [--images N] [--per-cycle-images M]
(OUT after `binaryvit generate`, e.g. `make flow`). Builds both simulators first (cached:
the build is not timed), then streams N test digits through the fast path and M through
the per-cycle path (back to back, no bubbles or back-pressure) and prints images/s and
simulated cycles/s (steady state after the build; the simulator's start is included) with
the target beside them. Every run is still checked against the integer reference.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from binaryvit.sim.network_sim import simulate

TARGET_IMAGES_PER_S = 50.0   # issue 15, tiny-digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=360)
    parser.add_argument("--per-cycle-images", type=int, default=20)
    args = parser.parse_args()
    out = Path(args.out)
    began = time.perf_counter()
    simulate(out, images=3, progress=False)                   # builds the harness
    fast_build = time.perf_counter() - began
    began = time.perf_counter()
    simulate(out, images=3, per_cycle=True, progress=False)   # builds the bare top
    slow_build = time.perf_counter() - began
    fast = simulate(out, images=args.images, progress=False)["totals"]
    slow = simulate(out, images=args.per_cycle_images, per_cycle=True, progress=False)["totals"]
    description = json.loads((out / "rtl" / "network.json").read_text())
    print(f"{description['config']}: {fast['cycles_per_image_estimated']} cycles per image "
          f"(estimate), {fast['images']} images fast, {slow['images']} per cycle")
    speedup = fast["images_per_second_simulated"] / slow["images_per_second_simulated"]
    rows = [("path", "images/s", "cycles/s", "mismatches", "target", "met"),
            ("fast (harness)", f"{fast['images_per_second_simulated']:.1f}",
             f"{fast['cycles_per_second_simulated']:,.0f}", str(fast["mismatches"]),
             f">= {TARGET_IMAGES_PER_S:g} images/s",
             "yes" if fast["images_per_second_simulated"] >= TARGET_IMAGES_PER_S else "NO"),
            ("per cycle (Python)", f"{slow['images_per_second_simulated']:.2f}",
             f"{slow['cycles_per_second_simulated']:,.0f}", str(slow["mismatches"]), "—", "—"),
            ("speed-up", f"{speedup:.1f}x", "", "", "", "")]
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(f"(first runs, builds included: fast {fast_build:.0f} s, per cycle {slow_build:.0f} s)")


if __name__ == "__main__":
    main()
