"""Generate the accelerator: OUT/intmodel.npz → OUT/rtl/*.v and OUT/reports/estimate.json.

The folding pass picks each layer's parallelism to meet --target-cycles per image (default:
32 cycles per token of the largest grid), the fastest folding within --lut-budget, or with
--board the fastest folding whose resource estimate fits that board (logic within --margin
of the device, block RAM and DSPs within all of it; otherwise it fails naming each
resource that overflows and by how much). --folding FILE forces per-layer folds
({"step name": {"pe": 4, "simd": 8}}). The Verilog is deterministic: the same inputs give
byte-identical files.
"""
from __future__ import annotations

import argparse

from binaryvit.hw.boards.definitions import BOARDS, get_board
from binaryvit.hw.estimate.device_fit import DEFAULT_MARGIN, estimate_lines
from binaryvit.hw.network.generate import generate

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
    goal.add_argument("--board", default=None, choices=sorted(b for b in BOARDS if b != "arty"),
                      help="fastest folding whose resource estimate fits this board")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="SHARE",
                        help=f"with --board: share of the logic cells and flip-flops the "
                             f"design may fill (default {DEFAULT_MARGIN})")
    parser.add_argument("--folding", default=None, metavar="FILE",
                        help="JSON file of per-layer fold overrides")
    parser.add_argument("--tap", action="append", default=[], metavar="STEP",
                        help="mirror this step's stream on a debug port (repeatable)")


def run(args: argparse.Namespace) -> int:
    board = get_board(args.board) if args.board else None
    estimate = generate(args.out, target_cycles=args.target_cycles, lut_budget=args.lut_budget,
                        overrides=args.folding, taps=args.tap, board=board, margin=args.margin)
    print(f"wrote {args.out}/rtl/binaryvit_top.v: {len(estimate['layers'])} layers, "
          f"{estimate['cycles_per_image']} cycles per image (bottleneck "
          f"{estimate['bottleneck']}), {estimate['fifo_bits']} FIFO bits; estimate in "
          f"{args.out}/reports/estimate.json")
    for line in estimate_lines(estimate):
        print(f"  {line}")
    return 0
