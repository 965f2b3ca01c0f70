"""Simulate the generated accelerator in Verilator on test-split images.

The images are the first --images of the test split of --data (a .npz or an image folder,
as `binaryvit train` takes it; default the embedded digits), at the network's input size.

Every image's RTL logits are compared with the integer reference's; OUT/reports/sim.json
records per image logits, match flag and cycle count, and the totals (mismatches, hardware
top-1, measured vs estimated cycles per image, simulated images per second).
"""
from __future__ import annotations

import argparse

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
    parser.add_argument("--waves", action="store_true", help="record an FST waveform")


def run(args: argparse.Namespace) -> int:
    report = simulate(args.out, images=args.images, waves=args.waves, data=args.data)
    t = report["totals"]
    print(f"{t['images']} images: {t['mismatches']} mismatches, hardware top-1 "
          f"{100 * t['hw_top1']:.1f}%, {t['cycles_per_image_measured']:.0f} cycles per image "
          f"measured ({t['cycles_per_image_estimated']} estimated), "
          f"{t['images_per_second_simulated']:.2f} images/s simulated; "
          f"report in {args.out}/reports/sim.json")
    return 1 if t["mismatches"] else 0
