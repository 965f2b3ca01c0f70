"""The engine: :class:`~binaryvit.hw.engine.rtl.core.EngineCore` on its
:class:`~binaryvit.hw.engine.rtl.memory.EngineMemory`, with a host port.

The host port reaches the memory while the core is not busy: the loader (or a testbench)
writes the parameter payload and an image's pixels through it, and reads the logits back.

Members
-------
start, pc_start, busy, done, error, error_pc, instructions : as for the core.
cycles : Out(32)            cycles the core has been busy since ``start``.
host_addr : In(address_bits)
host_write : In(1)          write ``host_write_data`` at ``host_addr`` (core idle only).
host_write_data : In(16)
host_read : In(1)           read ``host_addr``; ``host_read_data`` has it the next cycle.
host_read_data : Out(16)
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.engine.config import WORD_BITS, EngineConfig
from binaryvit.hw.engine.rtl.core import EngineCore
from binaryvit.hw.engine.rtl.memory import EngineMemory


class Engine(wiring.Component):
    def __init__(self, config: EngineConfig, *, implementation: str = "model", init=None):
        self.core = EngineCore(config)
        self.memory = EngineMemory(config, implementation=implementation, init=init)
        a = self.core.address_bits
        super().__init__({
            "start": In(1), "pc_start": In(a), "busy": Out(1), "done": Out(1),
            "error": Out(1), "error_pc": Out(a), "instructions": Out(16), "cycles": Out(32),
            "host_addr": In(a), "host_write": In(1), "host_write_data": In(WORD_BITS),
            "host_read": In(1), "host_read_data": Out(WORD_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.memory = mem = self.memory
        m.d.comb += [
            core.start.eq(self.start), core.pc_start.eq(self.pc_start),
            self.busy.eq(core.busy), self.done.eq(core.done), self.error.eq(core.error),
            self.error_pc.eq(core.error_pc), self.instructions.eq(core.instructions),
            core.mem_read_data.eq(mem.read_data), self.host_read_data.eq(mem.read_data),
        ]
        with m.If(core.busy):
            m.d.comb += [mem.addr.eq(core.mem_addr), mem.read.eq(core.mem_read),
                         mem.write.eq(core.mem_write), mem.write_data.eq(core.mem_write_data)]
        with m.Else():
            m.d.comb += [mem.addr.eq(self.host_addr), mem.read.eq(self.host_read),
                         mem.write.eq(self.host_write), mem.write_data.eq(self.host_write_data)]
        with m.If(self.start):
            m.d.sync += self.cycles.eq(0)
        with m.Elif(core.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m


__all__ = ["Engine"]
