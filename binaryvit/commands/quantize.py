"""Quantize a trained checkpoint into the integer model the hardware runs.

Folds BatchNorm, the weight scales, LayerScale and the pooling divisors into integer
constants, picks the stream's fixed-point format by calibration on training images, proves
by interval bounds that no accumulator or intermediate overflows (or names the step that
would). Writes OUT/intmodel.npz and OUT/manifest.json; refuses to replace existing
quantizer outputs unless --force. The hardware folding and the weight ROM images for it
come from `binaryvit generate`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

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
    parser.add_argument("--stream-width", type=int, default=defaults.stream_width, metavar="BITS",
                        help=f"width of the real-valued activations (default {defaults.stream_width})")
    parser.add_argument("--const-bits", type=int, default=defaults.const_bits, metavar="BITS",
                        help=f"width of the folded multipliers (default {defaults.const_bits})")
    parser.add_argument("--acc-width", type=int, default=defaults.acc_width, metavar="BITS",
                        help=f"widest accumulator the overflow proof accepts "
                             f"(default {defaults.acc_width})")
    parser.add_argument("--force", action="store_true",
                        help="replace existing intmodel.npz and manifest.json (and remove "
                             "weights/, generated for the model they replace)")


def run(args: argparse.Namespace) -> int:
    formats = QuantFormats(stream_width=args.stream_width, const_bits=args.const_bits,
                           acc_width=args.acc_width)
    q = quantize_checkpoint(args.checkpoint, args.out, data=args.data, formats=formats,
                            force=args.force,
                            calibration_images=args.calibration_images)
    f = q.intmodel.formats
    widest = q.proof.widest()
    print(f"quantized {q.intmodel.config.name}: {len(q.intmodel.steps)} steps, "
          f"{len(q.intmodel.xnor_layers())} binary layers; stream ({f['stream_width']}, frac "
          f"{f['stream_frac']}); widest intermediate {widest.bits} bits "
          f"({widest.step} {widest.quantity}) <= {q.proof.acc_width}")
    print(f"wrote {Path(args.out) / 'intmodel.npz'}, {Path(args.out) / 'manifest.json'}")
    return 0
