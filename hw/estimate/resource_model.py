"""What a folded network costs on an FPGA: logic cells, flip-flops, block RAMs and DSPs.

The estimate is structural. Each kernel is described by what its ``elaborate`` builds —
adder bits (carry chains), other LUT logic, flip-flops, multipliers and memories — and
each FPGA family turns those into the cells nextpnr counts:

* **Memories** go where Yosys' ``memory_libmap`` puts them. Its choice is reproduced
  here from its cost rules (``passes/memory/memory_libmap.cc`` and the families'
  ``brams*.txt`` / ``lutrams*.txt``): every geometry of every RAM primitive is priced at
  ``cost · blocks + ½ · read-mux bits + ½ · write-demux bits + 2 · emulation score``,
  against soft logic at one unit per RAM bit and 1/16 per ROM bit; the cheapest wins.
  So small ROMs (constants) become LUTs, RAMs become block RAM on both families and LUT
  RAM (``TRELLIS_DPR16X4``) on the ECP5 when small, and a transparent read port costs
  soft bypass logic.
* **Multipliers** use the ECP5's ``MULT18X18D`` (``⌈(a−1)/18⌉·⌈(b−1)/18⌉`` blocks for a
  signed ``a × b`` product, plus the adders that join partial products) and LUTs on the iCE40
  (``synth_ice40`` is run without ``-dsp``).
* **Logic**: an adder bit is one logic cell on both families (``SB_CARRY`` sits beside
  a LUT; a ``CCU2C`` holds two bits in two ``TRELLIS_COMB``); an iCE40 logic cell also
  holds a flip-flop, and about a third of the flip-flops share one with a LUT. One factor
  per kernel type (its op spec's ``calibration``) scales the structural count to Yosys'.

This module holds the building blocks: the families, Yosys' memory mapping, a kernel's
structural ``KernelCost`` and the plumbing's costs. Each op's kernel structure and its
calibration factor live with the op (``binaryvit.hw.ops``); the whole network's estimate is
``binaryvit.hw.estimate.network_estimate``.

The constants were calibrated against YoWASP Yosys 0.70 on the generated tiny-digits
kernels and checked on a whole-network ECP5 build (``docs/boards.md``, "Resource model
and fit"); an estimate is a bound to plan with, not a synthesis result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import torch

from binaryvit.hw.kernels.parameter_checks import MIN_WIDTH, signed_width_of

__all__ = ["Resources", "MemoryShape", "MemoryMapping", "RamPrimitive", "Family", "FAMILIES",
           "map_memory", "fifo_memory", "fifo_resources", "converter_resources",
           "fork_resources", "argmax_resources", "KernelCost", "signed_width",
           "counter", "rom", "saturating", "plus", "control", "sum_resources"]


@dataclass(frozen=True)
class Resources:
    """Cells of one design part as nextpnr counts them.

    luts : logic cells (iCE40 ``ICESTORM_LC``, ECP5 ``TRELLIS_COMB``).
    ffs : flip-flops.
    brams : block RAM tiles (iCE40 ``SB_RAM40_4K``, ECP5 ``DP16KD``).
    dsps : multiplier blocks (ECP5 ``MULT18X18D``; iCE40UP ``SB_MAC16``, which only the
        engine's vector unit instantiates: the dataflow's iCE40 multipliers are LUTs).
    sprams : iCE40UP ``SB_SPRAM256KA`` (the engine's memories).
    """

    luts: float = 0.0
    ffs: float = 0.0
    brams: int = 0
    dsps: int = 0
    sprams: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.luts + other.luts, self.ffs + other.ffs,
                         self.brams + other.brams, self.dsps + other.dsps,
                         self.sprams + other.sprams)

    def rounded(self) -> dict[str, int]:
        return {"luts": round(self.luts), "ffs": round(self.ffs), "brams": self.brams,
                "dsps": self.dsps, "sprams": self.sprams}


def sum_resources(parts: Iterable[Resources]) -> Resources:
    total = Resources()
    for part in parts:
        total = total + part
    return total


@dataclass(frozen=True)
class MemoryShape:
    """One ``amaranth.lib.memory.Memory`` of a kernel: ``depth`` words of ``width`` bits,
    a synchronous read port; ``writable`` (a RAM) or a ROM with init; ``transparent``:
    the read port sees a same-cycle write (soft bypass logic on every family);
    ``collision_free``: the memory carries ``no_rw_check`` (a read never meets a write of
    the same word), else Yosys adds soft read-before-write logic around a block RAM;
    ``varying``: a ROM's bit columns that are not the same in every word (Yosys drops
    the constant ones before mapping; ``None``: all of them)."""

    name: str
    width: int
    depth: int
    writable: bool
    transparent: bool = False
    collision_free: bool = False
    varying: int | None = None

    @property
    def mapped_width(self) -> int:
        return self.width if self.varying is None else self.varying

    @property
    def bits(self) -> int:
        return self.mapped_width * self.depth


@dataclass(frozen=True)
class RamPrimitive:
    """One RAM cell of a Yosys memory library.

    abits, widths : address bits at the narrowest width; the data widths (``widths[i]``
        has ``2^(abits − i)`` words).
    cost : ``memory_libmap``'s cost per cell.
    byte : write-enable granularity (0: whole words).
    write_widths : widths a write port may use (empty: all).
    distributed : LUT RAM (asynchronous read; Yosys does not map ROMs to it).
    """

    cell: str
    abits: int
    widths: tuple[int, ...]
    cost: int
    byte: int = 0
    write_widths: tuple[int, ...] = ()
    distributed: bool = False


@dataclass(frozen=True)
class MemoryMapping:
    """Where Yosys puts one memory and what it costs there.

    kind : ``"block"``, ``"distributed"`` (LUT RAM) or ``"logic"`` (flip-flops / LUTs).
    cells : RAM cells used (block or distributed).
    geometry : the chosen cell geometry, e.g. ``"512x36"``.
    reason : why, in Yosys' terms (the competing costs).
    """

    memory: MemoryShape
    kind: str
    cells: int
    geometry: str
    resources: Resources
    reason: str


# Emulation scores (memory_libmap.cc score_emu_ports): one point for a read port that does
# not share a write port, three for soft transparency; the score is weighted by 2.
_EMU_WEIGHT = 2


@dataclass(frozen=True)
class Family:
    """An FPGA family as Yosys maps to it and nextpnr counts it.

    block_rams / lut_ram : ``memory_libmap``'s library (``share/ice40/brams.txt``,
        ``share/lattice/brams_16kd.txt``, ``lutrams_trellis.txt``).
    dsp_width : the square multiplier block's operand width (``None``: LUT multipliers).
    soft_multiplier_luts : LUTs per partial-product bit of a LUT multiplier.
    lut_ram_cells : logic cells per LUT RAM cell (with its write-port slice).
    block_mux_luts : LUTs per bit and extra address block of a block RAM's read mux.
    ff_cell_share : logic cells per flip-flop (iCE40: a flip-flop without a LUT driving
        it takes a cell of its own; ECP5 flip-flops are a separate resource).
    cell_names : nextpnr's names of (logic, flip-flop, block RAM, DSP, single-port RAM)
        cells (``None``: the family has none).
    lut_ram_limits : ``(depth, width)``: RAMs no deeper and no wider go to LUT RAM whatever
        Yosys' costs say (``board_build`` marks them ``ram_style = "distributed"``), so a
        FIFO of 65 words does not take a whole 18 kbit block RAM.
    """

    name: str
    block_rams: tuple[RamPrimitive, ...]
    lut_ram: RamPrimitive | None
    dsp_width: int | None
    soft_multiplier_luts: float
    lut_ram_cells: float
    block_mux_luts: float
    ff_cell_share: float
    cell_names: tuple[str, str, str, str, str | None]
    lut_ram_limits: tuple[int, int] | None = None

    def lut_ram_forced(self, memory: "MemoryShape") -> bool:
        """Whether the build forces ``memory`` into LUT RAM."""
        if self.lut_ram is None or self.lut_ram_limits is None or not memory.writable:
            return False
        depth, width = self.lut_ram_limits
        return memory.depth <= depth and memory.mapped_width <= width

    def cells(self, luts: float, ffs: float) -> Resources:
        """Logic cells and flip-flops of ``luts`` LUTs and ``ffs`` flip-flops."""
        return Resources(luts=luts + self.ff_cell_share * ffs, ffs=ffs)


FAMILIES: dict[str, Family] = {
    "ice40": Family(
        name="ice40",
        block_rams=(RamPrimitive("SB_RAM40_4K", 11, (2, 4, 8, 16), 64, write_widths=(2, 4, 8)),
                    RamPrimitive("SB_RAM40_4K", 11, (2, 4, 8, 16), 64, byte=1,
                                 write_widths=(16,))),
        lut_ram=None, dsp_width=None, soft_multiplier_luts=2.9, lut_ram_cells=0.0,
        block_mux_luts=0.6, ff_cell_share=0.65,
        cell_names=("ICESTORM_LC", "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP",
                    "ICESTORM_SPRAM")),
    "ecp5": Family(
        name="ecp5",
        block_rams=(RamPrimitive("DP16KD", 14, (1, 2, 4, 9, 18), 128, byte=9),
                    RamPrimitive("PDPW16KD", 14, (1, 2, 4, 9, 18, 36), 128, byte=9,
                                 write_widths=(36,))),
        lut_ram=RamPrimitive("TRELLIS_DPR16X4", 4, (4,), 4, distributed=True),
        dsp_width=18, soft_multiplier_luts=5.0, lut_ram_cells=6.0, block_mux_luts=1.5,
        ff_cell_share=0.0,
        cell_names=("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D", None)),
}


def _block_options(memory: MemoryShape, ram: RamPrimitive) -> list[tuple[float, int, int, int]]:
    """(cost, cells, address blocks, width) of each geometry ``memory_libmap`` considers."""
    options = []
    min_write = min(ram.write_widths) if ram.write_widths else 0
    byte_width = max((w for w in ram.widths if ram.byte and w <= ram.byte), default=0)
    emu = 1 + (3 if memory.transparent else 0)
    if _read_first(memory, ram):
        emu += 3
    for index, unit in enumerate(ram.widths):
        if memory.writable and ram.write_widths:
            if unit > max(ram.write_widths):
                break            # the write port caps the unit width (memory_libmap stops)
            if unit < min_write and unit < byte_width:
                continue         # a narrower write than the port allows, and no byte lanes
        blocks = math.ceil(memory.depth / (1 << (ram.abits - index)))
        granule = 1 if not memory.writable else (min(ram.byte, unit) if ram.byte else unit)
        swizzle = math.ceil(memory.mapped_width / granule) * granule
        cells = math.ceil(blocks * swizzle / unit)
        cost = ram.cost * cells + 0.5 * (blocks - 1) * memory.mapped_width + _EMU_WEIGHT * emu
        if memory.writable and blocks > 1:
            cost += 0.5 * blocks
        options.append((cost, cells, blocks, unit))
    return options


def _read_first(memory: MemoryShape, ram: RamPrimitive) -> bool:
    """Whether Yosys emulates read-before-write for ``memory`` on ``ram``: a RAM whose
    non-transparent read may meet a write, on a block RAM (LUT RAM reads asynchronously,
    so its read register gives the old word anyway)."""
    return (memory.writable and not memory.transparent and not memory.collision_free
            and not ram.distributed)


@lru_cache(maxsize=None)
def map_memory(memory: MemoryShape, family: Family) -> MemoryMapping:
    """Yosys' choice for ``memory`` on ``family`` and its cost (see the module docstring)."""
    logic_cost = int(memory.bits * (1.0 if memory.writable else 1.0 / 16))
    best = None
    rams = list(family.block_rams)
    if family.lut_ram is not None and memory.writable:
        rams.append(family.lut_ram)
    if family.lut_ram_forced(memory):
        rams, logic_cost = [family.lut_ram], math.inf
    for ram in rams:
        for cost, cells, blocks, unit in _block_options(memory, ram):
            if best is None or cost < best[0]:
                best = (cost, cells, blocks, unit, ram)
    if best is None or not best[0] < logic_cost:
        reason = (f"soft logic costs {logic_cost} (1 per RAM bit, 1/16 per ROM bit)"
                  + (f", less than {best[4].cell} at {best[0]:.0f}" if best else ""))
        return MemoryMapping(memory, "logic", 0, "", _logic_memory(memory, family), reason)
    cost, cells, blocks, unit, ram = best
    depth = 1 << (ram.abits - ram.widths.index(unit))
    reason = (f"{ram.cell} {depth}x{unit} costs {cost:.0f}, soft logic {logic_cost}"
              if logic_cost != math.inf else
              f"{ram.cell}: a RAM of at most {family.lut_ram_limits[0]} words of "
              f"{family.lut_ram_limits[1]} bits is built as LUT RAM (ram_style)")
    # the read mux across address blocks and the write-enable decoder (measured on FIFOs)
    glue = family.cells(family.block_mux_luts * (blocks - 1) * memory.mapped_width
                        + (3 * blocks if blocks > 1 else 0), 0)
    if memory.transparent:   # address compare, bypass register and mux
        glue = glue + family.cells(memory.mapped_width + 8, memory.mapped_width + 1)
    if _read_first(memory, ram):   # the written word and address, compare and mux
        glue = glue + family.cells(3 * memory.mapped_width + 20, 2 * memory.mapped_width + 10)
    if ram.distributed:      # the synchronous read becomes an output register
        resources = family.cells(cells * family.lut_ram_cells, memory.mapped_width) + glue
        return MemoryMapping(memory, "distributed", cells, f"{depth}x{unit}", resources, reason)
    return MemoryMapping(memory, "block", cells, f"{depth}x{unit}",
                         Resources(brams=cells) + glue, reason)


