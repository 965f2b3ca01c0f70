"""Engine programs on the engine RTL in Verilator: logits and cycles per image.

``engine_verilog`` is the engine (``SB_SPRAM256KA`` primitives) with Yosys' simulation model
of the primitive; ``run_engine_images`` builds it once (cached by the Verilog's hash, like
the network simulation) and runs the cocotb test ``binaryvit.sim.engine_cocotb``: the
payload is written through the host port, then each image's pixels, ``start`` and ``done``.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from binaryvit.errors import SimulationError
from binaryvit.hw.engine.program import Program
from binaryvit.hw.engine.rtl.engine import Engine
from binaryvit.hw.engine.spram import spram_cell_verilog
from binaryvit.hw.engine.tensor_words import read_tensor, tensor_words
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.simulator import Design, build, run_test

__all__ = ["EngineRun", "engine_verilog", "run_engine_images"]

TEST_MODULE = "binaryvit.sim.engine_cocotb"
NAME = "engine"


@dataclass
class EngineRun:
    """Per image: ``logits`` int64 ``[B, classes]``, busy ``cycles`` and instructions run."""

    logits: torch.Tensor
    cycles: list[int]
    instructions: list[int]


def engine_verilog(program: Program) -> str:
    engine = Engine(program.config, implementation="spram")
    return to_verilog(engine, NAME) + spram_cell_verilog()


def run_engine_images(program: Program, images, *, seed: int = 0,
                      max_cycles: int = 50_000_000) -> EngineRun:
    """Run ``program`` on raw pixels ``[B, C, H, W]`` in Verilator."""
    x = torch.as_tensor(np.asarray(images)).to(torch.int64)
    ref = program.input
    pixels = [tensor_words(ref, img.permute(1, 2, 0).reshape(ref.rows, ref.cols).numpy(),
                           program.config.wide_words, "image").tolist() for img in x]
    region = next(r for r in program.regions if r.name == "program")
    out = program.output
    built = build(Design(NAME, {f"{NAME}.v": engine_verilog(program)}), kind="engine")
    run_dir = Path(tempfile.mkdtemp(prefix="engine-", dir=built.build_dir))
    job_path, result_path = run_dir / "job.json", run_dir / "result.json"
    job_path.write_text(json.dumps({
        "segments": [[int(a), [int(w) for w in words]] for a, words in program.segment_words()],
        "images": pixels, "input_address": ref.address, "pc": region.address,
        "output_address": out.address, "output_words": out.words(program.config.wide_words),
        "max_cycles": max_cycles, "seed": seed, "result_path": str(result_path)}))
    cocotb_run = run_test(built, TEST_MODULE, env={"BINARYVIT_ENGINE_JOB": str(job_path)},
                          seed=seed, run_dir=run_dir)
    log = cocotb_run.log
    if not result_path.exists():
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise SimulationError(f"the engine simulation gave no result; log {log}:\n{tail}")
    result = json.loads(result_path.read_text())
    if result["error"]:
        raise SimulationError(f"engine simulation: {result['error']}")
    shutil.rmtree(run_dir, ignore_errors=True)
    words = np.array(result["outputs"], dtype=np.uint16)
    logits = read_tensor(words, type(out)(0, out.kind, out.rows, out.cols),
                         program.config.wide_words)
    return EngineRun(logits.reshape(len(x), -1), result["cycles"], result["instructions"])
