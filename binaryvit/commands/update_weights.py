"""Put a new checkpoint's binary weights into OUT's built bitstreams, without place and route.

NEW is a checkpoint (.pt, quantized here with OUT's formats) or an integer model (.npz).
Its weights are packed for the folding OUT's hardware was generated with (the one folding:
``reports/estimate.json``, also recorded in ``manifest.json``). Every binary layer's per-PE weight ROM that changed is rewritten in the
block RAMs of each iCE40 / ECP5 build in OUT/build/<board>/ (yowasp-icebram /
yowasp-ecpbram), and the bitstream is packed again: seconds instead of a full build.
Only binary weights can change this way: if the new model changes anything else
(thresholds, affine constants, structure), the command names what changed and asks for
`binaryvit generate` + `binaryvit build`. A ROM that Yosys put in logic instead of block
RAM is named too. OUT/intmodel.npz and OUT/rtl are left as they were; each updated build
records the weights it now holds in OUT/build/<board>/weights.json.

When OUT holds the engine (`generate --arch engine`), every parameter is in the parameter
image, so any retrained checkpoint of the same architecture updates without synthesis at
all: NEW is compiled for OUT's engine, its memory plan compared with the bitstream's design
(OUT/rtl/engine.json; a checkpoint whose program does not fit it is refused, naming the first
difference), and its parameter image written to OUT/params.bin (or --output) and into each
engine build folder, with the command that flashes it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import DataError, OutputPathError
from binaryvit.golden.intref.intmodel import IntModel, load_intmodel
from binaryvit.hw.boards.board_build import BUILD_JSON
from binaryvit.hw.boards.bram_update import swap_rom_contents, weight_swaps
from binaryvit.hw.boards.definitions import BOARDS
from binaryvit.quantize.manifest import sha256_file

NAME = "update-weights"
HELP = "swap a new checkpoint's binary weights into OUT's bitstreams (no place and route)"
ORDER = 65


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder with build/<board>/")
    parser.add_argument("new", metavar="NEW_CKPT",
                        help="new checkpoint (.pt) or integer model (.npz) of the same network")
    parser.add_argument("--board", action="append", choices=sorted(BOARDS), default=None,
                        help="update only this board's build (repeatable; default all built)")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help="engine: where to write the new parameter image "
                             "(default OUT/params.bin)")


def hardware_folds(out: Path) -> dict[str, dict[str, int]]:
    """Each binary layer's ``{"pe", "simd"}`` as the hardware was generated
    (``reports/estimate.json``, else the folding ``generate`` recorded in ``manifest.json``)."""
    estimate = out / "reports" / "estimate.json"
    if estimate.is_file():
        layers = json.loads(estimate.read_text()).get("layers", [])
        folds = {layer["name"]: layer["fold"] for layer in layers
                 if layer.get("op") == "xnor_popcount_dot"}
        if folds:
            return folds
    manifest = out / "manifest.json"
    if manifest.is_file():
        return {name: {"pe": f["pe"], "simd": f["simd"]}
                for name, f in json.loads(manifest.read_text()).get("folding", {}).items()}
    raise OutputPathError(f"{out} records no folding (reports/estimate.json or manifest.json)")


def new_model(out: Path, new: Path) -> IntModel:
    """``new`` as an integer model: loaded (.npz) or quantized like OUT's (.pt)."""
    if not new.is_file():
        raise OutputPathError(f"{new} not found")
    if new.suffix == ".npz":
        return load_intmodel(new)
    from binaryvit.quantize.formats import QuantFormats
    from binaryvit.quantize.quantizer import quantize_checkpoint
    manifest = json.loads((out / "manifest.json").read_text()) \
        if (out / "manifest.json").is_file() else {}
    known = {f.name for f in dataclasses.fields(QuantFormats)}
    kwargs = {k: v for k, v in manifest.get("formats", {}).items() if k in known}
    if "input_range" in manifest:
        kwargs["input_range"] = tuple(manifest["input_range"])
    formats = QuantFormats(**kwargs)
    with tempfile.TemporaryDirectory(prefix="update-weights-") as tmp:
        return quantize_checkpoint(new, Path(tmp) / "q", formats=formats).intmodel


def update_engine(out: Path, new: Path, output: Path | None) -> int:
    """The engine's update: a new parameter image for the built design (see above)."""
    from binaryvit.hw.engine.board.design import (PARAMETER_IMAGE_FILE, load_engine_design,
                                                  parameter_image_for)
    from binaryvit.hw.engine.compiler import compile_intmodel
    from binaryvit.hw.engine.loader import DEFAULT_FLASH_OFFSET
    from binaryvit.hw.engine.parameter_image import write_parameter_image
    design = load_engine_design(out / "rtl" / "engine.json")
    program = compile_intmodel(new_model(out, new), design.config)
    try:
        image = parameter_image_for(program, design)
    except DataError as exc:
        raise DataError(f"{new} does not fit {out}'s engine design: {exc}") from None
    targets = [output or out / PARAMETER_IMAGE_FILE]
    targets += [folder / PARAMETER_IMAGE_FILE for folder in sorted((out / "build").glob("*"))
                if (folder / PARAMETER_IMAGE_FILE).is_file()]
    for path in targets:
        write_parameter_image(path, image)
        print(f"wrote {path}: {len(image.to_bytes())} bytes for design {design.design_id:#010x}")
    print(f"flash it (no new bitstream needed): iceprog -o {DEFAULT_FLASH_OFFSET >> 20}M {targets[-1]}"
          f"; on the ULX3S the parameters are in the bitstream: binaryvit build {out} --board ulx3s")
    return 0


def run(args: argparse.Namespace) -> int:
    out, new = Path(args.out), Path(args.new)
    from binaryvit.commands.generate import generated_arch
    if generated_arch(out) == "engine":
        return update_engine(out, new, Path(args.output) if args.output else None)
    names = args.board or [name for name in BOARDS if (out / "build" / name / BUILD_JSON).is_file()]
    builds = []
    for name in names:
        board = BOARDS[name]
        if not (out / "build" / name / BUILD_JSON).is_file():
            raise OutputPathError(f"{out}/build/{name} has no build: run "
                                  f"`binaryvit build {out} --board {name}` first")
        if board.family not in ("ice40", "ecp5"):
            if args.board:
                raise DataError(f"board {name}: no open bitstream flow ({board.family}); "
                                "rebuild in Vivado with the new weights")
            continue
        builds.append(board)
    if not builds:
        raise OutputPathError(f"{out}/build/ holds no iCE40 or ECP5 build: run "
                              f"`binaryvit build {out} --board icebreaker|ulx3s` first")
    old = load_intmodel(out / "intmodel.npz")
    swaps = weight_swaps(old.steps, new_model(out, new).steps, hardware_folds(out))
    if not swaps:
        print(f"{new}: same binary weights as the built design; nothing to do")
        return 0
    for board in builds:
        folder = out / "build" / board.name
        bitstream = swap_rom_contents(folder, board, swaps)
        write_text_atomic(folder / "weights.json", json.dumps({
            "source": str(new), "sha256": sha256_file(new),
            "roms_swapped": [s.name for s in swaps]}, indent=2) + "\n")
        print(f"{board.name}: {len(swaps)} weight ROMs swapped -> {bitstream}")
    return 0