def _logic_memory(memory: MemoryShape, family: Family) -> Resources:
    """A memory as logic: a ROM is a LUT function per output bit (one LUT4 per 16 words,
    wide muxes joining them); a RAM is a flip-flop per bit, a read mux and a write
    decoder. Both keep the read register."""
    if memory.writable:
        luts = 0.5 * memory.mapped_width * (memory.depth - 1) + memory.depth
        ffs = memory.bits + memory.mapped_width
    else:
        # 16 words per LUT4, then 2:1 muxes joining them (PFUMX / L6MUX on the ECP5)
        luts = memory.mapped_width * (1.375 * math.ceil(memory.depth / 16) - 0.375)
        ffs = memory.mapped_width
    return family.cells(luts, ffs)


# -- kernels ------------------------------------------------------------------------------


@dataclass
class KernelCost:
    """What a kernel builds, before a family prices it.

    adder_bits : bits of adders, subtractors and comparators (carry chains).
    luts : other LUT logic (muxes, saturation, control).
    ffs : flip-flops outside memories.
    multipliers : ``(a, b)`` operand widths of each variable × variable product.
    memories : the kernel's memories.
    """

    adder_bits: float = 0.0
    luts: float = 0.0
    ffs: float = 0.0
    multipliers: list[tuple[int, int]] = field(default_factory=list)
    memories: list[MemoryShape] = field(default_factory=list)

    def price(self, family: Family) -> Resources:
        luts, dsps, adder_bits = self.luts, 0, self.adder_bits
        for a, b in self.multipliers:
            if family.dsp_width:
                # a signed a × b product: the measured block counts follow the magnitude
                # bits (24 × 20 → 4, 19 × 18 → 1, 7 × 20 → 2)
                tiles = (math.ceil((a - 1) / family.dsp_width)
                         * math.ceil((b - 1) / family.dsp_width))
                dsps += tiles
                adder_bits += (tiles - 1) * (a + b) / 2   # joining the partial products
            else:
                luts += family.soft_multiplier_luts * a * b
        logic = family.cells(luts + adder_bits, self.ffs) + Resources(dsps=dsps)
        return logic + sum_resources(map_memory(mem, family).resources for mem in self.memories)


