"""Benchmark: the paper's ablation (Le & Li, CVPR-W 2023) on the digits data.

Trains tiny-digits in full and with each of the four CNN-inspired elements removed in turn
(the config switches ``global_pool``, ``multi_pool``, ``layer_scale``, ``pyramid``; see
golden/float_model/config.py), for each seed, with the training recipe of
golden/train/training.py, and prints the binary network's test top-1 on the 360-image test
split per seed, their mean ± standard deviation, and the change from the full model, like
the paper's table. With ``--plot PATH`` it also draws the table as a PNG.

The default schedule is shorter than ``binaryvit train``'s (``--epochs`` / ``--teacher-epochs``
and the other recipe options of ``golden/train/recipe_arguments.py``, printed in the
heading): five variants times three seeds of the full schedule take well over an hour of
CPU time. By default every variant distils from one float teacher per seed, the full
model's (as the paper's variants share their float teacher), so the table compares the
binary students alone and five runs cost one teacher; ``--own-teachers`` trains each
variant's own float counterpart instead. The CPU seconds per run are the student's only when
the teacher is shared. One thread by default (bench/bench_accuracy.py says why).
"""
from __future__ import annotations

import argparse
import statistics
import textwrap
from pathlib import Path

import torch

from binaryvit.atomic import atomic_file
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import count_parameters
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.golden.train.recipe_arguments import (add_recipe_arguments, describe_recipe,
                                                    recipe_settings)
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
    add_recipe_arguments(parser)
    parser.set_defaults(epochs=20, teacher_epochs=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", type=int, nargs="+", default=list(range(len(VARIANTS))),
                        help="indices into the variant list (0 = full model)")
    parser.add_argument("--own-teachers", dest="shared_teacher", action="store_false",
                        help="train each variant's own float teacher (default: every variant "
                             "distils from the full model's float teacher of its seed)")
    parser.add_argument("--plot", default=None, metavar="PNG", help="draw the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits_dataset()
    base = get_config("tiny-digits")
    teacher = ("one full-model float teacher per seed" if args.shared_teacher
               else "each variant its own float teacher")
    recipe = (f"{describe_recipe(recipe_settings(args))} (binaryvit train: "
              f"{TrainSettings.teacher_epochs} + {TrainSettings.epochs} epochs); {teacher}")
    print(f"bench_ablation: tiny-digits on sklearn digits ({len(data.train_images)} train / "
          f"{len(data.test_images)} test); {recipe}; seeds {' '.join(map(str, args.seeds))}; "
          f"{args.threads} threads", flush=True)
    teachers = {}  # seed -> the full model's float teacher, shared by every variant
    rows = []
    for index in args.variants:
        name, switches = VARIANTS[index]
        accuracies, cpu, params = [], [], 0
        for seed in args.seeds:
            if args.shared_teacher and seed not in teachers:
                # the teacher comes with a throw-away one-epoch student (a few CPU seconds)
                teachers[seed] = train_binaryvit(base, data, recipe_settings(
                    args, seed=seed, epochs=1, progress=False)).teacher
            result = train_binaryvit(base.replace(**switches), data,
                                     recipe_settings(args, seed=seed, progress=False),
                                     teacher=teachers.get(seed))
            cpu.append(result.metrics["cpu_seconds"])
            accuracies.append(100 * result.metrics["test_accuracy"])
            params = count_parameters(result.model)
            print(f"  {name}, seed {seed}: {accuracies[-1]:.2f} % (teacher "
                  f"{100 * result.metrics.get('teacher_test_accuracy', float('nan')):.2f} %) in "
                  f"{result.metrics['seconds']:.0f} s wall, {cpu[-1]:.0f} s CPU", flush=True)
        rows.append((name, params, accuracies, cpu))
    full = statistics.mean(rows[0][2]) if args.variants[0] == 0 else None
    width = max(len(r[0]) for r in rows)
    seeds = "  ".join(f"seed {s:>2}" for s in args.seeds)
    print(f"\n  binary top-1 (%) on the 360 test images, {recipe}")
    print(f"  {'variant':<{width}}  {'params':>7}  {seeds}  {'mean ± std':>12}  "
          f"{'vs full':>7}  {'CPU s/run':>9}")
    for name, params, acc, cpu in rows:
        mean = statistics.mean(acc)
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        delta = "" if full is None else f"{mean - full:+.2f}"
        per_seed = "  ".join(f"{a:7.2f}" for a in acc)
        print(f"  {name:<{width}}  {params:>7}  {per_seed}  {mean:6.2f} ± {std:4.2f}  "
              f"{delta:>7}  {statistics.mean(cpu):9.0f}")
    print("  (the paper's claim: each element removed costs accuracy)")
    if args.plot:
        plot(rows, recipe, Path(args.plot))
        print(f"  plot: {args.plot}")


def plot(rows: list, recipe: str, path: Path) -> None:
    """One horizontal bar per variant (mean over seeds, ± std as an error bar), each seed a
    dot, the full model's mean as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r[0] for r in rows][::-1]
    means = [statistics.mean(r[2]) for r in rows][::-1]
    stds = [statistics.stdev(r[2]) if len(r[2]) > 1 else 0.0 for r in rows][::-1]
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.4), dpi=100)
    axes.barh(names, means, xerr=stds, color="#8fb3d9", capsize=4)
    for y, (_, _, acc, _) in enumerate(rows[::-1]):
        axes.plot(acc, [y] * len(acc), "o", color="#1f3b73", markersize=4)
    axes.axvline(means[-1], linestyle="--", color="grey", linewidth=1)
    low = min(min(r[2]) for r in rows)
    axes.set_xlim(max(0.0, low - 3), 100)
    axes.set_xlabel("binary top-1 on the 360 test images (%)")
    axes.set_title(textwrap.fill(f"Ablation, tiny-digits: {recipe}", 90), fontsize=10)
    for y, (mean, std, (_, _, acc, _)) in enumerate(zip(means, stds, rows[::-1])):
        axes.text(max(max(acc), mean + std) + 0.2, y, f"{mean:.2f} ± {std:.2f}", fontsize=9,
                  va="center")
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)


if __name__ == "__main__":
    main()
