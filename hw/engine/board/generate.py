"""``binaryvit generate --arch engine``: compile OUT's integer model for the engine of a board.

Writes, atomically:

- ``OUT/rtl/engine.json``: the :class:`~binaryvit.hw.engine.board.design.EngineDesign`
  (what a bitstream bakes in: design id, addresses, formats) and the board target;
- ``OUT/rtl/engine.v``: the engine (core and memories, ``SB_SPRAM256KA`` primitives) as
  Verilog, the same for every program of its config;
- ``OUT/rtl/program.lst``: one line per instruction (``Program.listing``);
- ``OUT/params.bin``: the parameter image (header, design id, CRC; ``docs/engine-hardware.md``);
- ``OUT/reports/estimate.json``: cycles per image (the cycle model), memory, the resource
  estimate of the board top and its fit (``hw/estimate/engine_estimate.py``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, load_quantized
from binaryvit.hw.engine.board.design import (DESIGN_FILE, PARAMETER_IMAGE_FILE, engine_design,
                                              parameter_image_for)
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import UP5K, EngineConfig
from binaryvit.hw.engine.parameter_image import write_parameter_image
from binaryvit.hw.engine.program import Program

__all__ = ["EngineTarget", "ENGINE_TARGETS", "engine_target", "engine_formats",
           "compile_for_board", "generate_engine", "DEFAULT_ENGINE_BOARD"]

DEFAULT_ENGINE_BOARD = "icebreaker"


@dataclass(frozen=True)
class EngineTarget:
    """How the engine sits on one board.

    config : the engine's configuration (the compiler plans for it).
    memory : ``"spram"`` (the UP5K's ``SB_SPRAM256KA``) or ``"model"`` (Amaranth
        ``Memory``: block RAM the bitstream initialises, on the ECP5).
    boot : ``"flash"`` (the parameter image loads from the SPI flash at reset) or
        ``"preloaded"`` (the bitstream holds the parameters).
    """

    board: str
    config: EngineConfig
    memory: str
    boot: str


ENGINE_TARGETS: dict[str, EngineTarget] = {
    "icebreaker": EngineTarget("icebreaker", UP5K, "spram", "flash"),
    # 64 DP16KD of the ULX3S's 208 hold the same four 16 Ki-word banks, initialised by the
    # bitstream: no loader, and a new parameter image needs a new build.
    "ulx3s": EngineTarget("ulx3s", UP5K, "model", "preloaded"),
}


def engine_target(board: str | None) -> EngineTarget:
    """The engine target of ``board`` (default the iCEBreaker); ``ConfigError`` naming the
    boards with one."""
    name = board or DEFAULT_ENGINE_BOARD
    if name not in ENGINE_TARGETS:
        raise ConfigError(f"board {name}: no engine target; the engine runs on "
                          f"{', '.join(ENGINE_TARGETS)}")
    return ENGINE_TARGETS[name]


def engine_formats(config: EngineConfig):
    """The quantizer formats the engine of ``config`` runs (``SB_MAC16``: 16-bit stream and
    constants; the accumulator width the overflow proof must hold)."""
    from binaryvit.quantize.formats import QuantFormats
    return QuantFormats(stream_width=config.stream_bits, const_bits=config.const_bits,
                        acc_width=config.accumulator_bits)


def compile_for_board(model: IntModel, target: EngineTarget, proof=None):
    """``(program, design)`` of ``model`` on ``target`` (the compiler's one-line errors for
    formats, unknown operations or tensors that do not fit)."""
    program = compile_intmodel(model, target.config, proof=proof)
    c = model.config
    design = engine_design(program, model.input_range, (c.in_channels, *c.image_size))
    return program, design


def _estimate(program: Program, design, target: EngineTarget) -> dict:
    from binaryvit.hw.boards.definitions import get_board
    from binaryvit.hw.estimate.engine_estimate import engine_resource_report
    board = get_board(target.board)
    return {
        "arch": "engine", "board": target.board, "engine": target.config.name,
        "memory": target.memory, "boot": target.boot,
        "design_id": f"{design.design_id:#010x}",
        "instructions": len(program.instructions),
        "cycles_per_image": program.total_cycles,
        "payload_bytes": program.payload_bytes,
        "activation_bytes": program.activation_bytes(),
        "memory_bytes": program.memory_bytes,
        **engine_resource_report(target, board),
    }


def generate_engine(out_dir: str | os.PathLike, *, board: str | None = None,
                    model: IntModel | None = None, proof=None) -> dict:
    """Compile ``OUT/intmodel.npz`` (or ``model``) for the engine on ``board`` and write the
    files listed in the module docstring; return the estimate report."""
    from binaryvit.hw.engine.rtl.engine import Engine
    from binaryvit.hw.verilog import to_verilog

    out = Path(out_dir)
    if model is None:
        model = load_quantized(out)
    target = engine_target(board)
    program, design = compile_for_board(model, target, proof)
    estimate = _estimate(program, design, target)
    record = {**design.to_json(), "target": {"board": target.board, "memory": target.memory,
                                             "boot": target.boot}}
    write_text_atomic(out / "rtl" / DESIGN_FILE, json.dumps(record, indent=1) + "\n")
    write_text_atomic(out / "rtl" / "engine.v",
                      to_verilog(Engine(target.config, implementation="spram"), "engine"))
    write_text_atomic(out / "rtl" / "program.lst", "\n".join(program.listing()) + "\n")
    write_parameter_image(out / PARAMETER_IMAGE_FILE, parameter_image_for(program, design))
    write_text_atomic(out / "reports" / "estimate.json", json.dumps(estimate, indent=2) + "\n")
    return estimate
