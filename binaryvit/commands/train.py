"""Train BinaryViT: a float teacher, then the binary student by knowledge distillation.

Without --data it trains on scikit-learn's bundled 8x8 digits (fixed stratified 80/20 split,
random_state=0). --data takes a .npz holding `images` [N, H, W] or [N, C, H, W] and
integer `labels` [N] (optionally `test_images` / `test_labels`), or a folder with one
sub-folder of grayscale or RGB images per class, at the config's size. --config is a named
config or your own JSON file (`binaryvit config NAME > my.json` to start one); without it
the named config whose input size matches the data is used (tiny-digits for the digits). The checkpoint (weights, config, metrics,
versions) is written atomically to --output. Under torchrun it trains data-parallel (DDP,
gloo); rank 0 writes the checkpoint.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from binaryvit.errors import OutputPathError
from binaryvit.golden.float_model.checkpoint import save_checkpoint
from binaryvit.golden.float_model.config import CONFIGS
from binaryvit.golden.float_model.config_file import named_config_for, resolve_config
from binaryvit.golden.train.data import load_dataset
from binaryvit.golden.train.training import TrainSettings, distributed_context_from_env, train_binaryvit

NAME = "train"
HELP = "train the float teacher and the binary student (default: tiny-digits on digits)"
ORDER = 10
DEFAULT_OUTPUT = Path("out") / "model.pt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainSettings()
    parser.add_argument("--config", default=None, metavar="NAME|FILE.json",
                        help=f"model config: {', '.join(sorted(CONFIGS))} or a JSON file "
                             f"(default: the named config of the data's size)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help=".npz file or image folder (default: the embedded digits)")
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), metavar="PATH",
                        help=f"checkpoint file to write (default {DEFAULT_OUTPUT})")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing checkpoint at --output")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"binary student epochs (default {defaults.epochs})")
    parser.add_argument("--teacher-epochs", type=int, default=defaults.teacher_epochs,
                        help=f"float teacher epochs, 0 = no distillation "
                             f"(default {defaults.teacher_epochs})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr,
                        help=f"the float teacher's learning rate, and the student's with "
                             f"--teacher-epochs 0 (default {defaults.lr})")
    parser.add_argument("--student-lr", type=float, default=defaults.student_lr,
                        help=f"the distilled binary student's learning rate "
                             f"(default {defaults.student_lr})")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for PyTorch (default: PyTorch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    for element in ("global-pool", "multi-pool", "layer-scale", "pyramid"):
        parser.add_argument(f"--no-{element}", action="store_true",
                            help=f"ablation: build the network without {element.replace('-', ' ')}")


def check_output_path(path: Path, force: bool) -> None:
    """Refuse, before any training, an output that exists (without force) or cannot be written."""
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder; give a file path such as {path / 'model.pt'}")
    if path.exists() and not force:
        raise OutputPathError(f"output {path} exists already (use --force to replace it)")
    ancestor = path.parent if str(path.parent) else Path(".")
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK):
        raise OutputPathError(f"cannot write {path}: {ancestor} is not a writable folder")


def config_and_data(config_spec: str | None, data_path: str | None):
    """The config (``config_spec`` resolved, else the named one of the data's size) and the
    data set, read with the config's channel count when it is known."""
    config = resolve_config(config_spec) if config_spec is not None else None
    data = load_dataset(data_path, config.in_channels if config is not None else None)
    if config is None:
        config = named_config_for(data.image_shape, data.source)
    return config, data


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    check_output_path(output, args.force)
    config, data = config_and_data(args.config, args.data)
    config = config.replace(
        global_pool=not args.no_global_pool, multi_pool=not args.no_multi_pool,
        layer_scale=not args.no_layer_scale, pyramid=not args.no_pyramid)
    settings = TrainSettings(epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                             batch_size=args.batch_size, lr=args.lr,
                             student_lr=args.student_lr, seed=args.seed,
                             progress=not args.no_progress)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    context = distributed_context_from_env()
    result = train_binaryvit(config, data, settings, context)
    if context.is_main:
        try:
            save_checkpoint(output, result.model, result.metrics)
        except OSError as exc:
            raise OutputPathError(f"cannot write {output}: {exc.strerror or exc}") from None
        m = result.metrics
        teacher = (f", teacher {100 * m['teacher_test_accuracy']:.2f}%"
                   if "teacher_test_accuracy" in m else "")
        print(f"binary test top-1 {100 * m['test_accuracy']:.2f}% on {data.source} "
              f"({len(data.test_labels)} images){teacher}; {m['seconds']:.0f} s; wrote {output}")
    return 0
