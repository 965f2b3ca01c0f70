"""The SDR SDRAM chip model (``sim/sdram_model.v``) and the designs that simulate it.

``sdram_model_verilog()`` is the model's text; ``chip_design(cycles)`` wraps it in a top
module ``sdram_chip`` with the rules of ``cycles`` (a ``SdramCycles``) as its parameters, for
the rule tests that drive the chip's pins from cocotb (``binaryvit.sim.sdram_chip_cocotb``).
``run_chip_scenarios`` runs a list of command scenarios on it in one simulator process and
returns, per scenario, the error flag, the first error's code and the read data the chip
drove.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from binaryvit.errors import SimulationError
from binaryvit.hw.engine.external.sdram_chip import SdramCycles
from binaryvit.sim.simulator import Design, build, run_test

__all__ = ["sdram_model_verilog", "chip_design", "run_chip_scenarios", "ERROR_CODES"]

MODEL_PATH = Path(__file__).with_name("sdram_model.v")

# The model's error codes (the table at the top of sdram_model.v).
ERROR_CODES = {
    "power_up_wait": 1, "not_initialised": 2, "mrs_bank_open": 3, "mode_reserved": 4,
    "t_mrd": 5, "act_open_bank": 6, "t_rcd": 7, "t_ras": 8, "t_ras_max": 9, "t_rc": 10,
    "t_rrd": 11, "t_rp": 12, "t_wr": 13, "closed_bank": 14, "refresh_bank_open": 15,
    "t_rfc": 16, "refresh_late": 17, "bus_contention": 18, "not_modelled": 19,
    "pins_unknown": 20,
}

PORTS = ("clk", "power_on", "cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm", "dq_i",
         "dq_i_oe", "dq_o", "dq_o_oe", "error", "first_error", "error_count", "refreshes",
         "initialised")


def sdram_model_verilog() -> str:
    return MODEL_PATH.read_text()


def model_instance(cycles: SdramCycles, row_bits: int = 13, col_bits: int = 9,
                   name: str = "chip", connections: dict[str, str] | None = None) -> str:
    """A Verilog instance of ``sdram_model`` with ``cycles``' rules; ``connections`` maps
    its ports to nets (default: the same names)."""
    params = {"ROW_BITS": row_bits, "COL_BITS": col_bits, **cycles.verilog_parameters()}
    connections = connections or {}
    ports = ",\n".join(f"        .{p}({connections.get(p, p)})" for p in PORTS)
    values = ", ".join(f".{k}({v})" for k, v in params.items())
    return f"    sdram_model #({values}) {name} (\n{ports}\n    );\n"


def chip_design(cycles: SdramCycles, row_bits: int = 13, col_bits: int = 9) -> Design:
    """Top ``sdram_chip``: the model's pins as ports, its rules from ``cycles``."""
    top = f"""module sdram_chip (
    input wire clk, input wire power_on, input wire cke, input wire cs_n, input wire ras_n,
    input wire cas_n, input wire we_n, input wire [1:0] ba, input wire [12:0] a,
    input wire [1:0] dqm, input wire [15:0] dq_i, input wire dq_i_oe,
    output wire [15:0] dq_o, output wire [1:0] dq_o_oe, output wire error,
    output wire [7:0] first_error, output wire [31:0] error_count,
    output wire [31:0] refreshes, output wire initialised
);
{model_instance(cycles, row_bits, col_bits)}endmodule
"""
    return Design("sdram_chip", {"sdram_model.v": sdram_model_verilog(), "sdram_chip.v": top})


def run_chip_scenarios(cycles: SdramCycles, scenarios: list[list[list]], *,
                       simulator: str = "verilator", row_bits: int = 13) -> list[dict]:
    """Run each scenario (a list of commands, see ``binaryvit.sim.sdram_chip_cocotb``) on a
    freshly powered chip; per scenario ``{"error", "first_error", "error_count", "reads"}``
    where ``reads`` are ``[edge, word]`` for every edge at which the chip drove both bytes."""
    built = build(chip_design(cycles, row_bits=row_bits), simulator=simulator, kind="sdram")
    run_dir = Path(tempfile.mkdtemp(prefix="chip-", dir=built.build_dir))
    job, result = run_dir / "job.json", run_dir / "result.json"
    job.write_text(json.dumps({"scenarios": scenarios, "result_path": str(result)}))
    run = run_test(built, "binaryvit.sim.sdram_chip_cocotb", run_dir=run_dir,
                   env={"BINARYVIT_SDRAM_JOB": str(job)})
    if run.failed or not result.exists():
        raise SimulationError(f"SDRAM chip scenarios did not finish; log {run.log}:\n"
                              f"{run.log_tail()}")
    return json.loads(result.read_text())
