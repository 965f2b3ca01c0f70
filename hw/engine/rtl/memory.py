"""The engine's memory: its banks behind one word address space, one access per cycle.

Bank ``i`` of ``config.banks`` holds words ``bank_start(i) … bank_start(i) + words − 1``
(``docs/engine.md``, "Memory"). This first memory system serves one read or one write per
cycle over all banks (the cycle model assumes one per bank per cycle: the per-bank ports
are the next step, ``docs/engine-rtl.md``).

``implementation="model"`` builds each bank as an Amaranth ``Memory`` whose contents start
as ``init`` (a memory image, e.g. the ISS's, so a simulation starts where the ISS is);
``"spram"`` instantiates :class:`~binaryvit.hw.engine.spram.SinglePortSPRAM` primitives
(16,384-word banks only; contents are loaded at boot).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.config import WORD_BITS, EngineConfig
from binaryvit.hw.engine.spram import SPRAM_DEPTH, SinglePortSPRAM


class EngineMemory(wiring.Component):
    """All of an engine's banks on one port.

    Members
    -------
    addr : In(address_bits)   word address in the engine's address space.
    read : In(1)              read ``addr``; ``read_data`` has the word the next cycle.
    write : In(1)             write ``write_data`` at ``addr`` (not together with ``read``).
    write_data : In(16)
    read_data : Out(16)       the word of the last read (latency 1).
    """

    def __init__(self, config: EngineConfig, *, implementation: str = "model", init=None):
        if implementation not in ("model", "spram"):
            raise ConfigError(f"implementation: expected 'model' or 'spram', "
                              f"got {implementation!r}")
        if implementation == "spram" and any(b.words != SPRAM_DEPTH for b in config.banks):
            raise ConfigError(f"engine config {config.name!r}: SPRAM banks hold "
                              f"{SPRAM_DEPTH} words")
        self.config = config
        self.implementation = implementation
        self.address_bits = max(1, (config.total_words - 1).bit_length())
        image = np.zeros(config.total_words, dtype=np.uint16) if init is None \
            else np.asarray(init, dtype=np.uint16).reshape(-1)
        if image.shape != (config.total_words,):
            raise ConfigError(f"init: expected {config.total_words} words, got {image.shape[0]}")
        self.memories: list[Memory] = []
        if implementation == "model":
            for i, bank in enumerate(config.banks):
                start = config.bank_start(i)
                self.memories.append(Memory(shape=WORD_BITS, depth=bank.words,
                                            init=image[start:start + bank.words].tolist()))
        super().__init__({
            "addr": In(self.address_bits), "read": In(1), "write": In(1),
            "write_data": In(WORD_BITS), "read_data": Out(WORD_BITS),
        })

    def word(self, address: int):
        """The simulator-visible word at ``address`` (``implementation="model"`` only)."""
        bank = self.config.bank_of(address)
        return self.memories[bank].data[address - self.config.bank_start(bank)]

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        last = Signal(range(len(cfg.banks)))
        outputs = []
        for i, bank in enumerate(cfg.banks):
            start = cfg.bank_start(i)
            chosen = (self.addr >= start) & (self.addr < start + bank.words)
            local = (self.addr - start)[:max(1, (bank.words - 1).bit_length())]
            with m.If(chosen & self.read):
                m.d.sync += last.eq(i)
            if self.implementation == "model":
                m.submodules[f"bank{i}"] = memory = self.memories[i]
                rd = memory.read_port()
                wr = memory.write_port()
                m.d.comb += [rd.addr.eq(local), rd.en.eq(chosen & self.read),
                             wr.addr.eq(local), wr.data.eq(self.write_data),
                             wr.en.eq(chosen & self.write)]
                outputs.append(rd.data)
            else:
                m.submodules[f"bank{i}"] = ram = SinglePortSPRAM(implementation="primitive")
                m.d.comb += [ram.addr.eq(local), ram.enable.eq(chosen & (self.read | self.write)),
                             ram.write.eq(self.write), ram.write_data.eq(self.write_data),
                             ram.write_mask.eq(0xF)]
                outputs.append(ram.read_data)
        data = outputs[0]
        for i in range(1, len(outputs)):
            data = Mux(last == i, outputs[i], data)
        m.d.comb += self.read_data.eq(data)
        return m


__all__ = ["EngineMemory"]
