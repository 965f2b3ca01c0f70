"""Quantize a trained checkpoint into the integer model the hardware runs.

Folds BatchNorm, the weight scales, LayerScale and the pooling divisors into integer
constants, picks the stream's fixed-point format by calibration on training images, proves
by interval bounds that no accumulator or intermediate overflows (or names the step that
would). Writes OUT/intmodel.npz and OUT/manifest.json; refuses to replace existing
quantizer outputs unless --force. The hardware folding and the weight ROM images for it
come from `binaryvit generate`.

--engine quantizes at the layer-sequential engine's formats (16-bit stream and constants
for the UP5K's SB_MAC16, a 36-bit accumulator; explicit widths still override them) and
prints the integer top-1 on the whole test split at those formats beside the default
(24-bit) formats'.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from binaryvit.quantize.calibrate import FIDELITY_SEARCH_BITS, RULES
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import DEFAULT_CALIBRATION_IMAGES, quantize_checkpoint

NAME = "quantize"
HELP = "fold a checkpoint into the integer model and prove its widths"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = QuantFormats()
    parser.add_argument("checkpoint", metavar="CKPT", nargs="?", default="out/model.pt",
                        help="trained checkpoint (default out/model.pt)")
    parser.add_argument("-o", "--out", default="out", metavar="OUT",
                        help="output folder (default out/)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="calibration data: .npz or image folder (default: embedded digits)")
    parser.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES,
                        metavar="N", help=f"training images used for calibration "
                                          f"(default {DEFAULT_CALIBRATION_IMAGES})")
    parser.add_argument("--calibration", choices=RULES, default="range",
                        help="how the stream's binary point is chosen: 'range' (the largest "
                             "calibration value fits, default) or 'fidelity' (of that and up to "
                             f"{FIDELITY_SEARCH_BITS} finer points, whose integer logits are "
                             "closest to the float model's; saturates rare peaks; "
                             "docs/quantization.md)")
    parser.add_argument("--engine", action="store_true",
                        help="quantize at the engine's formats and print the accuracy at "
                             "them beside the default formats'")
    parser.add_argument("--stream-width", type=int, default=None, metavar="BITS",
                        help=f"width of the real-valued activations (default "
                             f"{defaults.stream_width}; --engine 16)")
    parser.add_argument("--const-bits", type=int, default=None, metavar="BITS",
                        help=f"width of the folded multipliers (default {defaults.const_bits}; "
                             f"--engine 16)")
    parser.add_argument("--acc-width", type=int, default=None, metavar="BITS",
                        help=f"widest accumulator the overflow proof accepts "
                             f"(default {defaults.acc_width}; --engine 36)")
    parser.add_argument("--force", action="store_true",
                        help="replace existing intmodel.npz and manifest.json (and remove "
                             "weights/, generated for the model they replace)")


def engine_formats() -> QuantFormats:
    """The formats of the iCEBreaker's engine (``EngineConfig`` UP5K)."""
    from binaryvit.hw.engine.board.generate import engine_formats as formats_of, engine_target
    return formats_of(engine_target(None).config)


def run(args: argparse.Namespace) -> int:
    base = engine_formats() if args.engine else QuantFormats()
    given = {k: v for k, v in (("stream_width", args.stream_width),
                               ("const_bits", args.const_bits), ("acc_width", args.acc_width))
             if v is not None}
    formats = base.replace(**given) if given else base
    q = quantize_checkpoint(args.checkpoint, args.out, data=args.data, formats=formats,
                            force=args.force,
                            calibration_images=args.calibration_images,
                            calibration_rule=args.calibration)
    f = q.intmodel.formats
    widest = q.proof.widest()
    print(f"quantized {q.intmodel.config.name}: {len(q.intmodel.steps)} steps, "
          f"{len(q.intmodel.xnor_layers())} binary layers; stream ({f['stream_width']}, frac "
          f"{f['stream_frac']}); widest intermediate {widest.bits} bits "
          f"({widest.step} {widest.quantity}) <= {q.proof.acc_width}")
    print(f"wrote {Path(args.out) / 'intmodel.npz'}, {Path(args.out) / 'manifest.json'}")
    if args.engine:
        from binaryvit.format_accuracy import format_accuracy, format_accuracy_line
        from binaryvit.golden.train.data import load_dataset
        dataset = load_dataset(args.data, q.intmodel.config.in_channels)
        compared = {"these formats": formats, "the default formats": QuantFormats()}
        accuracy = format_accuracy(args.checkpoint, dataset, compared, args.calibration_images)
        print(format_accuracy_line(accuracy, compared, len(dataset.test_labels)))
    return 0
