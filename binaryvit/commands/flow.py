"""Run the whole flow on one output folder: train → quantize → generate → sim (→ build).

This is what `binaryvit` with no arguments runs. On the embedded digits (or --data, with
--config or the named config of the data's size) it trains the float
teacher and the binary student (or reuses OUT/model.pt when it exists, unless --retrain),
quantizes it into OUT/intmodel.npz and ROM images, generates the accelerator's Verilog,
simulates --images test images in Verilator and compares every logit with the integer
reference, then prints one summary: accuracy (float and integer on the whole test split;
integer and RTL on the same simulated images), mismatching logits, cycles per image and the
resource estimate. The flow owns the derived files in OUT and replaces them
on each run; the checkpoint is only replaced with --retrain.

With --board B the flow targets that board: it quantizes with the board's formats (the
ULX3S: 17-bit stream, 18-bit constants, one DSP block per multiplier), generates the
fastest folding whose estimate fits the board, simulates that exact Verilog, and builds it
(Yosys and nextpnr: long for a whole network). A mismatch stops the flow before the build.

When no dataflow folding fits the board (always on the iCEBreaker), or with --arch engine,
the flow targets the layer-sequential engine instead: it quantizes again at the engine's
formats (16-bit stream and constants, 36-bit accumulator) and prints the test accuracy at
them beside the board formats', compiles the program (generate --arch engine: the
parameter image OUT/params.bin), runs --images test images through the engine RTL in
Verilator, builds the engine's board top with 3 placement seeds, and ends with the
commands that flash the bitstream and the parameter image.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from binaryvit.commands.build import build_out
from binaryvit.commands.generate import generate_arch, remove_engine_files
from binaryvit.commands.train import config_and_data
from binaryvit.errors import ConfigError, FoldingError
from binaryvit.flow_summary import accuracy_lines
from binaryvit.golden.float_model.checkpoint import load_checkpoint, save_checkpoint
from binaryvit.golden.intref.int_network import int_predict
from binaryvit.golden.train.training import TrainSettings, distributed_context_from_env, train_binaryvit
from binaryvit.hw.boards.definitions import BOARDS, get_board
from binaryvit.hw.estimate.device_fit import estimate_lines
from binaryvit.hw.network.generate import generate
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import quantize_checkpoint
from binaryvit.sim.network_sim import simulate

NAME = "flow"
HELP = "train, quantize, generate and simulate (default: tiny-digits on the embedded digits)"
ORDER = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainSettings()
    parser.add_argument("-o", "--out", default="out", metavar="OUT",
                        help="output folder for every stage (default out/)")
    parser.add_argument("--config", default=None, metavar="NAME|FILE.json",
                        help="model config, named or a JSON file (default: the named config "
                             "of the data's size; tiny-digits for the digits)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help=".npz file or image folder (default: the embedded digits)")
    parser.add_argument("--retrain", action="store_true",
                        help="train again even when OUT/model.pt exists")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"binary student epochs (default {defaults.epochs})")
    parser.add_argument("--teacher-epochs", type=int, default=defaults.teacher_epochs,
                        help=f"float teacher epochs (default {defaults.teacher_epochs})")
    parser.add_argument("--images", type=int, default=20, metavar="N",
                        help="test images simulated in Verilator (default 20)")
    parser.add_argument("--target-cycles", type=int, default=None, metavar="N",
                        help="cycles per image the folding must meet (default: the generator's)")
    parser.add_argument("--board", default=None, choices=sorted(b for b in BOARDS if b != "arty"),
                        help="quantize, fold and build for this board (see above)")
    parser.add_argument("--arch", default=None, choices=("dataflow", "engine"),
                        help="dataflow network or engine (default: the dataflow, or the engine "
                             "when no dataflow folding fits --board)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="engine builds: placement seeds for the median Fmax (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _stage(name: str) -> float:
    print(f"== {name}", flush=True)
    return time.monotonic()


def board_formats(board) -> QuantFormats:
    """The quantizer's formats for ``board`` (its stream and constant widths, if any)."""
    defaults = QuantFormats()
    return QuantFormats(stream_width=board.stream_width or defaults.stream_width,
                        const_bits=board.const_bits or defaults.const_bits)


def _integer_top1(intmodel, data) -> float:
    """The integer model's top-1 accuracy on ``data``'s whole test split."""
    test_images = torch.as_tensor(data.test_images).to(torch.int64)
    test_labels = torch.as_tensor(data.test_labels).to(torch.int64)
    return float((int_predict(intmodel, test_images) == test_labels).float().mean())


def _print_summary_head(title: str, out: Path, data, float_top1: float, int_top1: float,
                        sim_report: dict) -> None:
    """The summary's title line and its accuracy lines (float, integer, RTL on the same
    images), shared by the dataflow and the engine flow."""
    print()
    print(f"{title} on {data.source} -> {out}/")
    for text in accuracy_lines(float_top1, int_top1, len(data.test_labels), sim_report):
        print(f"  {text}")


