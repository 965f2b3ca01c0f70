"""Benchmark: the paper's ablation (Le & Li, CVPR-W 2023) on the digits data.

Trains tiny-digits in full and with each of the four CNN-inspired elements removed in turn
(the config switches ``global_pool``, ``multi_pool``, ``layer_scale``, ``pyramid``; see
golden/float_model/config.py), for each seed, with the training recipe of
golden/train/training.py, and prints the binary network's test top-1 on the 360-image test
split per seed, their mean and standard deviation, and the change from the full model.

The default schedule is shorter than ``binaryvit train``'s (``--epochs`` / ``--teacher-epochs``,
printed in the output): five variants times three seeds of the full schedule take over two
hours on 2 cores.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import count_parameters
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.golden.train.training import TrainSettings, train_binaryvit

VARIANTS = (("full model", {}),
            ("- global average pooling (class token)", {"global_pool": False}),
            ("- average-pooling branches", {"multi_pool": False}),
            ("- affine before residual adds (LayerScale)", {"layer_scale": False}),
            ("- pyramid (one isotropic stage)", {"pyramid": False}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20, help="binary student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=10, help="float teacher epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", type=int, nargs="+", default=list(range(len(VARIANTS))),
                        help="indices into the variant list (0 = full model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits_dataset()
    base = get_config("tiny-digits")
    print(f"bench_ablation: tiny-digits on sklearn digits ({len(data.train_images)} train / "
          f"{len(data.test_images)} test); teacher {args.teacher_epochs} + student "
          f"{args.epochs} epochs (default recipe: {TrainSettings.teacher_epochs} + "
          f"{TrainSettings.epochs}); seeds {' '.join(map(str, args.seeds))}; "
          f"{args.threads} threads", flush=True)
    rows = []
    for index in args.variants:
        name, switches = VARIANTS[index]
        accuracies, seconds, params = [], [], 0
        for seed in args.seeds:
            started = time.perf_counter()
            result = train_binaryvit(base.replace(**switches), data,
                                     TrainSettings(epochs=args.epochs,
                                                   teacher_epochs=args.teacher_epochs,
                                                   seed=seed, progress=False))
            seconds.append(time.perf_counter() - started)
            accuracies.append(100 * result.metrics["test_accuracy"])
            params = count_parameters(result.model)
            print(f"  {name}, seed {seed}: {accuracies[-1]:.2f} % in {seconds[-1]:.0f} s",
                  flush=True)
        rows.append((name, params, accuracies, seconds))
    full = statistics.mean(rows[0][2]) if args.variants[0] == 0 else None
    width = max(len(r[0]) for r in rows)
    seeds = "  ".join(f"seed {s:>2}" for s in args.seeds)
    print(f"\n  {'variant':<{width}}  {'params':>7}  {seeds}  {'mean':>6}  {'std':>5}  "
          f"{'vs full':>7}  {'s/run':>5}")
    for name, params, acc, secs in rows:
        mean = statistics.mean(acc)
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        delta = "" if full is None else f"{mean - full:+.2f}"
        per_seed = "  ".join(f"{a:6.2f}%" for a in acc)
        print(f"  {name:<{width}}  {params:>7}  {per_seed}  {mean:6.2f}  {std:5.2f}  "
              f"{delta:>7}  {statistics.mean(secs):5.0f}")
    print("  (top-1 of the binary network on the 360 test images, in %; the paper's claim: "
          "each element removed costs accuracy)")


if __name__ == "__main__":
    main()
