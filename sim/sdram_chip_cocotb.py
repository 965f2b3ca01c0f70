"""The cocotb test that ``binaryvit.sim.sdram.run_chip_scenarios`` runs on the chip model.

The JSON job named by ``$BINARYVIT_SDRAM_JOB`` holds ``scenarios``: each a list of commands
played one clock cycle at a time on a freshly powered chip (``power_on`` pulsed first):

* ``["nop", n]``: n cycles of NOP.
* ``["act", bank, row]``, ``["read", bank, col]``, ``["pre", bank]``, ``["pre_all"]``,
  ``["ref"]``, ``["bst"]``, ``["mrs", value]``: one cycle of that command.
* ``["read_ap", bank, col]`` / ``["write_ap", bank, col, [words]]``: with A10 (auto precharge).
* ``["write", bank, col, [words], dqm]``: WRITE with the first word, then a NOP per further
  word while the controller side drives it (``dqm``, default 0, on every word).
* ``["drive", word]``: one NOP cycle with the controller driving DQ.
* ``["cke_low"]``: one NOP cycle with CKE low.

Per scenario it records the chip's flags after the last command and ``reads``: ``[edge,
word]`` for each rising edge (counted from the scenario's first command, edge 0) at which
the chip drove both byte lanes — what a controller registers at that edge.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

JOB_ENV = "BINARYVIT_SDRAM_JOB"
COMMANDS = {"nop": 0b0111, "act": 0b0011, "read": 0b0101, "write": 0b0100, "bst": 0b0110,
            "pre": 0b0010, "ref": 0b0001, "mrs": 0b0000}


class _Pins:
    def __init__(self, dut):
        self.dut = dut
        self.edge = 0
        self.reads: list[list[int]] = []

    def set(self, command="nop", ba=0, a=0, dq=None, dqm=0, cke=1):
        d = self.dut
        bits = COMMANDS[command]
        d.cs_n.value = 0
        d.ras_n.value = (bits >> 2) & 1
        d.cas_n.value = (bits >> 1) & 1
        d.we_n.value = bits & 1
        d.ba.value = ba
        d.a.value = a
        d.dqm.value = dqm
        d.cke.value = cke
        d.dq_i_oe.value = 0 if dq is None else 1
        d.dq_i.value = 0 if dq is None else dq

    async def tick(self):
        """One cycle: the rising edge samples the pins set before it; at the falling edge
        after it, record the bus the chip drives until the next rising edge (which is
        when a controller registers it)."""
        await RisingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.edge += 1
        if int(self.dut.dq_o_oe.value) == 3:
            self.reads.append([self.edge, int(self.dut.dq_o.value)])


async def _play(pins: _Pins, commands: list) -> None:
    for cmd in commands:
        name, args = cmd[0], cmd[1:]
        if name == "nop":
            for _ in range(args[0]):
                pins.set()
                await pins.tick()
        elif name == "act":
            pins.set("act", ba=args[0], a=args[1])
            await pins.tick()
        elif name in ("read", "read_ap"):
            pins.set("read", ba=args[0], a=args[1] | (1 << 10 if name == "read_ap" else 0))
            await pins.tick()
        elif name in ("write", "write_ap"):
            bank, col, words = args[0], args[1], args[2]
            dqm = args[3] if len(args) > 3 else 0
            for i, word in enumerate(words):
                if i == 0:
                    pins.set("write", ba=bank, a=col | (1 << 10 if name == "write_ap" else 0),
                             dq=word, dqm=dqm)
                else:
                    pins.set(dq=word, dqm=dqm)
                await pins.tick()
        elif name == "pre":
            pins.set("pre", ba=args[0])
            await pins.tick()
        elif name == "pre_all":
            pins.set("pre", a=1 << 10)
            await pins.tick()
        elif name in ("ref", "bst"):
            pins.set(name)
            await pins.tick()
        elif name == "mrs":
            pins.set("mrs", a=args[0])
            await pins.tick()
        elif name == "drive":
            pins.set(dq=args[0])
            await pins.tick()
        elif name == "cke_low":
            pins.set(cke=0)
            await pins.tick()
        else:
            raise ValueError(f"unknown scenario command {cmd!r}")


@cocotb.test()
async def chip_scenarios(dut):
    """Play every scenario of the job on a freshly powered chip; write the flags."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    results = []
    for scenario in job["scenarios"]:
        pins = _Pins(dut)
        pins.set()
        dut.power_on.value = 1
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.power_on.value = 0
        await _play(pins, scenario)
        pins.set()
        for _ in range(4):                      # let read data in flight reach the bus
            await pins.tick()
        results.append({"error": int(dut.error.value), "first_error": int(dut.first_error.value),
                        "error_count": int(dut.error_count.value), "reads": pins.reads,
                        "refreshes": int(dut.refreshes.value)})
    Path(job["result_path"]).write_text(json.dumps(results))