def _engine_flow(args, out: Path, board, checkpoint: Path, data, float_top1: float,
                 accuracy: dict) -> int:
    """The engine's part of the flow, from quantize at its formats to the build."""
    from binaryvit.commands.build import build_engine_out
    from binaryvit.commands.generate import engine_lines
    from binaryvit.commands.quantize import engine_formats
    from binaryvit.format_accuracy import format_accuracy_line
    from binaryvit.sim.engine_report import simulate_engine

    _stage("quantize (the engine's formats)")
    formats = engine_formats()
    quantized = quantize_checkpoint(checkpoint, out, data=args.data, formats=formats, force=True)
    int_top1 = _integer_top1(quantized.intmodel, data)
    accuracy = {"the engine's formats": (formats, int_top1), **accuracy}
    line = format_accuracy_line({k: v[1] for k, v in accuracy.items()},
                                {k: v[0] for k, v in accuracy.items()}, len(data.test_labels))
    print(line)

    _stage("generate (engine)")
    _, estimate = generate_arch(out, "engine", board=board, model=quantized.intmodel,
                                proof=quantized.proof)
    for text in engine_lines(out, estimate):
        print(text)

    _stage(f"sim ({args.images} images, engine RTL in Verilator)")
    sim_report = simulate_engine(out, images=args.images, progress=not args.no_progress,
                                 data=args.data)
    totals = sim_report["totals"]

    _print_summary_head("binaryvit flow (engine)", out, data, float_top1, int_top1, sim_report)
    print(f"  {line}")
    print(f"  cycles per image  {totals['cycles_per_image_measured']:.0f} on the RTL, "
          f"{totals['cycles_per_image_estimated']} in the cycle model")
    for text in engine_lines(out, estimate)[:2]:
        print(f"  {text}")
    print(f"  reports: {out}/reports/estimate.json, {out}/reports/sim.json")
    if totals["mismatches"]:
        return 1
    if board is not None:
        _stage(f"build ({board.name}, engine, {args.seeds} seeds)")
        build_engine_out(out, board, seeds=args.seeds, force=True)
    return 0


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    checkpoint = out / "model.pt"
    board = get_board(args.board) if args.board else None
    if board is not None and args.target_cycles is not None:
        raise ConfigError("give --board or --target-cycles, not both: with a board the "
                          "flow picks the fastest folding that fits it")
    config, data = config_and_data(args.config, args.data)

    start = _stage("train")
    if checkpoint.exists() and not args.retrain:
        print(f"using the existing checkpoint {checkpoint} (--retrain to train again)")
    else:
        settings = TrainSettings(epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                                 progress=not args.no_progress)
        result = train_binaryvit(config, data, settings,
                                 distributed_context_from_env())
        save_checkpoint(checkpoint, result.model, result.metrics)
        print(f"trained in {time.monotonic() - start:.0f} s; wrote {checkpoint}")
    float_top1 = load_checkpoint(checkpoint).metrics["test_accuracy"]

    _stage("quantize")
    formats = board_formats(board) if board is not None else QuantFormats()
    quantized = quantize_checkpoint(checkpoint, out, data=args.data, formats=formats,
                                    force=True)
    int_top1 = _integer_top1(quantized.intmodel, data)

    compared = {"the board formats" if board else "the default formats": (formats, int_top1)}
    if args.arch == "engine":
        return _engine_flow(args, out, board, checkpoint, data, float_top1, compared)
    _stage("generate")
    try:
        estimate = generate(out, target_cycles=args.target_cycles, model=quantized.intmodel,
                            board=board)
    except FoldingError as exc:
        if args.arch is not None or board is None:
            raise
        print(f"dataflow: {exc}; the flow targets the engine instead")
        return _engine_flow(args, out, board, checkpoint, data, float_top1, compared)
    remove_engine_files(out)
    _stage(f"sim ({args.images} images, Verilator)")
    sim_report = simulate(out, images=args.images, progress=not args.no_progress,
                          data=args.data)
    totals = sim_report["totals"]

    _print_summary_head("binaryvit flow", out, data, float_top1, int_top1, sim_report)
    measured = totals["cycles_per_image_measured"]
    if measured is None:  # fewer than 3 images: no image ran in steady state
        print(f"  cycles per image  {totals['cycles_per_image_estimated']} estimated "
              f"(too few simulated images for a steady-state measurement)")
    else:
        print(f"  cycles per image  {measured:.0f} measured over {totals['steady_images']} "
              f"steady images, {totals['cycles_per_image_estimated']} estimated "
              f"(efficiency {totals['efficiency']:.3f} vs the folding's ideal)")
    for line in estimate_lines(estimate):
        print(f"  {line}")
    print(f"  reports: {out}/reports/estimate.json, {out}/reports/sim.json")
    if totals["mismatches"]:
        return 1
    if board is not None:
        _stage(f"build ({board.name})")
        build_out(out, board)
    return 0
