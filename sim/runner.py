"""Run a component's generated Verilog against expected stream words in cocotb.

``run_stream_vectors`` is the one call a kernel test needs: it converts the component to
Verilog, builds it with cocotb 2.1's Python runner (Verilator or Icarus), runs the generic
test ``binaryvit.sim.stream_vectors_test`` (random input bubbles, random output
back-pressure, every output word compared), and raises ``AssertionError`` with a readable
message on any difference, timeout or X. Builds are cached by a hash of the Verilog, so a
test that only changes the stimulus reuses the compiled simulator.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from amaranth.hdl import Shape
from amaranth.lib import wiring

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import ConfigError, ToolError
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.toolchain import cache_dir, require_tool, tool_env

__all__ = ["SimResult", "run_stream_vectors", "run_throughput", "SIMULATORS",
           "VERILATOR_BUILD_ARGS", "ICARUS_BUILD_ARGS", "simulator_runner"]

SIMULATORS = ("verilator", "icarus")
TEST_MODULE = "binaryvit.sim.stream_vectors_test"
# Lint is a separate, strict step (binaryvit.sim.lint); the simulation build only needs
# Verilator not to stop on the style warnings Amaranth's output triggers.
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
# Icarus's default -g2012 runs declaration initialisers before time 0 without an event, so
# an `always @*` block whose inputs then never change (a mux on a register that keeps its
# reset value) never runs and its output stays X; -g2005 gives that event.
ICARUS_BUILD_ARGS = ("-g2005",)
# -O1 keeps the g++ step short; the simulation speed is bound by the Python testbench.
VERILATOR_MAKEFLAGS = "OPT_FAST=-O1 OPT_SLOW=-O0"
BUILD_RECIPE_VERSION = "2"


@dataclass
class SimResult:
    """What a cocotb run observed.

    Attributes
    ----------
    outputs : dict[str, list[int]]
        Received flat payload words per output port (equal to the expectation on return).
    cycles : int
        Clock cycles from the first input transfer to the last output transfer, both
        included (the number of words plus the latency when nothing stalls).
    total_cycles : int
        Cycles from reset release to the last output transfer.
    simulator : str
    build_dir : pathlib.Path
        Where the simulator was built (and the Verilog ``<name>.v`` lies).
    waves : pathlib.Path or None
        The waveform file when ``waves=True``.
    built : bool
        False when a cached build was reused.
    """

    outputs: dict[str, list[int]] = field(default_factory=dict)
    cycles: int = 0
    total_cycles: int = 0
    simulator: str = "verilator"
    build_dir: Path = Path()
    waves: Path | None = None
    built: bool = False


@contextlib.contextmanager
def _tool_environment() -> Iterator[None]:
    """Apply the tool environment to this process for the runner (which reads
    ``os.environ``), and restore it afterwards."""
    saved = dict(os.environ)
    env = tool_env()
    env["MAKEFLAGS"] = f"{env['MAKEFLAGS']} {VERILATOR_MAKEFLAGS}"
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock so parallel pytest workers do not build into the same folder."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_width(component: wiring.Component, port: str, flow: wiring.Flow) -> int:
    members = component.signature.members
    if port not in members or not members[port].is_signature:
        raise ConfigError(f"{type(component).__name__} has no stream port {port!r}; "
                          f"its ports are {sorted(members)}")
    member = members[port]
    if member.flow != flow:
        kind = "input" if flow == wiring.In else "output"
        raise ConfigError(f"port {port!r} of {type(component).__name__} is not an {kind} stream")
    return Shape.cast(member.signature.members["payload"].shape).width


def _check_words(port: str, words: Sequence[int], width: int) -> list[int]:
    checked = [int(w) for w in words]
    for index, word in enumerate(checked):
        if not 0 <= word < (1 << width):
            raise ConfigError(f"port {port!r}: word {index} = {word} is outside the "
                              f"{width}-bit payload range [0, 2**{width})")
    return checked


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


def _fst_supported() -> bool:
    """Verilator's FST writer needs the lz4 headers (Debian: liblz4-dev)."""
    folders = ["/usr/include", "/usr/local/include",
               *filter(None, os.environ.get("CPATH", "").split(os.pathsep))]
    return any((Path(folder) / "lz4.h").exists() for folder in folders)


def _build(simulator: str, name: str, verilog: str, build_dir: Path, waves: bool) -> bool:
    """Build the simulator in ``build_dir`` unless an identical build is there.
    Returns True when it built."""
    trace = ("fst" if _fst_supported() else "vcd") if waves else False
    stamp = hashlib.sha256(f"{BUILD_RECIPE_VERSION}|{simulator}|{trace}|{verilog}"
                           .encode()).hexdigest()
    marker = build_dir / ".built"
    if marker.exists() and marker.read_text() == stamp:
        return False
    marker.unlink(missing_ok=True)
    source = build_dir / f"{name}.v"
    write_text_atomic(source, verilog)
    runner = simulator_runner(simulator)
    build_args = list(VERILATOR_BUILD_ARGS if simulator == "verilator" else ICARUS_BUILD_ARGS)
    if waves and simulator == "verilator" and _fst_supported():
        build_args.append("--trace-fst")
    log = build_dir / "build.log"
    try:
        runner.build(sources=[source], hdl_toplevel=name, build_dir=build_dir,
                     timescale=("1ns", "1ps"), build_args=build_args, waves=waves,
                     log_file=log)
    except (RuntimeError, SystemExit) as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise ToolError(f"{simulator} build of {name} failed ({exc}); log {log}:\n{tail}") \
            from None
    marker.write_text(stamp)
    return True


