"""The cocotb test that ``binaryvit.sim.sdram.run_controller_traffic`` runs: traffic through
the SDRAM controller's memory port into the chip model, checked against a Python reference
memory.

The JSON job named by ``$BINARYVIT_SDRAM_JOB`` holds ``phases``, run one after the other;
each is a dict:

* ``name``; ``commands``: ``[burst, write]`` pairs, in order (the burst index as on the
  port; ``write`` 1 or 0);
* ``wdata_gap``: probability that the write-data producer holds a word back in a cycle;
* ``rdata_stall``: probability that the consumer refuses a read word in a cycle.

Write data: burst ``n`` written for the ``k``-th time gets words from a seeded generator.
The reference memory is updated when a write command is accepted and every read's 8
expected words are taken from it when the read is accepted (the port keeps commands in
order). Per phase the result holds ``cycles`` (from the first command offered to the
last word read or written), ``words``, ``compared`` and ``mismatches`` (with the first few
``[burst, index, got, want]``), ``first_read_latency`` (cycles from the first read command
accepted to its first word taken), and after the last phase the model's ``error``,
``first_error`` and ``refreshes``.
"""
from __future__ import annotations

import json
import os
import random
from collections import deque
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

JOB_ENV = "BINARYVIT_SDRAM_JOB"
BURST = 8


async def _phase(dut, phase: dict, memory: dict, rng: random.Random, burst_bits: int) -> dict:
    commands = deque(phase["commands"])
    writes = deque()
    for burst, write in phase["commands"]:
        if write:
            writes.extend(rng.randrange(1 << 16) for _ in range(BURST))
    pending_words = deque(writes)          # still to offer on wdata
    accepted_words = deque(writes)         # the words each accepted write takes, in order
    expected = deque()                     # (burst, index, word) the reads owe
    gap, stall = phase.get("wdata_gap", 0.0), phase.get("rdata_stall", 0.0)
    result = {"name": phase["name"], "words": BURST * len(commands), "compared": 0,
              "mismatches": 0, "examples": []}
    cycles = 0
    first_read = None
    while commands or expected or pending_words:
        await FallingEdge(dut.clk)
        cycles += 1
        if commands:
            burst, write = commands[0]
            dut.cmd_payload.value = burst | (write << burst_bits)
            dut.cmd_valid.value = 1
        else:
            dut.cmd_valid.value = 0
        offer = bool(pending_words) and rng.random() >= gap
        dut.wdata_valid.value = int(offer)
        dut.wdata_payload.value = pending_words[0] if pending_words else 0
        take = rng.random() >= stall
        dut.rdata_ready.value = int(take)
        await ReadOnly()
        if commands and int(dut.cmd_ready.value):
            burst, write = commands.popleft()
            if not write and first_read is None:
                first_read = cycles
            for i in range(BURST):
                if write:
                    memory[burst * BURST + i] = accepted_words.popleft()
                else:
                    expected.append((burst, i, memory.get(burst * BURST + i)))
        if offer and int(dut.wdata_ready.value):
            pending_words.popleft()
        if take and int(dut.rdata_valid.value):
            if "first_read_latency" not in result:
                result["first_read_latency"] = cycles - first_read
            got = int(dut.rdata_payload.value)
            if not expected:
                result["mismatches"] += 1
                result["examples"].append(["unexpected word", got])
            else:
                burst, index, want = expected.popleft()
                if want is not None:
                    result["compared"] += 1
                    if got != want:
                        result["mismatches"] += 1
                        if len(result["examples"]) < 5:
                            result["examples"].append([burst, index, got, want])
        await RisingEdge(dut.clk)
        if cycles > 200 * (result["words"] + 100):
            result["timeout"] = True
            break
    result["cycles"] = cycles
    return result


@cocotb.test()
async def controller_traffic(dut):
    """Initialise, then run every phase; write the statistics."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    rng = random.Random(job["seed"])
    burst_bits = len(dut.cmd_payload) - 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.cmd_valid.value = 0
    dut.wdata_valid.value = 0
    dut.rdata_ready.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    init_cycles = 0
    while not int(dut.ready.value):
        await RisingEdge(dut.clk)
        init_cycles += 1
    memory: dict[int, int] = {}
    results = {"init_cycles": init_cycles, "phases": []}
    for phase in job["phases"]:
        results["phases"].append(await _phase(dut, phase, memory, rng, burst_bits))
    await FallingEdge(dut.clk)
    results.update(error=int(dut.error.value), first_error=int(dut.first_error.value),
                   error_count=int(dut.error_count.value), refreshes=int(dut.refreshes.value),
                   initialised=int(dut.initialised.value))
    Path(job["result_path"]).write_text(json.dumps(results))
