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
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from binaryvit.commands.build import build_out
from binaryvit.commands.train import config_and_data
from binaryvit.errors import ConfigError
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
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _stage(name: str) -> float:
    print(f"== {name}", flush=True)
    return time.monotonic()


def board_formats(board) -> QuantFormats:
    """The quantizer's formats for ``board`` (its stream and constant widths, if any)."""
    defaults = QuantFormats()
    return QuantFormats(stream_width=board.stream_width or defaults.stream_width,
                        const_bits=board.const_bits or defaults.const_bits)


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
    test_images = torch.as_tensor(data.test_images).to(torch.int64)
    test_labels = torch.as_tensor(data.test_labels).to(torch.int64)
    int_top1 = float((int_predict(quantized.intmodel, test_images) == test_labels)
                     .float().mean())

    _stage("generate")
    estimate = generate(out, target_cycles=args.target_cycles, model=quantized.intmodel,
                        board=board)

    _stage(f"sim ({args.images} images, Verilator)")
    sim_report = simulate(out, images=args.images, progress=not args.no_progress,
                          data=args.data)
    totals = sim_report["totals"]

    print()
    print(f"binaryvit flow on {data.source} -> {out}/")
    for line in accuracy_lines(float_top1, int_top1, len(test_labels), sim_report):
        print(f"  {line}")
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
