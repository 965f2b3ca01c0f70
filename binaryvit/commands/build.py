"""Build the generated network for a board: the UART wrapper around OUT/rtl's accelerator.

iCEBreaker (iCE40UP5K) and ULX3S (ECP5-85F) go through Yosys and nextpnr from YoWASP
(PyPI) to a bitstream; the Arty A7 gets Verilog and XDC for Vivado plus a LUT count from
Yosys. Everything lands in OUT/build/<board>/: the bitstream, the tool logs (top.rpt
Yosys, top.tim nextpnr), nextpnr's report and build.json (utilisation, Fmax, overflow).
Before any tool runs, the resource estimate in OUT/reports/estimate.json (`binaryvit
generate`) is checked against the board: a design it says will not fit is refused, naming
each resource and by how much (--force runs the tools anyway, e.g. to measure the real
overflow). A design that does not fit still leaves OUT/build/<board>/ and names each
resource that overflows and by how much. When OUT was generated for this board (`generate
--board`), the build keeps the block RAM / LUT RAM split the estimate assumed. The host
protocol is in docs/boards.md (`binaryvit run`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from binaryvit.atomic import atomic_directory
from binaryvit.errors import ConfigError, ToolError
from binaryvit.hw.boards.board_build import BuildResult, build_board
from binaryvit.hw.boards.board_wrapper import UARTBoardWrapper
from binaryvit.hw.boards.definitions import BOARDS, Board, BoardTop, get_board
from binaryvit.hw.boards.uart import baud_divisor
from binaryvit.hw.boards.verilog_accelerator import load_generated_accelerator
from binaryvit.hw.estimate.device_fit import check_fit
from binaryvit.hw.estimate.resource_model import FAMILIES, Resources

NAME = "build"
HELP = "build OUT's generated network for a board (bitstream, Fmax, utilisation)"
ORDER = 60
DEFAULT_BAUD = 115200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", nargs="?", default="out",
                        help="output folder with rtl/ from `binaryvit generate` (default out/)")
    parser.add_argument("--board", default="icebreaker", choices=sorted(BOARDS),
                        help="target board (default icebreaker)")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                        help=f"UART baud rate (default {DEFAULT_BAUD})")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="run the tools even when the estimate says the design does not fit")


def image_pixels(out: Path, description: dict) -> int:
    """Pixels per image: network.json's ``pixels``, else from OUT's integer model
    (channels × height × width)."""
    if "pixels" in description:
        return int(description["pixels"])
    from binaryvit.golden.intref.intmodel import load_intmodel
    config = load_intmodel(out / "intmodel.npz").config
    return config.in_channels * config.image_size[0] * config.image_size[1]


def estimated_fit(out: Path, board: Board):
    """The estimate's fit on ``board`` (margin 100 %: "will not fit") and the LUT-RAM limits
    to build with; ``(None, None)`` when OUT has no estimate or the board no model."""
    path = out / "reports" / "estimate.json"
    if board.family not in FAMILIES or not path.is_file():
        return None, None
    estimate = json.loads(path.read_text())
    figures = estimate.get("resources", {}).get(board.family)
    if figures is None:
        return None, None
    limits = figures.get("lut_ram_limits")
    fit = check_fit(Resources(**figures["total"]), board, 1.0,
                    tuple(limits) if limits else None)
    return fit, fit.lut_ram_limits


def build_out(out: Path, board: Board, *, baud: int = DEFAULT_BAUD, seed: int = 1,
              force: bool = False) -> BuildResult:
    """Build OUT's generated network for ``board`` into ``OUT/build/<board>``, print what
    the tools report, and return it; ``ConfigError`` when the estimate says it will not fit
    (unless ``force``), ``ToolError`` when the tools fail or the design does not fit."""
    accelerator, description = load_generated_accelerator(out)
    fit, lut_ram_limits = estimated_fit(out, board)
    if fit is not None and not fit.ok:
        message = (f"the resource estimate says {out}'s design does not fit the "
                   f"{board.description}: " + "; ".join(o.line() for o in fit.overflows))
        if not force:
            raise ConfigError(message + f"; generate for it (binaryvit generate {out} --board "
                              f"{board.name}) or pass --force to run the tools anyway")
        print(f"warning: {message}; building anyway (--force)")
    wrapper = UARTBoardWrapper(accelerator, pixels=image_pixels(out, description),
                               num_logits=int(description["classes"]),
                               divisor=baud_divisor(board.clock_hz, baud))
    target = out / "build" / board.name
    failure = None
    with atomic_directory(target, force=True) as folder:
        try:
            result = build_board(BoardTop(wrapper), board, folder, seed=seed,
                                 lut_ram_limits=lut_ram_limits)
        except ToolError as exc:   # keep the folder: its tool logs say what went wrong
            failure = exc
    if failure is not None:
        raise ToolError(f"{failure} (logs kept in {target})")
    print(f"{board.description}: {'built' if result.ok else 'FAILED'} in {result.seconds:.0f} s "
          f"-> {target}")
    for name, usage in result.utilisation.items():
        if usage.used and name in board.capacity:
            print(f"  {name:>14}: {usage.used:6d} / {usage.available:6d} "
                  f"({100 * usage.used / usage.available:.0f} %)")
    for clock, fmax in result.fmax_mhz.items():
        print(f"  Fmax {clock}: {fmax['achieved']:.1f} MHz (board clock {fmax['constraint']:.1f} MHz)")
    if result.yosys_cells and board.family == "xilinx":
        luts = sum(n for cell, n in result.yosys_cells.items() if cell.startswith("LUT"))
        print(f"  LUTs (yosys synth_xilinx): {luts}; Verilog + XDC for Vivado in {target}")
    if result.overflows:
        raise ToolError(f"the design does not fit the {board.description}: "
                        + "; ".join(result.overflows) + f" (logs in {target})")
    if result.bitstream:
        print(f"  bitstream: {target / result.bitstream}")
    return result


def run(args: argparse.Namespace) -> int:
    build_out(Path(args.out), get_board(args.board), baud=args.baud, seed=args.seed,
              force=args.force)
    return 0
