"""The one simulator runner: build a Verilog design once (cached and locked), run cocotb on it.

Every simulation in the project goes through here: the kernel tests
(``binaryvit.sim.runner``), the UART test (``binaryvit.sim.uart_bits_test``), the network
simulation and the divergence finder (``binaryvit.sim.network_sim``).

``build(design, simulator=...)`` compiles ``design`` (top module name and Verilog sources)
into ``<cache>/<kind>/<top>-<simulator>[-waves]-<hash>`` (``<cache>`` is
``$BINARYVIT_CACHE`` or ``~/.cache/binaryvit``), where the hash covers the recipe, the
simulator, the waveform setting, the optimisation level and every source text. A marker
file records the hash, so an identical design reuses the build; a file lock beside the
folder makes parallel pytest workers (and engineers) wait for one build instead of
racing.

Verilator is invoked directly (the commands cocotb's runner uses, without
``--public-flat-rw``): a control file makes only the top module's ports visible to VPI,
which is all a testbench here touches, and keeps Verilator's optimisations. (A signal
that VPI may write can change at any time, so Verilator re-evaluates everything that
reads it on every input change: ``--public-flat-rw`` on every signal, or on all of a
harness's internal signals, put the whole tiny-digits network into that region.)
``-Wno-fatal -Wno-lint -Wno-style``: lint is a separate, strict step
(``binaryvit.sim.lint``). Waves: ``--trace-fst`` when the lz4 headers are installed
(Debian ``liblz4-dev``), else ``--trace`` (VCD). Icarus is built by cocotb's runner with
``-g2005`` (see ``ICARUS_BUILD_ARGS``).

``run_test(built, test_module, ...)`` runs one cocotb test module on a build, in its own
run folder, with the tool environment (``binaryvit.sim.toolchain.tool_env``) applied.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from filelock import FileLock

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import ConfigError, ToolError
from binaryvit.sim.toolchain import cache_dir, require_tool, tool_env

__all__ = ["Design", "Build", "CocotbRun", "SIMULATORS", "VERILATOR_BUILD_ARGS",
           "ICARUS_BUILD_ARGS", "build", "run_test", "tool_environment", "simulator_runner"]

SIMULATORS = ("verilator", "icarus")
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
# Icarus's default -g2012 runs declaration initialisers before time 0 without an event, so
# an `always @*` block whose inputs then never change (a mux on a register that keeps its
# reset value) never runs and its output stays X; -g2005 gives that event.
ICARUS_BUILD_ARGS = ("-g2005",)
# g++ optimisation of Verilator's model: "-O1" keeps the C++ build short where a Python
# testbench bounds the speed; a harness that runs on the simulator side (the network's
# fast path) may ask for more.
DEFAULT_OPT = "-O1"
RECIPE_VERSION = "4"
TIMESCALE = ("1ns", "1ps")


@dataclass(frozen=True)
class Design:
    """What to build: the top module's name and the Verilog sources (file name → text).
    The top module must be in one of them."""

    top: str
    sources: Mapping[str, str]


@dataclass(frozen=True)
class Build:
    """A compiled simulator of a design. ``built`` is False when a cached build was reused."""

    simulator: str
    top: str
    build_dir: Path
    waves: bool
    built: bool


@dataclass
class CocotbRun:
    """One cocotb run: its folder (the test's files, ``sim.log``, wave files) and whether
    cocotb reported the test as failed or the simulator ended without a verdict."""

    run_dir: Path
    log: Path
    failed: bool
    wave_files: list[Path] = field(default_factory=list)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


_environment_lock = threading.Lock()
_environment_users = 0
_environment_saved: dict[str, str] = {}


@contextlib.contextmanager
def tool_environment() -> Iterator[None]:
    """Apply the tool environment to this process (cocotb's runner reads ``os.environ``)
    and restore it when the last user leaves: threads that run simulations side by side
    (``binaryvit.sim.network_fast``'s shards) share one application instead of each
    restoring the environment under another's feet."""
    global _environment_users, _environment_saved
    with _environment_lock:
        if _environment_users == 0:
            _environment_saved = dict(os.environ)
            os.environ.update(tool_env())
        _environment_users += 1
    try:
        yield
    finally:
        with _environment_lock:
            _environment_users -= 1
            if _environment_users == 0:
                os.environ.clear()
                os.environ.update(_environment_saved)


def simulator_runner(simulator: str):
    """cocotb's runner for ``simulator``. Icarus's writes its wave-dump module in Verilog-2005
    (cocotb's declares a SystemVerilog ``string``), so that waves build with ``-g2005`` too."""
    from cocotb_tools.runner import Icarus, get_runner

    if simulator != "icarus":
        return get_runner(simulator)

    class Icarus2005(Icarus):
        def _create_iverilog_dump_file(self) -> None:
            path = str(self.build_dir / f"{self.hdl_toplevel}.fst")
            path = path.replace("\\", "\\\\").replace('"', '\\"')
            self.iverilog_dump_file.write_text(
                "module cocotb_iverilog_dump();\n"
                f'initial begin\n    $dumpfile("{path}");\n'
                f"    $dumpvars(0, {self.hdl_toplevel});\nend\nendmodule\n")

    return Icarus2005()


def fst_supported() -> bool:
    """Verilator's FST writer needs the lz4 headers (Debian: liblz4-dev)."""
    folders = ["/usr/include", "/usr/local/include",
               *filter(None, os.environ.get("CPATH", "").split(os.pathsep))]
    return any((Path(folder) / "lz4.h").exists() for folder in folders)


def build(design: Design, *, simulator: str = "verilator", waves: bool = False,
          kind: str = "sim", opt: str = DEFAULT_OPT,
          build_dir: str | os.PathLike | None = None) -> Build:
    """Compile ``design`` for ``simulator`` unless an identical build exists; wait for a
    concurrent build of the same design.

    ``kind`` names the cache sub-folder (``sim`` for kernels, ``network`` for whole
    networks); ``opt`` is g++'s optimisation level for Verilator's model. Raises
    ``ToolError`` (with the log's tail) when the simulator is missing or the build fails.
    """
    if simulator not in SIMULATORS:
        raise ConfigError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
    trace = ("fst" if fst_supported() else "vcd") if waves else "none"
    hasher = hashlib.sha256(f"{RECIPE_VERSION}|{simulator}|{trace}|{opt}|{design.top}"
                            .encode())
    for file_name in sorted(design.sources):
        hasher.update(f"\0{file_name}\0{design.sources[file_name]}".encode())
    stamp = hasher.hexdigest()
    if build_dir is None:
        build_dir = (cache_dir() / kind /
                     f"{design.top}-{simulator}{'-waves' if waves else ''}-{stamp[:16]}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    marker = build_dir / ".built"
    with tool_environment():
        require_tool("verilator" if simulator == "verilator" else "iverilog")
        with FileLock(str(build_dir) + ".lock"):
            if marker.exists() and marker.read_text() == stamp:
                return Build(simulator, design.top, build_dir, waves, built=False)
            marker.unlink(missing_ok=True)
            sources = []
            for file_name, text in design.sources.items():
                sources.append(build_dir / file_name)
                write_text_atomic(sources[-1], text)
            log = build_dir / "build.log"
            if simulator == "verilator":
                _build_verilator(design.top, sources, build_dir, trace, opt, log)
            else:
                _build_icarus(design.top, sources, build_dir, waves, log)
            marker.write_text(stamp)
    return Build(simulator, design.top, build_dir, waves, built=True)


def _build_verilator(top: str, sources: Sequence[Path], build_dir: Path, trace: str,
                     opt: str, log: Path) -> None:
    import cocotb_tools.config

    control = build_dir / "public_ports.vlt"
    control.write_text("`verilator_config\n" + "".join(
        f'public_flat_rw -module "{top}" -var "{port}"\n' for port in top_ports(top, sources)))
    libs = cocotb_tools.config.libs_dir
    verilator_cpp = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    trace_args = {"none": [], "vcd": ["--trace"], "fst": ["--trace-fst"]}[trace]
    commands = [
        [require_tool("verilator"), "-cc", "--exe", "-Mdir", str(build_dir), "--top-module",
         top, "--vpi", "--prefix", "Vtop", "-o", top, "-LDFLAGS",
         f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator", *VERILATOR_BUILD_ARGS,
         *trace_args, "--timescale", "/".join(TIMESCALE), str(control), str(verilator_cpp),
         *map(str, sources)],
        [require_tool("make"), "-j", "2", "-C", str(build_dir), "-f", "Vtop.mk",
         f"VM_TRACE={int(trace != 'none')}", f"OPT_FAST={opt}", "OPT_SLOW=-O0"],
    ]
    with open(log, "w") as handle:
        for command in commands:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT,
                                  cwd=build_dir)
            if done.returncode:
                tail = log.read_text(errors="replace")[-3000:]
                raise ToolError(f"verilator build of {top} failed ({Path(command[0]).name} "
                                f"exited {done.returncode}); log {log}:\n{tail}")


def top_ports(top: str, sources: Sequence[Path]) -> list[str]:
    """The port names of module ``top`` in ``sources`` (its header, plain or ANSI style)."""
    header = re.compile(rf"\bmodule\s+{re.escape(top)}\s*\(([^;]*)\)\s*;")
    for source in sources:
        found = header.search(source.read_text())
        if found:
            return [re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", chunk)[-1]
                    for chunk in found.group(1).split(",") if chunk.strip()]
    raise ConfigError(f"module {top} is in none of the sources {[s.name for s in sources]}")


def _build_icarus(top: str, sources: Sequence[Path], build_dir: Path, waves: bool,
                  log: Path) -> None:
    try:
        simulator_runner("icarus").build(
            sources=list(sources), hdl_toplevel=top, build_dir=build_dir,
            timescale=TIMESCALE, build_args=list(ICARUS_BUILD_ARGS), waves=waves,
            log_file=log)
    except (RuntimeError, SystemExit) as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise ToolError(f"icarus build of {top} failed ({exc}); log {log}:\n{tail}") from None


def run_test(built: Build, test_module: str, *, env: Mapping[str, str],
             testcase: str | None = None, plusargs: Sequence[str] = (), seed: int = 0,
             run_dir: Path | None = None) -> CocotbRun:
    """Run cocotb test module ``test_module`` on ``built`` in ``run_dir`` (default a fresh
    ``run-*`` folder in the build folder); ``env`` reaches the test's process. Waves are
    recorded when the build has them (into the run folder)."""
    from cocotb_tools.check_results import get_results

    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=built.build_dir))
    log = run_dir / "sim.log"
    with tool_environment():
        try:
            results_xml = simulator_runner(built.simulator).test(
                test_module=test_module, testcase=testcase, hdl_toplevel=built.top,
                hdl_toplevel_lang="verilog", build_dir=built.build_dir, test_dir=run_dir,
                results_xml=str(run_dir / "results.xml"), extra_env=dict(env),
                plusargs=list(plusargs), seed=seed, waves=built.waves, timescale=TIMESCALE,
                log_file=log)
            _, failed = get_results(results_xml)
        except (SystemExit, RuntimeError):
            failed = 1
    waves = sorted(p for pattern in ("*.fst", "*.vcd")
                   for p in [*run_dir.glob(pattern), *built.build_dir.glob(pattern)])
    return CocotbRun(run_dir=run_dir, log=log, failed=bool(failed), wave_files=waves)