def signed_width(values) -> int:
    """The smallest signed width holding every value of ``values`` (at least 2), as the
    kernels size their constant ROMs (``signed_width_of``)."""
    t = torch.as_tensor(values).to(torch.int64).reshape(-1)
    return signed_width_of(int(t.min()), int(t.max())) if t.numel() else MIN_WIDTH


def counter(n: int) -> KernelCost:
    """A counter over ``n`` values: its incrementer, compare and register."""
    bits = max(n - 1, 1).bit_length() if n > 1 else 0
    return KernelCost(adder_bits=bits, luts=bits / 2, ffs=bits)


def _varying_bits(values, lanes: int, width: int) -> int:
    """Bit columns of a ROM field laid out as ``constant_rom`` does (row ``r`` holds
    elements ``r·lanes … r·lanes + lanes − 1``) that differ between rows."""
    t = torch.as_tensor(values).to(torch.int64).reshape(-1, lanes)
    bits = (t.unsqueeze(-1) >> torch.arange(width)) & 1
    return int((bits.amax(0) != bits.amin(0)).sum())


def rom(name: str, rows: int, lanes: int, fields: list[tuple]) -> list[MemoryShape]:
    """A constant table of ``rows`` rows of ``(values, width)`` fields, ``lanes`` elements
    of each per row (one row: constants, no memory)."""
    if rows <= 1:
        return []
    width = lanes * sum(w for _, w in fields)
    varying = sum(_varying_bits(values, lanes, w) for values, w in fields)
    return [MemoryShape(name, width, rows, writable=False, varying=varying)]


