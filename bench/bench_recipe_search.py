"""Benchmark: rank binary-student recipes of tiny-digits on a validation split.

The recipe of ``binaryvit train`` is chosen here, never on the test split: the digits
training split (1437 images) is divided again 80/20 (``data.validation_dataset``: 1149
train / 288 validation), one float teacher is trained on the 1149 images, and each student
variant of :data:`VARIANTS` distils from that same teacher, so the table compares student
recipes only. Printed per variant: validation and training top-1 of the binary student,
its CPU seconds (one thread by default; bench/bench_accuracy.py says why) and wall seconds.
One validation image is 0.35 point, so differences below about one point are noise of a
single seed; ``--seeds`` repeats everything (teacher included) per seed.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from binaryvit.golden.float_model.checkpoint import load_model, save_checkpoint
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.train.cpu_time import cpu_seconds
from binaryvit.golden.train.data import load_digits_dataset, validation_dataset
from binaryvit.golden.train.training import TrainSettings, evaluate, train_binaryvit

# The student settings every variant starts from: the recipe before this search (student
# at lr 2e-3, the teacher's ±1 shifts, no warm-up); the teacher is trained that way too.
BEFORE = {"student_lr": None, "student_max_shift": None, "warmup_epochs": 0}
# name -> TrainSettings fields that differ from BEFORE (epochs set by --epochs)
VARIANTS = {
    "before: lr 2e-3, batch 64, shifts ±1": {},
    "student lr 4e-3, warm-up 2 epochs": {"student_lr": 4e-3, "warmup_epochs": 2},
    "batch 128, student lr 4e-3, warm-up 2": {"batch_size": 128, "student_lr": 4e-3,
                                              "warmup_epochs": 2},
    "no shifts (max_shift 0)": {"max_shift": 0},
    "student lr 8e-3, warm-up 2 epochs": {"student_lr": 8e-3, "warmup_epochs": 2},
    "student lr 4e-3, warm-up 2, no shifts": {"student_lr": 4e-3, "warmup_epochs": 2,
                                              "max_shift": 0},
    "student lr 8e-3, warm-up 2, no shifts": {"student_lr": 8e-3, "warmup_epochs": 2,
                                              "max_shift": 0},
    "lr 4e-3, warm-up 2, no shifts, KD T 2": {"student_lr": 4e-3, "warmup_epochs": 2,
                                              "max_shift": 0, "temperature": 2.0},
    "lr 4e-3, warm-up 2, no shifts, KD T 4": {"student_lr": 4e-3, "warmup_epochs": 2,
                                              "max_shift": 0, "temperature": 4.0},
    "lr 4e-3, warm-up 2, no shifts, labels 0.5": {"student_lr": 4e-3, "warmup_epochs": 2,
                                                  "max_shift": 0, "label_weight": 0.5},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=50, help="binary student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=60)
    parser.add_argument("--variants", nargs="+", type=int, default=list(range(len(VARIANTS))),
                        help="indices into the variant list")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--teacher-dir", default=None,
                        help="keep each seed's teacher here and reuse it when present")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = validation_dataset(load_digits_dataset())
    names = [list(VARIANTS)[i] for i in args.variants]
    print(f"bench_recipe_search: tiny-digits, {len(data.train_images)} train / "
          f"{len(data.test_images)} validation images (the test split unused); teacher "
          f"{args.teacher_epochs} epochs, students {args.epochs} epochs; seeds "
          f"{' '.join(map(str, args.seeds))}; {args.threads} threads", flush=True)
    results = {name: [] for name in names}
    for seed in args.seeds:
        started = cpu_seconds()
        cached = Path(args.teacher_dir or ".") / f"teacher_val_{args.teacher_epochs}ep_seed{seed}.pt"
        if args.teacher_dir and cached.exists():
            teacher, _ = load_model(cached)
        else:
            teacher = train_binaryvit(get_config("tiny-digits"), data, TrainSettings(
                epochs=1, teacher_epochs=args.teacher_epochs, seed=seed, progress=False,
                **BEFORE)).teacher
            if args.teacher_dir:
                save_checkpoint(cached, teacher, {})
        print(f"  seed {seed}: teacher {100 * evaluate(teacher, data.test_images, data.test_labels):.2f} % "
              f"validation, {cpu_seconds() - started:.0f} s CPU", flush=True)
        for name in names:
            wall, cpu = time.perf_counter(), cpu_seconds()
            settings = TrainSettings(epochs=args.epochs, seed=seed, progress=False,
                                     **{**BEFORE, **VARIANTS[name]})
            m = train_binaryvit(get_config("tiny-digits"), data, settings, teacher=teacher).metrics
            row = (100 * m["test_accuracy"], 100 * m["train_accuracy"], cpu_seconds() - cpu,
                   time.perf_counter() - wall)
            results[name].append(row)
            print(f"    {name}: validation {row[0]:.2f} %, train {row[1]:.2f} %, "
                  f"{row[2]:.0f} s CPU, {row[3]:.0f} s wall", flush=True)
    width = max(map(len, names))
    print(f"\n  {'student variant':<{width}}  {'val top-1 %':>11}  {'train top-1 %':>13}  "
          f"{'CPU s':>6}  {'wall s':>6}   (means over seeds)")
    for name in names:
        rows = results[name]
        cells = [statistics.mean(r[i] for r in rows) for i in range(4)]
        print(f"  {name:<{width}}  {cells[0]:11.2f}  {cells[1]:13.2f}  {cells[2]:6.0f}  {cells[3]:6.0f}")


if __name__ == "__main__":
    main()
