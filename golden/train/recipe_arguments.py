"""Command-line options of a training recipe, shared by the bench scripts.

``add_recipe_arguments(parser)`` adds one option per :class:`TrainSettings` field that a
recipe comparison varies (``--epochs``, ``--teacher-epochs``, ``--batch-size``,
``--student-lr``, ``--warmup-epochs``, ``--max-shift``, ``--student-max-shift``, ``--ema-decay``,
``--student-init``, ``--temperature``, ``--label-weight``), each defaulting to the ``TrainSettings`` default;
``recipe_settings(args, **fixed)`` builds the settings from the parsed options, ``fixed``
fields (``seed``, ``progress``, ...) added or overriding; ``describe_recipe(settings)`` is a one-line
summary for a bench heading.
"""
from __future__ import annotations

import argparse

from binaryvit.golden.train.training import STUDENT_INITS, TrainSettings

_DEFAULTS = TrainSettings()


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the recipe options to ``parser`` (defaults: ``TrainSettings()``)."""
    group = parser.add_argument_group("training recipe (defaults: binaryvit train's)")
    group.add_argument("--epochs", type=int, default=_DEFAULTS.epochs, help="binary student epochs")
    group.add_argument("--teacher-epochs", type=int, default=_DEFAULTS.teacher_epochs,
                       help="float teacher epochs")
    group.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    group.add_argument("--lr", type=float, default=_DEFAULTS.lr, help="peak learning rate")
    group.add_argument("--student-lr", type=float, default=_DEFAULTS.student_lr,
                       help="the student's peak learning rate (default: --lr)")
    group.add_argument("--warmup-epochs", type=int, default=_DEFAULTS.warmup_epochs)
    group.add_argument("--max-shift", type=int, default=_DEFAULTS.max_shift,
                       help="random shifts of up to this many pixels")
    group.add_argument("--student-max-shift", type=int, default=_DEFAULTS.student_max_shift,
                       help="the distilled student's shifts (default: --max-shift)")
    group.add_argument("--ema-decay", type=float, default=_DEFAULTS.ema_decay)
    group.add_argument("--student-init", choices=STUDENT_INITS, default=_DEFAULTS.student_init)
    group.add_argument("--temperature", type=float, default=_DEFAULTS.temperature,
                       help="the distillation temperature T (loss scaled by T^2)")
    group.add_argument("--label-weight", type=float, default=_DEFAULTS.label_weight,
                       help="weight w of the student's label cross-entropy: (1-w) KD + w CE")


def recipe_settings(args: argparse.Namespace, **fixed) -> TrainSettings:
    """``TrainSettings`` of the parsed recipe options; ``fixed`` fields add to or override them."""
    fields = dict(epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                  batch_size=args.batch_size, lr=args.lr, student_lr=args.student_lr,
                  warmup_epochs=args.warmup_epochs, max_shift=args.max_shift,
                  student_max_shift=args.student_max_shift,
                  ema_decay=args.ema_decay, student_init=args.student_init,
                  temperature=args.temperature, label_weight=args.label_weight)
    return TrainSettings(**{**fields, **fixed})


def describe_recipe(settings: TrainSettings) -> str:
    """One line: epochs, batch, learning rates, warm-up, shifts, EMA, student init, loss."""
    student_lr = settings.lr if settings.student_lr is None else settings.student_lr
    student_shift = (settings.max_shift if settings.student_max_shift is None
                     else settings.student_max_shift)
    return (f"teacher {settings.teacher_epochs} + student {settings.epochs} epochs, batch "
            f"{settings.batch_size}, lr {settings.lr:g} (student {student_lr:g}), warm-up "
            f"{settings.warmup_epochs}, shifts ±{settings.max_shift} (student ±{student_shift}), "
            f"EMA {settings.ema_decay:g}, student init {settings.student_init}, "
            f"KD temperature {settings.temperature:g}, label weight {settings.label_weight:g}")


__all__ = ["add_recipe_arguments", "recipe_settings", "describe_recipe"]
