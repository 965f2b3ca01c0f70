"""The SDR SDRAM chip model (``sim/sdram_model.v``) and the designs that simulate it.

``sdram_model_verilog()`` is the model's text; ``chip_design(cycles)`` wraps it in a top
module ``sdram_chip`` with the rules of ``cycles`` (a ``SdramCycles``) as its parameters, for
the rule tests that drive the chip's pins from cocotb (``binaryvit.sim.sdram_chip_cocotb``).
``run_chip_scenarios`` runs a list of command scenarios on it in one simulator process and
returns, per scenario, the error flag, the first error's code and the read data the chip
drove. ``system_design`` wires the controller (``SdramController``) to the model and
``run_controller_traffic`` runs traffic through it (``binaryvit.sim.sdram_system_cocotb``).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from binaryvit.errors import SimulationError
from binaryvit.hw.engine.external.sdram_chip import SdramChip, SdramCycles
from binaryvit.hw.engine.external.sdram_controller import SdramController
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.simulator import Design, build, run_test

__all__ = ["sdram_model_verilog", "chip_design", "run_chip_scenarios", "system_design",
           "run_controller_traffic", "ERROR_CODES"]

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


def system_design(chip: SdramChip, cycles: SdramCycles,
                  controller_cycles: SdramCycles | None = None) -> Design:
    """Top ``sdram_system``: the controller (``SdramController``, counting
    ``controller_cycles``, default ``cycles``) wired to the chip model (enforcing
    ``cycles``); the engine's memory port and the model's flags are its ports."""
    component = SdramController(chip, controller_cycles or cycles)
    burst_bits = component.burst_bits
    controller = to_verilog(component, "sdram_controller")
    wires = {"power_on": "1'b0", "cke": "cke", "cs_n": "cs_n", "ras_n": "ras_n",
             "cas_n": "cas_n", "we_n": "we_n", "ba": "ba", "a": "a", "dqm": "dqm",
             "dq_i": "ctrl_dq", "dq_i_oe": "ctrl_dq_oe", "dq_o": "chip_dq",
             "dq_o_oe": "chip_dq_oe"}
    top = f"""module sdram_system (
    input wire clk, input wire rst,
    input wire [{burst_bits}:0] cmd_payload, input wire cmd_valid, output wire cmd_ready,
    input wire [15:0] wdata_payload, input wire wdata_valid, output wire wdata_ready,
    output wire [15:0] rdata_payload, output wire rdata_valid, input wire rdata_ready,
    output wire ready, output wire error, output wire [7:0] first_error,
    output wire [31:0] error_count, output wire [31:0] refreshes, output wire initialised
);
    wire cke, cs_n, ras_n, cas_n, we_n, ctrl_dq_oe;
    wire [1:0] ba, dqm, chip_dq_oe;
    wire [12:0] a;
    wire [15:0] ctrl_dq, chip_dq;
    sdram_controller controller (
        .clk(clk), .rst(rst),
        .port__cmd__payload(cmd_payload), .port__cmd__valid(cmd_valid),
        .port__cmd__ready(cmd_ready), .port__wdata__payload(wdata_payload),
        .port__wdata__valid(wdata_valid), .port__wdata__ready(wdata_ready),
        .port__rdata__payload(rdata_payload), .port__rdata__valid(rdata_valid),
        .port__rdata__ready(rdata_ready), .port__ready(ready),
        .pins__cke(cke), .pins__cs_n(cs_n), .pins__ras_n(ras_n), .pins__cas_n(cas_n),
        .pins__we_n(we_n), .pins__ba(ba), .pins__a(a), .pins__dqm(dqm),
        .pins__dq_o(ctrl_dq), .pins__dq_oe(ctrl_dq_oe), .pins__dq_i(chip_dq)
    );
{model_instance(cycles, (chip.rows - 1).bit_length(), (chip.cols - 1).bit_length(), connections=wires)}endmodule
"""
    return Design("sdram_system", {"sdram_model.v": sdram_model_verilog(),
                                   "sdram_controller.v": controller, "sdram_system.v": top})


def run_controller_traffic(chip: SdramChip, cycles: SdramCycles, phases: list[dict], *,
                           seed: int = 0, controller_cycles: SdramCycles | None = None) -> dict:
    """Run traffic ``phases`` (see ``binaryvit.sim.sdram_system_cocotb``) through the
    controller and the chip model in Verilator: per phase its statistics, and the model's
    flags."""
    built = build(system_design(chip, cycles, controller_cycles), kind="sdram")
    run_dir = Path(tempfile.mkdtemp(prefix="traffic-", dir=built.build_dir))
    job, result = run_dir / "job.json", run_dir / "result.json"
    job.write_text(json.dumps({"phases": phases, "seed": seed, "result_path": str(result)}))
    run = run_test(built, "binaryvit.sim.sdram_system_cocotb", run_dir=run_dir,
                   env={"BINARYVIT_SDRAM_JOB": str(job)}, seed=seed)
    if run.failed or not result.exists():
        raise SimulationError(f"SDRAM controller traffic did not finish; log {run.log}:\n"
                              f"{run.log_tail()}")
    return json.loads(result.read_text())
