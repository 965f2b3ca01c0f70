"""The cocotb test that ``binaryvit.sim.engine_sim`` runs on the engine RTL.

It reads a JSON job named by ``$BINARYVIT_ENGINE_JOB``: the payload segments
(``[address, words]``), each image's pixel words, the input and output addresses, the
program's halfword address and a cycle limit. Through the engine's host port it writes the
payload once, then per image the pixels (with a random number of idle cycles before each
word: the host side has gaps), pulses ``start``, waits for ``done`` (``error`` or the limit
fail the run) and reads the output words back. It writes the output words, the engine's busy
cycles and the instruction count per image to the job's result file.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

JOB_ENV = "BINARYVIT_ENGINE_JOB"
PERIOD_NS = 10


@cocotb.test()
async def engine_inference(dut):
    """Load the payload, run every image, record the outputs and cycles."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    result = {"outputs": [], "cycles": [], "instructions": [], "error": None}
    try:
        await _run(dut, job, result)
    except AssertionError as exc:
        result["error"] = str(exc)
    finally:
        Path(job["result_path"]).write_text(json.dumps(result))


async def _write(dut, address: int, word: int) -> None:
    dut.host_addr.value = address
    dut.host_write_data.value = word
    dut.host_write.value = 1
    await RisingEdge(dut.clk)
    dut.host_write.value = 0


async def _read(dut, address: int) -> int:
    dut.host_addr.value = address
    dut.host_read.value = 1
    await RisingEdge(dut.clk)
    await ReadOnly()
    value = dut.host_read_data.value
    await Timer(1, unit="ns")
    dut.host_read.value = 0
    if not value.is_resolvable:
        raise AssertionError(f"output word at {address} is not 0/1: {value}")
    return int(value)


async def _run(dut, job: dict, result: dict) -> None:
    rng = random.Random(job["seed"])
    for name in ("start", "host_write", "host_read"):
        getattr(dut, name).value = 0
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    for address, words in job["segments"]:
        for i, word in enumerate(words):
            await _write(dut, address + i, word)
    for pixels in job["images"]:
        for i, word in enumerate(pixels):
            for _ in range(rng.randrange(3)):
                await RisingEdge(dut.clk)
            await _write(dut, job["input_address"] + i, word)
        dut.pc_start.value = job["pc"]
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.clk)
        limit = Timer(job["max_cycles"] * PERIOD_NS, unit="ns")
        fired = await First(RisingEdge(dut.done), RisingEdge(dut.error), limit)
        await RisingEdge(dut.clk)
        if fired is limit:
            raise AssertionError(f"image {len(result['cycles'])}: no done after "
                                 f"{job['max_cycles']} cycles")
        if int(dut.error.value):
            raise AssertionError(f"image {len(result['cycles'])}: the engine stopped with error "
                                 f"at halfword {int(dut.error_pc.value)}")
        result["cycles"].append(int(dut.cycles.value))
        result["instructions"].append(int(dut.instructions.value))
        result["outputs"].append([await _read(dut, job["output_address"] + i)
                                  for i in range(job["output_words"])])
