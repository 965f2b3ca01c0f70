"""Generate the accelerator: OUT/intmodel.npz → OUT/rtl/* and OUT/reports/estimate.json.

Two architectures (--arch):

- dataflow: one kernel per integer step. The folding pass picks each layer's parallelism
  to meet --target-cycles per image (default: 32 cycles per token of the largest grid),
  the fastest folding within --lut-budget, or with --board the fastest folding whose
  resource estimate fits that board (logic within --margin of the device, block RAM and
  DSPs within all of it). --folding FILE forces per-layer folds ({"step name": {"pe": 4,
  "simd": 8}}). Writes rtl/binaryvit_top.v, rtl/network.json, weights/.
- engine: the layer-sequential engine (docs/engine.md) runs the compiled program; on the
  iCEBreaker its parameters live in SPRAM and load from the SPI flash at boot, on the
  ULX3S in block RAM the bitstream initialises. The model must be quantized at the
  engine's formats (quantize --engine). Writes rtl/engine.json (the bitstream's design:
  design id, addresses), rtl/engine.v, rtl/program.lst and params.bin (the parameter
  image to flash).

Default: the dataflow, except with --board when no folding of it fits the board: then
the engine (the iCEBreaker always; the ULX3S for models too big for its dataflow). The
Verilog is deterministic: the same inputs give byte-identical files.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.boards.definitions import BOARDS, get_board
from binaryvit.hw.estimate.device_fit import DEFAULT_MARGIN, estimate_lines

NAME = "generate"
HELP = "generate the accelerator (dataflow network or engine) from OUT/intmodel.npz"
ORDER = 40
ARCHES = ("dataflow", "engine")
ENGINE_FILES = ("rtl/engine.json", "rtl/engine.v", "rtl/program.lst", "params.bin")
DATAFLOW_FILES = ("rtl/network.json", "rtl/binaryvit_top.v")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder holding intmodel.npz")
    parser.add_argument("--arch", choices=ARCHES, default=None,
                        help="dataflow network or layer-sequential engine (default: the "
                             "dataflow, or the engine when no dataflow folding fits --board)")
    goal = parser.add_mutually_exclusive_group()
    goal.add_argument("--target-cycles", type=int, default=None, metavar="N",
                      help="dataflow: cycles per image every layer must meet")
    goal.add_argument("--lut-budget", type=int, default=None, metavar="LUTS",
                      help="dataflow: fastest folding whose LUT estimate fits this budget")
    goal.add_argument("--board", default=None, choices=sorted(b for b in BOARDS if b != "arty"),
                      help="dataflow: fastest folding whose resource estimate fits this "
                           "board; engine: the board's engine target (default icebreaker)")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="SHARE",
                        help=f"with --board: share of the logic cells and flip-flops the "
                             f"design may fill (default {DEFAULT_MARGIN})")
    parser.add_argument("--folding", default=None, metavar="FILE",
                        help="dataflow: JSON file of per-layer fold overrides")
    parser.add_argument("--tap", action="append", default=[], metavar="STEP",
                        help="dataflow: mirror this step's stream on a debug port (repeatable)")


def generated_arch(out: Path) -> str | None:
    """The architecture OUT/rtl holds (``None``: nothing generated)."""
    if (out / "rtl" / "engine.json").is_file():
        return "engine"
    if (out / "rtl" / "network.json").is_file():
        return "dataflow"
    return None


def _remove(out: Path, names) -> None:
    for name in names:
        (out / name).unlink(missing_ok=True)


def remove_engine_files(out: Path) -> None:
    """After the dataflow network is generated: OUT holds one design."""
    _remove(out, ENGINE_FILES)


def generate_arch(out: Path, arch: str | None, *, board=None, model=None, proof=None,
                  target_cycles=None, lut_budget=None, folding=None, taps=(),
                  margin: float = DEFAULT_MARGIN) -> tuple[str, dict]:
    """Generate OUT for ``arch`` (``None``: the default above); ``(arch, estimate)``.
    The other architecture's files are removed, so OUT/rtl holds one design."""
    from binaryvit.hw.network.generate import generate
    if arch is None:
        arch = "dataflow"
        if board is not None and folding is None:
            try:
                estimate = generate(out, board=board, model=model, overrides=folding,
                                    taps=taps, margin=margin)
            except FoldingError as exc:
                print(f"dataflow: {exc}; generating the engine instead")
                arch = "engine"
            else:
                _remove(out, ENGINE_FILES)
                return "dataflow", estimate
    if arch == "engine":
        if target_cycles is not None or lut_budget is not None or folding or taps:
            raise ConfigError("--target-cycles, --lut-budget, --folding and --tap are "
                              "dataflow options; the engine has no folding")
        from binaryvit.hw.engine.board.generate import generate_engine
        estimate = generate_engine(out, board=board.name if board else None, model=model,
                                   proof=proof)
        _remove(out, DATAFLOW_FILES)
        return "engine", estimate
    estimate = generate(out, target_cycles=target_cycles, lut_budget=lut_budget,
                        overrides=folding, taps=taps, board=board, margin=margin, model=model)
    _remove(out, ENGINE_FILES)
    return "dataflow", estimate


def engine_lines(out: Path, estimate: dict) -> list[str]:
    """The engine's generate summary."""
    device = estimate["device"]
    fit = ("fits" if device["fits"] else "does NOT fit") + f" the {device['board']}: " + \
        ", ".join(f"{k} {u['needed']}/{u['available']}" for k, u in device["utilisation"].items())
    return [f"engine for the {estimate['board']}: {estimate['instructions']} instructions, "
            f"{estimate['cycles_per_image']} cycles per image (cycle model), parameter "
            f"payload {estimate['payload_bytes']} bytes, design id {estimate['design_id']}",
            f"estimate {fit}" + ("" if device["fits"] else
                                 "; over: " + "; ".join(device["overflows"])),
            f"wrote {out}/rtl/engine.json, {out}/rtl/engine.v, {out}/rtl/program.lst, "
            f"{out}/params.bin, {out}/reports/estimate.json"]


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    board = get_board(args.board) if args.board else None
    arch, estimate = generate_arch(out, args.arch, board=board, target_cycles=args.target_cycles,
                                   lut_budget=args.lut_budget, folding=args.folding,
                                   taps=args.tap, margin=args.margin)
    if arch == "engine":
        for line in engine_lines(out, estimate):
            print(line)
        return 0
    print(f"wrote {out}/rtl/binaryvit_top.v: {len(estimate['layers'])} layers, "
          f"{estimate['cycles_per_image']} cycles per image (bottleneck "
          f"{estimate['bottleneck']}), {estimate['fifo_bits']} FIFO bits; estimate in "
          f"{out}/reports/estimate.json")
    for line in estimate_lines(estimate):
        print(f"  {line}")
    return 0
