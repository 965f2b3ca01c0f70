"""Benchmark: train tiny-digits (float teacher, then binary student by distillation).

Prints a table of test top-1, wall time and seconds per epoch for the default recipe
(or ``--epochs`` / ``--teacher-epochs``). The target is >= 95 % top-1 in <= 10 minutes on
2 CPU cores; other processes sharing the cores inflate the wall time, so the per-epoch
times and the process CPU time are printed too. With ``--output PATH`` the trained checkpoint is saved.
"""
from __future__ import annotations

import argparse
import time

import torch

from binaryvit.golden.float_model.checkpoint import save_checkpoint
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.golden.train.training import TrainSettings, train_binaryvit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    parser.add_argument("--teacher-epochs", type=int, default=TrainSettings.teacher_epochs)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = train_binaryvit(get_config("tiny-digits"), load_digits_dataset(),
                             TrainSettings(epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                                           progress=False))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    m = result.metrics
    rows = [("threads", f"{args.threads}"),
            ("teacher epochs", f"{args.teacher_epochs}"),
            ("teacher s/epoch", f"{m.get('teacher_seconds_per_epoch', 0.0):.2f}"),
            ("teacher test top-1", f"{100 * m.get('teacher_test_accuracy', 0.0):.2f} %"),
            ("student epochs", f"{args.epochs}"),
            ("student s/epoch", f"{m['student_seconds_per_epoch']:.2f}"),
            ("binary test top-1", f"{100 * m['test_accuracy']:.2f} %"),
            ("binary train top-1", f"{100 * m['train_accuracy']:.2f} %"),
            ("wall time", f"{wall:.1f} s"),
            ("process CPU time", f"{cpu:.1f} s (all threads)"),
            ("target", ">= 95.00 % in <= 600 s")]
    width = max(len(name) for name, _ in rows)
    print("bench_train: tiny-digits on sklearn digits (1437 train / 360 test)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if args.output:
        save_checkpoint(args.output, result.model, m)
        print(f"  checkpoint  {args.output}")


if __name__ == "__main__":
    main()
