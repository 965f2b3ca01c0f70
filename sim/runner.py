"""Run a component's generated Verilog against expected stream words in cocotb.

``run_stream_vectors`` is the one call a kernel test needs: it converts the component to
Verilog, builds it with the one simulator runner ``binaryvit.sim.simulator`` (Verilator or
Icarus, cached and locked), runs the generic
test ``binaryvit.sim.stream_vectors_test`` (random input bubbles, random output
back-pressure, every output word compared), and raises ``AssertionError`` with a readable
message on any difference, timeout or X. Builds are cached by a hash of the Verilog, so a
test that only changes the stimulus reuses the compiled simulator.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from amaranth.hdl import Shape
from amaranth.lib import wiring

from binaryvit.errors import ConfigError
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.simulator import SIMULATORS, Design, build, run_test

__all__ = ["SimResult", "run_stream_vectors", "run_throughput"]

TEST_MODULE = "binaryvit.sim.stream_vectors_test"
VECTORS_ENV = "BINARYVIT_STREAM_VECTORS"


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

    built = build(Design(name, {f"{name}.v": to_verilog(component, name)}),
                  simulator=simulator, waves=waves, build_dir=build_dir)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=built.build_dir))
    vectors_path, result_path = run_dir / "vectors.json", run_dir / "result.json"
    vectors_path.write_text(json.dumps({
        "inputs": vectors_in, "outputs": vectors_out, "seed": seed,
        "bubble_prob": bubble_prob, "stall_prob": stall_prob,
        "timeout_cycles": timeout_cycles, "result_path": str(result_path)}))
    run = run_test(built, TEST_MODULE, env={VECTORS_ENV: str(vectors_path)}, seed=seed,
                   run_dir=run_dir)
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    if run.failed or result is None or result["error"]:
        if result is not None and result["error"]:
            message = result["error"]
        else:
            message = f"the cocotb run failed without a verdict; log {run.log}:\n{run.log_tail()}"
        raise AssertionError(f"{simulator} simulation of {name} (seed {seed}): {message}\n"
                             f"(vectors, log and results kept in {run_dir})")
    if not waves:
        shutil.rmtree(run_dir, ignore_errors=True)
    return SimResult(outputs=result["outputs"], cycles=result["cycles"],
                     total_cycles=result["total_cycles"], simulator=simulator,
                     build_dir=built.build_dir,
                     waves=run.wave_files[0] if run.wave_files else None, built=built.built)


def run_throughput(component: wiring.Component, name: str,
                   inputs: Mapping[str, Sequence[int]],
                   expected: Mapping[str, Sequence[int]], **kwargs) -> SimResult:
    """``run_stream_vectors`` with no bubbles and no back-pressure: steady-state cycle
    counts for benchmarks (outputs are still checked word for word)."""
    return run_stream_vectors(component, name, inputs, expected,
                              bubble_prob=0.0, stall_prob=0.0, **kwargs)
