"""Simulate the generated accelerator in Verilator on test-split images.

The images are the first --images of the test split of --data (a .npz or an image folder,
as `binaryvit train` takes it; default the embedded digits), at the network's input size.

Every image's RTL logits are compared with the integer reference's; OUT/reports/sim.json
records per image logits, match flag and cycle count, and the totals (mismatches, hardware
top-1, steady-state measured vs estimated cycles per image, simulated images and cycles
per second). By default the images stream in and the logits out inside the simulator (the
fast path, ``binaryvit.sim.network_fast``); ``--per-cycle`` moves every word from Python.

When OUT holds the engine (`generate --arch engine`), each image runs through the engine RTL
(payload and pixels through its host port with random gaps; ``binaryvit.sim.engine_report``),
and the report gives the RTL's cycles per image beside the cycle model's.
"""
from __future__ import annotations

import argparse

from binaryvit.errors import DataError
from binaryvit.sim.network_sim import simulate

NAME = "sim"
HELP = "run test images through OUT/rtl in Verilator, bit-exact against the integer model"
ORDER = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder (after `binaryvit generate`)")
    parser.add_argument("--images", type=int, default=20, metavar="N",
                        help="test-split images to simulate (default 20)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help=".npz file or image folder whose test split is simulated "
                             "(default: the embedded digits)")
    parser.add_argument("--waves", action="store_true",
                        help="record a waveform (FST, or VCD without the lz4 headers)")
    parser.add_argument("--bubbles", type=float, default=0.0, metavar="P",
                        help="probability of an idle input cycle before each pixel word "
                             "(default 0; fast path only)")
    parser.add_argument("--stalls", type=float, default=0.0, metavar="P",
                        help="probability of a cycle with the logits stream not ready "
                             "(default 0)")
    parser.add_argument("--seed", type=int, default=1, help="seed of bubbles and stalls")
    parser.add_argument("--per-cycle", action="store_true",
                        help="move every word from Python (slow; the reference of the fast "
                             "path)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from binaryvit.commands.generate import generated_arch
    if generated_arch(Path(args.out)) == "engine":
        from binaryvit.errors import ConfigError
        from binaryvit.sim.engine_report import simulate_engine
        if args.waves or args.per_cycle or args.bubbles or args.stalls:
            raise ConfigError("--waves, --per-cycle, --bubbles and --stalls are the dataflow "
                              "network's; the engine's simulation always has host-side gaps")
        report = simulate_engine(args.out, images=args.images, data=args.data, seed=args.seed)
        t = report["totals"]
        print(f"{t['images']} images on the engine RTL: {t['mismatches']} mismatches, hardware "
              f"top-1 {100 * t['hw_top1']:.1f}%, {t['cycles_per_image_measured']:.0f} cycles per "
              f"image ({t['cycles_per_image_estimated']} in the cycle model); report in "
              f"{args.out}/reports/sim.json")
        return 1 if t["mismatches"] else 0
    for name in ("bubbles", "stalls"):
        if not 0.0 <= getattr(args, name) < 1.0:
            raise DataError(f"--{name} must be in [0, 1), not {getattr(args, name)}")
    report = simulate(args.out, images=args.images, waves=args.waves, seed=args.seed,
                      bubble_prob=args.bubbles, stall_prob=args.stalls,
                      per_cycle=args.per_cycle, data=args.data)
    t = report["totals"]
    measured = t["cycles_per_image_measured"]
    steady = (f"{measured:.0f} cycles per image measured over {t['steady_images']} "
              f"steady images" if measured is not None
              else "too few images for a steady-state measurement")
    print(f"{t['images']} images: {t['mismatches']} mismatches, hardware top-1 "
          f"{100 * t['hw_top1']:.1f}%, {steady} ({t['cycles_per_image_estimated']} "
          f"estimated), {t['images_per_second_simulated']:.2f} images/s and "
          f"{t['cycles_per_second_simulated']:,.0f} cycles/s simulated ({t['path']} path); "
          f"report in {args.out}/reports/sim.json")
    return 1 if t["mismatches"] else 0