def run_stream_vectors(component: wiring.Component, name: str,
                       inputs: Mapping[str, Sequence[int]],
                       expected: Mapping[str, Sequence[int]], *,
                       simulator: str = "verilator", bubble_prob: float = 0.3,
                       stall_prob: float = 0.3, seed: int = 0, waves: bool = False,
                       build_dir: str | os.PathLike | None = None,
                       timeout_cycles: int | None = None) -> SimResult:
    """Check ``component``'s Verilog in cocotb: every output word equals ``expected``.

    Parameters
    ----------
    component : wiring.Component
        The kernel, with stream ports named as in ``inputs`` / ``expected``.
    name : str
        Verilog module name (also names the build folder).
    inputs : dict[str, list[int]]
        Flat payload words to send per input stream port.
    expected : dict[str, list[int]]
        Flat payload words expected per output stream port, in order.
    simulator : {"verilator", "icarus"}
    bubble_prob : float
        Probability of an idle cycle before each input word (repeated, geometric).
    stall_prob : float
        Probability that an output's ``ready`` is low on a cycle.
    seed : int
        Seeds the bubble and stall patterns (each port its own stream).
    waves : bool
        Record a waveform: Verilator FST (``--trace-fst``) when the lz4 headers are
        installed (Debian ``liblz4-dev``), else Verilator's VCD; Icarus' FST dump.
    build_dir : path, optional
        Default: ``<cache>/sim/<name>-<simulator>[-waves]-<hash of the Verilog>``, where
        ``<cache>`` is ``$BINARYVIT_CACHE`` or ``~/.cache/binaryvit``.
    timeout_cycles : int, optional
        Deadlock guard; default ``2000 + 40 × (total words)``.

    Returns
    -------
    SimResult

    Raises
    ------
    AssertionError
        A differing word (naming port, word index, expected and got in hex, neighbours),
        a missing or extra word, X/Z on an output, or a timeout naming the waiting ports.
    ConfigError
        Unknown ports, or words that do not fit their port.
    ToolError
        The simulator is missing or its build fails.
    """
    from cocotb_tools.check_results import get_results

    if simulator not in SIMULATORS:
        raise ConfigError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
    for prob_name, prob in (("bubble_prob", bubble_prob), ("stall_prob", stall_prob)):
        if not 0.0 <= prob < 1.0:
            raise ConfigError(f"{prob_name} must be in [0, 1), not {prob}")
    vectors_in = {p: _check_words(p, w, _port_width(component, p, wiring.In))
                  for p, w in inputs.items()}
    vectors_out = {p: _check_words(p, w, _port_width(component, p, wiring.Out))
                   for p, w in expected.items()}
    if timeout_cycles is None:
        words = sum(map(len, vectors_in.values())) + sum(map(len, vectors_out.values()))
        timeout_cycles = 2000 + 40 * words

    verilog = to_verilog(component, name)
    digest = hashlib.sha256(verilog.encode()).hexdigest()[:16]
    if build_dir is None:
        build_dir = cache_dir() / "sim" / f"{name}-{simulator}{'-waves' if waves else ''}-{digest}"
    build_dir = Path(build_dir).resolve()

    with _tool_environment():
        require_tool("verilator" if simulator == "verilator" else "iverilog")
        with _locked(build_dir):
            built = _build(simulator, name, verilog, build_dir, waves)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=build_dir))
        vectors_path = run_dir / "vectors.json"
        result_path = run_dir / "result.json"
        vectors_path.write_text(json.dumps({
            "inputs": vectors_in, "outputs": vectors_out, "seed": seed,
            "bubble_prob": bubble_prob, "stall_prob": stall_prob,
            "timeout_cycles": timeout_cycles, "result_path": str(result_path)}))
        runner = simulator_runner(simulator)
        log = run_dir / "sim.log"
        try:
            results_xml = runner.test(
                test_module=TEST_MODULE, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=run_dir, results_xml=str(run_dir / "results.xml"),
                extra_env={"BINARYVIT_STREAM_VECTORS": str(vectors_path)},
                seed=seed, waves=waves, timescale=("1ns", "1ps"), log_file=log)
            _, failed = get_results(results_xml)
        except (SystemExit, RuntimeError):
            failed = 1
        result = json.loads(result_path.read_text()) if result_path.exists() else None

    if failed or result is None or result["error"]:
        if result is not None and result["error"]:
            message = result["error"]
        else:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            message = f"the cocotb run failed without a verdict; log {log}:\n{tail}"
        raise AssertionError(f"{simulator} simulation of {name} (seed {seed}): {message}\n"
                             f"(vectors, log and results kept in {run_dir})")

    wave_file = None
    if waves:
        candidates = sorted(run_dir.glob("*.fst")) + sorted(run_dir.glob("*.vcd")) \
            + sorted(build_dir.glob("*.fst")) + sorted(build_dir.glob("*.vcd"))
        wave_file = candidates[0] if candidates else None
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return SimResult(outputs=result["outputs"], cycles=result["cycles"],
                     total_cycles=result["total_cycles"], simulator=simulator,
                     build_dir=build_dir, waves=wave_file, built=built)


def run_throughput(component: wiring.Component, name: str,
                   inputs: Mapping[str, Sequence[int]],
                   expected: Mapping[str, Sequence[int]], **kwargs) -> SimResult:
    """``run_stream_vectors`` with no bubbles and no back-pressure: steady-state cycle
    counts for benchmarks (outputs are still checked word for word)."""
    return run_stream_vectors(component, name, inputs, expected,
                              bubble_prob=0.0, stall_prob=0.0, **kwargs)
