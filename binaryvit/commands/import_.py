"""Import a checkpoint made by the paper's official code (Phuoc-Hoan-Le/BinaryViT).

CKPT is their training checkpoint (model, optimizer, lr_scheduler, epoch, scaler, args),
{'model': state_dict} or a bare state_dict, of --model-type extra-res-pyramid with
--replace-ln-bn and 1-bit (binary) or 32-bit (float) weights and activations. It is read
without running pickled code (only argparse.Namespace is allowed beyond tensors). --config
is their ViTConfig JSON (configs/<model>/config.json, or its folder); without it the
paper's binaryvit-small-patch4-224 shape is assumed. The flags come from the checkpoint's
args, or from its parameter names. Their model takes normalised pixels, ours raw ones:
--input-mean/--input-std (per channel, raw pixel units) default to ImageNet's statistics in
0..255 units, what their data loader normalised with. The result is a binaryvit checkpoint
for `binaryvit eval / quantize / generate`. Refused with one line: LayerNorm models,
--some-fp, other bit widths, an attention clip <= 0, weights whose official sign is 0, an
unknown layout, a config that does not match the checkpoint, a truncated file.
See docs/import.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from binaryvit.commands.train import check_output_path
from binaryvit.golden.official.importer import import_official

NAME = "import"
HELP = "import a checkpoint of the paper's official BinaryViT code"
ORDER = 12
DEFAULT_OUTPUT = Path("out") / "model.pt"


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="official checkpoint (.pth)")
    parser.add_argument("--config", default=None, metavar="CONFIG.json",
                        help="their ViTConfig JSON (default: the paper's "
                             "binaryvit-small-patch4-224)")
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), metavar="PATH",
                        help=f"binaryvit checkpoint to write (default {DEFAULT_OUTPUT})")
    parser.add_argument("--force", action="store_true", help="replace an existing --output")
    parser.add_argument("--name", default=None,
                        help="config name stored in the checkpoint (default official-<CKPT stem>)")
    parser.add_argument("--input-mean", type=_floats, default=None, metavar="M[,M,M]",
                        help="per-channel mean in raw pixel units (default ImageNet's x 255)")
    parser.add_argument("--input-std", type=_floats, default=None, metavar="S[,S,S]",
                        help="per-channel std in raw pixel units (default ImageNet's x 255)")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    check_output_path(output, args.force)
    imported = import_official(args.checkpoint, output, args.config, name=args.name,
                               input_mean=args.input_mean, input_std=args.input_std)
    c = imported.config
    stages = "/".join(str(s.dim) for s in c.stages())
    depths = "/".join(str(s.depth) for s in c.stages())
    print(f"imported {args.checkpoint} ({imported.layout}, "
          f"{'binary' if c.binary else 'float'}, widths {stages}, depths {depths}, "
          f"{c.num_classes} classes, {c.in_channels}x{c.image_size[0]}x{c.image_size[1]} "
          f"input) -> {output}")
    return 0


