"""What crosses the engine's external memory port per image, and the stalls it costs.

For a compiled :class:`Program` whose memories are external (an SDRAM behind one port,
``ExternalMemory``), ``plan_traffic(program, memory, schedule)`` counts the bytes each
instruction moves across the port and adds memory stalls as a layer over the existing cycle
model (``Program.cycles``, from ``cycle_model.instruction_cycles``, is each instruction's
compute time; an instruction's transfers overlap its own compute, double-buffered, not other
instructions'):

``stall_i = max(0, ⌈bytes_i / (port bytes per cycle · efficiency)⌉ − cycles_i)``

Traffic classes: **weights** (the parameter payload: the program, every constant; each read
once per image, a MATMUL's weight bits once per token chunk of the array's bit buffer as the
cycle model assumes), **io** (the image the host writes and the instruction reads, the
logits written),
**residual** (activations one *unit* writes and a later unit reads: a unit is a transformer
block, a patch merge, the stem or the head) and **activations** (the others: written and
read inside one unit).

Schedules:

* ``layer``: every instruction reads each activation operand from the port and writes each
  result to it (each distinct tensor once per instruction).
* ``block``: a unit keeps its own activations (K/V included) in the on-chip buffer of
  ``ExternalMemory.on_chip_bytes``; a tensor crossing units is written once and read once by
  each later unit that uses it (held on chip from the unit's first use to its last). A unit
  whose live tensors exceed the buffer fails at compile time (CompileError naming the unit,
  the instruction at the peak, the bytes needed and available).
* ``fit``: ``block`` for the units whose tensors fit the buffer, ``layer`` for the others
  (what a board with less block RAM than the largest unit needs can run today).

Also refused in one line: a working set (payload and activations) larger than the external
memory, and a port narrower than one word of the chip's burst (the SDRAM cannot pause a
burst, so the port must take a whole word per cycle).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from math import ceil

from binaryvit.errors import CompileError
from binaryvit.hw.engine.config import WORD_BYTES
from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7, SdramChip
from binaryvit.hw.engine.isa import MatMul, MatMulMode, TensorRef
from binaryvit.hw.engine.program import Program

__all__ = ["ExternalMemory", "InstructionTraffic", "TrafficPlan", "plan_traffic", "unit_of",
           "check_port",
           "SCHEDULES", "ULX3S_SDRAM"]

SCHEDULES = ("layer", "block", "fit")
CLASSES = ("weights", "io", "residual", "activations")
_UNIT = re.compile(r"^(stages\.\d+\.(?:blocks\.\d+|merge)|[^.]+)")


@dataclass(frozen=True)
class ExternalMemory:
    """An external memory behind the engine's one memory port.

    ``chip``: the part (capacity, word width); ``port_bits``: the engine side's data width;
    ``burst_words``: words per burst (the controller's 8); ``clock_hz``: the port's clock;
    ``efficiency``: the fraction of the peak (one chip word per cycle) the controller
    sustains (measured: ``docs/engine-external-memory.md``); ``on_chip_bytes``: the
    activation buffer a ``block`` schedule keeps a unit's tensors in."""

    name: str = "ulx3s-sdram"
    chip: SdramChip = IS42S16160G_7
    port_bits: int = 16
    burst_words: int = 8
    clock_hz: float = 100e6
    efficiency: float = 0.87
    on_chip_bytes: int = 256 * 1024

    @property
    def bytes(self) -> int:
        return self.chip.bytes

    @property
    def bytes_per_cycle(self) -> float:
        return self.chip.dq_bits / 8 * self.efficiency


@dataclass
class InstructionTraffic:
    """One instruction: its unit, compute cycles, bytes per class, memory and stall cycles."""

    label: str
    unit: str
    compute: int
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    memory: int = 0
    stall: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


@dataclass
class TrafficPlan:
    """Per-image traffic of one schedule: per instruction, per class, totals; each unit's
    peak on-chip bytes were it fused (``unit_peak_bytes``) and the units that are
    (``fused_units``: none for ``layer``, all for ``block``)."""

    schedule: str
    memory: ExternalMemory
    instructions: list[InstructionTraffic]
    unit_peak_bytes: dict[str, int]
    fused_units: list[str]

    def bytes_by_class(self) -> dict[str, int]:
        return {k: sum(t.bytes[k] for t in self.instructions) for k in CLASSES}

    @property
    def total_bytes(self) -> int:
        return sum(t.total_bytes for t in self.instructions)

    @property
    def compute_cycles(self) -> int:
        return sum(t.compute for t in self.instructions)

    @property
    def stall_cycles(self) -> int:
        return sum(t.stall for t in self.instructions)

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    def images_per_second(self, clock_hz: float | None = None) -> float:
        return (clock_hz or self.memory.clock_hz) / self.cycles

    def bandwidth_fraction(self) -> float:
        """Bytes moved per cycle over the port's peak (one chip word per cycle)."""
        return self.total_bytes / (self.cycles * self.memory.chip.dq_bits / 8)


def unit_of(label: str) -> str:
    """The unit an instruction belongs to: ``stages.S.blocks.B``, ``stages.S.merge``, or
    the label's first component (``stem``, ``head``, ``classifier``)."""
    return _UNIT.match(label).group(1)


def _operands(obj, out: list, written: bool = False) -> None:
    """Every ``(TensorRef, written)`` and ``(int address, False)`` of a constant field
    in an instruction, depth first."""
    if isinstance(obj, TensorRef):
        out.append((obj, written))
        return
    if is_dataclass(obj):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("params", "weights", "bias", "lut") and isinstance(value, int):
                out.append((value, False))
            else:
                _operands(value, out, written or f.name == "out")
    elif isinstance(obj, tuple):
        for item in obj:
            _operands(item, out, written)


def check_port(memory: ExternalMemory) -> None:
    """CompileError unless the port takes a whole chip word per cycle."""
    chip_bits = memory.chip.dq_bits
    if memory.port_bits < chip_bits:
        raise CompileError(
            f"external memory {memory.name!r}: the port is {memory.port_bits} bits wide but a "
            f"burst of the {memory.chip.name} delivers a {chip_bits}-bit word every cycle "
            f"({memory.burst_words} words, {memory.burst_words * chip_bits // 8} bytes) and "
            f"cannot pause; the port needs at least {chip_bits} bits")


def _check_memory(program: Program, memory: ExternalMemory) -> None:
    check_port(memory)
    need = program.payload_bytes + program.activation_bytes()
    if need > memory.bytes:
        raise CompileError(
            f"the working set needs {need} bytes (parameter payload {program.payload_bytes}, "
            f"activations at their peak {program.activation_bytes()}) but external memory "
            f"{memory.name!r} ({memory.chip.name}) has {memory.bytes} bytes")


def plan_traffic(program: Program, memory: ExternalMemory = ExternalMemory(),
                 schedule: str = "block") -> TrafficPlan:
    """The per-image traffic of ``program`` under ``schedule`` (module docstring);
    CompileError when the memory, its port or the on-chip buffer cannot serve it."""
    if schedule not in SCHEDULES:
        raise CompileError(f"schedule must be one of {SCHEDULES}, not {schedule!r}")
    _check_memory(program, memory)
    config = program.config
    wide = config.wide_words
    regions = {r.address: r for r in program.regions}
    placements = program.tensors
    size = {p.name: p.ref.words(wide) * WORD_BYTES for p in placements}

    def placement(ref: TensorRef, i: int):
        for p in placements:
            if p.ref == ref and p.first <= i <= max(p.last, p.first):
                return p.name
        for p in placements:                         # the input is live before instruction 0
            if p.ref == ref:
                return p.name
        raise CompileError(f"instruction {program.labels[i]!r}: operand at word "
                           f"{ref.address} is neither a constant nor a placed tensor")

    units = [unit_of(label) for label in program.labels]
    rows = [InstructionTraffic(label, units[i], c.cycles)
            for i, (label, c) in enumerate(zip(program.labels, program.cycles))]
    reads: list[set[str]] = []
    writes: list[set[str]] = []
    for i, ins in enumerate(program.instructions):
        found: list = []
        _operands(ins, found)
        r, w, constants = set(), set(), set()
        for item, written in found:
            address = item if isinstance(item, int) else item.address
            if address in regions:
                constants.add(address)
            elif written:
                w.add(placement(item, i))
            else:
                r.add(placement(item, i))
        reads.append(r)
        writes.append(w)
        row = rows[i]
        row.bytes["weights"] += sum(regions[a].words for a in constants) * WORD_BYTES
        if isinstance(ins, MatMul) and ins.mode == MatMulMode.XNOR:
            k = ins.weights.cols
            chunks = ceil(ins.tokens / max(1, config.bit_buffer_bits // k))
            row.bytes["weights"] += (chunks - 1) * ins.weights.words(wide) * WORD_BYTES
    rows[0].bytes["weights"] += regions[program.program_address].words * WORD_BYTES

    writer = {name: i for i, ws in enumerate(writes) for name in ws}
    readers: dict[str, list[int]] = {}
    for i, rs in enumerate(reads):
        for name in rs:
            readers.setdefault(name, []).append(i)
    crossing = {name for name, users in readers.items()
                if any(units[u] != units[writer.get(name, u)] for u in users)}
    crossing.add("input")
    output = next(p.name for p in placements if p.ref == program.output)

    def kind(name: str) -> str:
        return "io" if name in ("input", output) else "residual" if name in crossing \
            else "activations"

    rows[0].bytes["io"] += size["input"]                         # the host writes the image
    peaks = _unit_peaks(program, units, reads, writes, size)
    if schedule == "block":
        for unit, (peak, at) in peaks.items():
            if peak > memory.on_chip_bytes:
                raise CompileError(
                    f"schedule 'block': unit {unit!r} keeps {peak} bytes of tensors on chip "
                    f"at instruction {program.labels[at]!r} but the on-chip buffer of "
                    f"{memory.name!r} holds {memory.on_chip_bytes} bytes")
    fused = {u for u, (peak, _) in peaks.items()
             if schedule == "block" or (schedule == "fit" and peak <= memory.on_chip_bytes)}
    loaded: set[tuple[str, str]] = set()
    for i in range(len(rows)):
        if units[i] not in fused:
            for name in reads[i] | writes[i]:
                rows[i].bytes[kind(name)] += size[name]
            continue
        for name in writes[i]:
            if name in crossing or name == output:
                rows[i].bytes[kind(name)] += size[name]
        for name in reads[i]:
            if name in crossing and (units[i], name) not in loaded:
                loaded.add((units[i], name))
                rows[i].bytes[kind(name)] += size[name]
    for row in rows:
        row.memory = ceil(row.total_bytes / memory.bytes_per_cycle)
        row.stall = max(0, row.memory - row.compute)
    return TrafficPlan(schedule, memory, rows, {u: p for u, (p, _) in peaks.items()},
                       sorted(fused, key=units.index))


def _unit_peaks(program: Program, units: list[str], reads, writes, size) \
        -> dict[str, tuple[int, int]]:
    """Per unit, the most bytes of tensors on chip at once and the instruction where: a
    tensor is on chip in a unit from its first use there (write or read) to its last."""
    spans: dict[tuple[str, str], list[int]] = {}
    for i in range(len(units)):
        for name in reads[i] | writes[i]:
            span = spans.setdefault((units[i], name), [i, i])
            span[1] = i
    peaks: dict[str, tuple[int, int]] = {}
    for i, unit in enumerate(units):
        live = sum(size[name] for (u, name), (a, b) in spans.items() if u == unit and a <= i <= b)
        if live > peaks.get(unit, (-1, 0))[0]:
            peaks[unit] = (live, i)
    return peaks
