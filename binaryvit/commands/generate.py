"""Generate the accelerator: OUT/intmodel.npz → OUT/rtl/*.v and OUT/reports/estimate.json.

The folding pass picks each layer's parallelism to meet --target-cycles per image (default:
32 cycles per token of the largest grid) or the fastest folding within --lut-budget;
--folding FILE forces per-layer folds ({"step name": {"pe": 4, "simd": 8}}). The Verilog is
deterministic: the same inputs give byte-identical files.
"""
from __future__ import annotations

import argparse

from binaryvit.hw.generate import generate

NAME = "generate"
HELP = "generate the accelerator's Verilog and cost estimate from OUT/intmodel.npz"
ORDER = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder holding intmodel.npz")
    goal = parser.add_mutually_exclusive_group()
    goal.add_argument("--target-cycles", type=int, default=None, metavar="N",
                      help="cycles per image every layer must meet")
    goal.add_argument("--lut-budget", type=int, default=None, metavar="LUTS",
                      help="fastest folding whose LUT estimate fits this budget")
    parser.add_argument("--folding", default=None, metavar="FILE",
                        help="JSON file of per-layer fold overrides")
    parser.add_argument("--tap", action="append", default=[], metavar="STEP",
                        help="mirror this step's stream on a debug port (repeatable)")


def run(args: argparse.Namespace) -> int:
    estimate = generate(args.out, target_cycles=args.target_cycles, lut_budget=args.lut_budget,
                        overrides=args.folding, taps=args.tap)
    print(f"wrote {args.out}/rtl/binaryvit_top.v: {len(estimate['layers'])} layers, "
          f"{estimate['cycles_per_image']} cycles per image (bottleneck "
          f"{estimate['bottleneck']}), about {estimate['luts']} LUTs, "
          f"{estimate['fifo_bits']} FIFO bits; estimate in {args.out}/reports/estimate.json")
    return 0
