"""Whole-network cycle efficiency in Verilator beside the cost model's estimate.

Usage: python bench/bench_network.py OUT [--images N]
(OUT after `binaryvit quantize` and `binaryvit generate`). Streams N test digits back to
back with no back-pressure and prints, per image in steady state: the cost model's cycles
(bottleneck) and ideal cycles (compute-bound bottleneck), the measured cycles, the cycle
efficiency eta = ideal / measured, and the XNOR-array utilisation (useful XNOR lane-cycles
over lanes x cycles), estimated and measured; the first image's latency, measured and as
the timing model predicts it; the LUT estimate, FIFO count and bits, and simulation speed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from binaryvit.sim.network_sim import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    out = Path(args.out)
    estimate = json.loads((out / "reports" / "estimate.json").read_text())
    totals = simulate(out, images=args.images, stall_prob=0.0, progress=False)["totals"]
    measured = totals["cycles_per_image_measured"]
    xnor_work = estimate["xnor_utilisation"] * estimate["xnor_lanes"] * estimate["cycles_per_image"]
    rows = [
        ("cycles / image (cost model)", f"{estimate['cycles_per_image']}",
         f"bottleneck {estimate['bottleneck']}"),
        ("ideal cycles / image", f"{estimate['ideal_cycles_per_image']}", "compute-bound"),
        ("measured cycles / image", f"{measured:.1f}", f"{args.images} images, steady state"),
        ("latency (first image)", f"{totals['latency_cycles']}",
         f"cycles; timing model {estimate['latency_cycles_model']}"),
        ("eta = ideal / measured", f"{estimate['ideal_cycles_per_image'] / measured:.3f}",
         "target >= 0.95"),
        ("XNOR utilisation, estimated", f"{estimate['xnor_utilisation']:.3f}",
         f"{estimate['xnor_lanes']} XNOR lanes"),
        ("XNOR utilisation, measured", f"{xnor_work / (estimate['xnor_lanes'] * measured):.3f}",
         ""),
        ("LUT estimate", f"{estimate['luts']}", "cost model, lane logic only"),
        ("FIFO bits", f"{estimate['fifo_bits']}", f"{len(estimate['fifos'])} FIFOs"),
        ("mismatches", f"{totals['mismatches']}", "vs integer reference"),
        ("simulated images / s", f"{totals['images_per_second_simulated']:.2f}", "Verilator"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
