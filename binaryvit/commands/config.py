"""Print a config as JSON: the starting point of your own.

`binaryvit config tiny-28x28x1 > my.json` writes a named config to edit; every command's
--config then takes my.json. NAME may also be a JSON file: it is checked (a config that
cannot work is refused, naming the field and its valid values) and printed with every
field. Without NAME it lists the named configs with their shapes.
"""
from __future__ import annotations

import argparse
import sys

from binaryvit.golden.float_model.config import CONFIGS
from binaryvit.golden.float_model.config_file import config_json, resolve_config
from binaryvit.golden.float_model.network import BinaryViT, count_parameters

NAME = "config"
HELP = "print a named config (or check a JSON config) as JSON, to start your own"
ORDER = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="NAME", nargs="?", default=None,
                        help=f"{', '.join(sorted(CONFIGS))} or a .json file "
                             f"(default: list the named configs)")


def run(args: argparse.Namespace) -> int:
    if args.config is None:
        for name in sorted(CONFIGS):
            c = CONFIGS[name]
            grids = "/".join(f"{s.grid[0]}x{s.grid[1]}" for s in c.stages())
            print(f"{name:14s} {c.image_size[0]}x{c.image_size[1]}x{c.in_channels} input, "
                  f"patch {c.patch_size}, widths {'/'.join(map(str, c.embed_dims))} on grids "
                  f"{grids}, {count_parameters(BinaryViT(c)):,} parameters")
        return 0
    sys.stdout.write(config_json(resolve_config(args.config)))
    return 0
