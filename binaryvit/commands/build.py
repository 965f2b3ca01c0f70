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

When OUT holds the engine (`generate --arch engine`), the build is the engine's board top
(hw/engine/board/): the engine, the UART protocol and, on the iCEBreaker, the boot loader
that reads OUT/params.bin from the SPI flash (Yosys `synth_ice40 -dsp`: the vector unit's
SB_MAC16). --seeds N places it again with N seeds and reports the median Fmax; the build
ends with the commands that flash the bitstream and the parameter image.
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
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="place and route with N seeds (seed, seed+1, ...) and report "
                             "the median Fmax (default 1)")
    parser.add_argument("--uart-load", action="store_true",
                        help="engine: also accept a parameter image over the UART "
                             "(host.load_parameters; costs a second image receiver)")
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
    return _build_and_report(BoardTop(wrapper), out, board, seed=seed,
                             lut_ram_limits=lut_ram_limits)


def _build_and_report(top, out: Path, board: Board, *, seed: int, lut_ram_limits=None,
                      synth_opts: str = "", extra_files: dict[str, bytes] | None = None,
                      raise_on_overflow: bool = True) -> BuildResult:
    target = out / "build" / board.name
    failure = None
    with atomic_directory(target, force=True) as folder:
        try:
            result = build_board(top, board, folder, seed=seed, lut_ram_limits=lut_ram_limits,
                                 synth_opts=synth_opts)
        except ToolError as exc:   # keep the folder: its tool logs say what went wrong
            failure = exc
        for name, data in (extra_files or {}).items():
            (folder / name).write_bytes(data)
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
    if result.overflows and raise_on_overflow:
        raise ToolError(f"the design does not fit the {board.description}: "
                        + "; ".join(result.overflows) + f" (logs in {target})")
    if result.bitstream:
        print(f"  bitstream: {target / result.bitstream}")
    return result


def engine_board_top(out: Path, board: Board, baud: int = DEFAULT_BAUD, uart_load: bool = False):
    """The engine's board top for OUT's engine design on ``board`` (``ConfigError`` when
    OUT's engine was compiled for another configuration or the board has no engine target),
    and the parameter image's bytes."""
    from binaryvit.hw.engine.board.board_top import EngineBoard, EngineBoardTop, flash_wake_cycles
    from binaryvit.hw.engine.board.design import PARAMETER_IMAGE_FILE, load_engine_design
    from binaryvit.hw.engine.board.generate import engine_target
    from binaryvit.hw.engine.parameter_image import read_parameter_image
    design = load_engine_design(out / "rtl" / "engine.json")
    target = engine_target(board.name)
    if design.config != target.config:
        raise ConfigError(f"{out}'s engine was compiled for engine {design.config.name!r}; the "
                          f"{board.name} runs {target.config.name!r}: binaryvit generate {out} "
                          f"--arch engine --board {board.name}")
    image = read_parameter_image(out / PARAMETER_IMAGE_FILE, expected_design_id=design.design_id)
    divisor = baud_divisor(board.clock_hz, baud)
    half_period = 1 if board.clock_hz <= 25e6 else 2
    if target.boot == "flash":
        engine = EngineBoard(design, divisor=divisor, half_period=half_period,
                             wake_cycles=flash_wake_cycles(board.clock_hz), uart_load=uart_load)
    else:
        engine = EngineBoard(design, divisor=divisor, boot="preloaded", memory="model",
                             init=image.memory(design.config.total_words), uart_load=uart_load)
    return EngineBoardTop(engine), target, image.to_bytes()


def median_fmax(results: list[BuildResult]) -> dict[str, float]:
    """Per clock, the median of the achieved Fmax over the builds that routed."""
    import statistics
    clocks = {c for r in results for c in r.fmax_mhz}
    return {c: statistics.median(r.fmax_mhz[c]["achieved"] for r in results if c in r.fmax_mhz)
            for c in sorted(clocks)}


def build_engine_out(out: Path, board: Board, *, baud: int = DEFAULT_BAUD, seed: int = 1,
                     seeds: int = 1, force: bool = False, uart_load: bool = False) -> BuildResult:
    """Build OUT's engine for ``board`` into ``OUT/build/<board>`` (with ``params.bin``
    beside the bitstream), place it again with ``seeds - 1`` more seeds, print what the
    tools report and how to flash; errors as ``build_out``'s."""
    from binaryvit.hw.engine.board.design import PARAMETER_IMAGE_FILE
    from binaryvit.hw.engine.loader import DEFAULT_FLASH_OFFSET
    if board.family not in ("ice40", "ecp5"):
        raise ConfigError(f"board {board.name}: the engine builds for the iCEBreaker and the ULX3S")
    fit, _ = estimated_fit(out, board)
    if fit is not None and not fit.ok:
        message = (f"the resource estimate says {out}'s engine does not fit the "
                   f"{board.description}: " + "; ".join(o.line() for o in fit.overflows))
        if not force:
            raise ConfigError(message + " (reports/estimate.json); pass --force to run the "
                              "tools anyway")
        print(f"warning: {message}; building anyway (--force)")
    top, target, image = engine_board_top(out, board, baud, uart_load)
    result = _build_and_report(top, out, board, seed=seed,
                               synth_opts="-dsp" if board.family == "ice40" else "",
                               extra_files={PARAMETER_IMAGE_FILE: image},
                               raise_on_overflow=False)
    folder = out / "build" / board.name
    if result.ok and seeds > 1:
        from binaryvit.hw.boards.board_build import place_and_route
        results = [result] + [place_and_route(folder, board, seed + k) for k in range(1, seeds)]
        for r in results:
            print(f"  seed {r.seed}: " + ", ".join(f"{c} {f['achieved']:.1f} MHz"
                                                   for c, f in r.fmax_mhz.items()))
        for clock, mhz in median_fmax(results).items():
            target_mhz = f" (target >= {board.fmax_target_mhz:g})" if board.fmax_target_mhz else ""
            print(f"  Fmax {clock}: median {mhz:.1f} MHz over {len(results)} seeds{target_mhz}")
    if result.overflows:
        raise ToolError(f"the design does not fit the {board.description}: "
                        + "; ".join(result.overflows) + f" (logs in {folder})")
    if target.boot == "flash" and result.bitstream:
        print(f"  flash both (iceprog, from the icestorm tools):\n"
              f"    iceprog {folder / result.bitstream}\n"
              f"    iceprog -o {DEFAULT_FLASH_OFFSET >> 20}M {folder / PARAMETER_IMAGE_FILE}\n"
              f"  a new parameter image for the same design needs only the second command")
    elif result.bitstream:
        print(f"  the parameters are in the bitstream's block RAM; program it with "
              f"openFPGALoader -b ulx3s {folder / result.bitstream}")
    return result


def run(args: argparse.Namespace) -> int:
    from binaryvit.commands.generate import generated_arch
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, not {args.seeds}")
    out, board = Path(args.out), get_board(args.board)
    if generated_arch(out) == "engine":
        build_engine_out(out, board, baud=args.baud, seed=args.seed, seeds=args.seeds,
                         force=args.force, uart_load=args.uart_load)
        return 0
    if args.uart_load:
        raise ConfigError("--uart-load is the engine's (OUT holds the dataflow network)")
    build_out(out, board, baud=args.baud, seed=args.seed, force=args.force)
    return 0