def saturating(in_bits: int, out_bits: int, lanes: int) -> KernelCost:
    """``lanes`` clamps of an ``in_bits`` value to ``out_bits`` (two comparators against
    constants and two muxes per lane), or nothing when the value already fits."""
    if in_bits <= out_bits:
        return KernelCost()
    return KernelCost(adder_bits=lanes * in_bits / 2, luts=lanes * 2 * out_bits)


def plus(*parts: KernelCost) -> KernelCost:
    """The parts together (one kernel built of them)."""
    total = KernelCost()
    for p in parts:
        total.adder_bits += p.adder_bits
        total.luts += p.luts
        total.ffs += p.ffs
        total.multipliers += p.multipliers
        total.memories += p.memories
    return total


CONTROL_LUTS = 12   # handshake and stall logic of a kernel
CONTROL_FFS = 4     # valid and last registers


def control() -> KernelCost:
    """Every kernel's handshake, stall logic and valid / last registers."""
    return KernelCost(luts=CONTROL_LUTS, ffs=CONTROL_FFS)


# -- network plumbing -----------------------------------------------------------------


def fifo_memory(word_bits: int, depth: int) -> MemoryShape:
    """A ``StreamFIFO``'s memory: ``depth − 1`` words (its read register is the last place),
    reads never colliding with writes (``no_rw_check``)."""
    return MemoryShape("storage", word_bits, depth - 1, writable=True, collision_free=True)


