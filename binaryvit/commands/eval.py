"""Evaluate a trained checkpoint: top-1 accuracy on the test split of its data set.

Without --data it uses the embedded digits' fixed test split (the one `binaryvit train`
held out); --data takes the same .npz / image-folder forms as `binaryvit train`.
"""
from __future__ import annotations

import argparse

from binaryvit.errors import DataError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.train.data import check_dataset_fits, load_dataset
from binaryvit.golden.train.training import evaluate

NAME = "eval"
HELP = "print a checkpoint's top-1 accuracy on the test split"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (e.g. out/model.pt)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help=".npz file or image folder (default: the embedded digits)")


def run(args: argparse.Namespace) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    model = checkpoint.build_model()
    config = checkpoint.config
    data = load_dataset(args.data)
    check_dataset_fits(data, (config.in_channels, *config.image_size), config.name)
    if data.num_classes > config.num_classes:
        raise DataError(f"{data.source} has {data.num_classes} classes, the checkpoint's "
                        f"model predicts {config.num_classes}")
    accuracy = evaluate(model, data.test_images, data.test_labels)
    correct = round(accuracy * len(data.test_labels))
    print(f"top-1 {100 * accuracy:.2f}% ({correct}/{len(data.test_labels)}) on the test split "
          f"of {data.source} ({config.name}, {'binary' if config.binary else 'float'})")
    return 0
