"""Synthesise a component with YoWASP Yosys ``synth_ice40`` and count its cells (engine tests)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from binaryvit.hw.boards.definitions import yowasp_env
from binaryvit.hw.verilog import to_verilog


def ice40_cells(component, name: str, folder: Path, options: str = "") -> dict[str, int]:
    """``{cell type: count}`` of ``component`` after ``synth_ice40 {options}`` (flattened)."""
    env = yowasp_env()
    (folder / f"{name}.v").write_text(to_verilog(component, name))
    # YoWASP tools see only paths relative to their working folder
    subprocess.run([env["YOSYS"], "-q", "-l", f"{name}.log", "-p",
                    f"read_verilog {name}.v; synth_ice40 {options} -top {name}; "
                    f"tee -q -o {name}_stat.json stat -json"],
                   cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((folder / f"{name}_stat.json").read_text())["design"]["num_cells_by_type"]
