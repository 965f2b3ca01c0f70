"""The cocotb test that runs a ``binaryvit.sim.stream_harness`` testbench to completion.

It reads a JSON job named by ``$BINARYVIT_HARNESS_JOB``: ``progress_path``,
``progress_cycles``, ``extra_cycles`` and ``status_path``. It starts the clock (cocotb's
C++ clock, no Python per cycle; the harness resets the top itself), then awaits the harness's
``done`` or ``stalled`` flag, waking every ``progress_cycles`` cycles only to write the
number of finished images to ``progress_path``. After ``done`` it runs ``extra_cycles``
more so that a word beyond the expected ones is caught (the harness records it). It
writes ``{"done", "stalled"}`` to ``status_path``; the words themselves are in
the harness's result file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, RisingEdge, Timer

JOB_ENV = "BINARYVIT_HARNESS_JOB"
CLOCK_NS = 10


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


@cocotb.test()
async def harness_run(dut):
    """Run the harness until every expected output word has left, or a stall."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    progress_path = Path(job["progress_path"])
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    done, stalled = RisingEdge(dut.done), RisingEdge(dut.stalled)
    tick = job["progress_cycles"] * CLOCK_NS
    while not (dut.done.value or dut.stalled.value):
        await First(done, stalled, Timer(tick, unit="ns"))
        _write_atomic(progress_path, str(int(dut.images_out.value)))
    if dut.done.value:
        await Timer(job["extra_cycles"] * CLOCK_NS, unit="ns")
    status = {"done": bool(dut.done.value), "stalled": bool(dut.stalled.value)}
    Path(job["status_path"]).write_text(json.dumps(status))