def fifo_resources(word_bits: int, depth: int, family: Family) -> Resources:
    """A ``StreamFIFO`` of ``depth`` words: its memory, write and read pointers and a level
    counter."""
    pointer = max(depth - 1, 1).bit_length()
    control = KernelCost(adder_bits=3 * pointer, luts=7 * pointer + 4, ffs=3 * pointer + 2,
                         memories=[fifo_memory(word_bits, depth)])
    return control.price(family)


def converter_resources(word_bits_in: int, word_bits_out: int, family: Family) -> Resources:
    """A ``StreamWidthConverter``: a register of the wide word and a mux of the pieces."""
    wide, narrow = max(word_bits_in, word_bits_out), min(word_bits_in, word_bits_out)
    pieces = max(wide // max(narrow, 1), 1)
    return KernelCost(luts=narrow * (pieces - 1) / 2 + 8, ffs=wide + narrow + 8).price(family)


def fork_resources(outputs: int, family: Family) -> Resources:
    """A ``StreamFork``: one ``taken`` flag and a few gates per output."""
    return KernelCost(luts=3 * outputs + 2, ffs=outputs).price(family)


def argmax_resources(width: int, lanes: int, index_bits: int, family: Family) -> Resources:
    """The class ``ArgMax``: a comparator chain across the lanes and the best value."""
    return KernelCost(adder_bits=lanes * width, luts=lanes * (width + index_bits) / 2,
                      ffs=width + index_bits + 8).price(family)
