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
* ``tile``: ``block`` for the units that fit; each other unit runs in **token tiles** of
  ``R`` rows of its ``H × H`` token grid (the largest ``R`` that fits). Pass 1 runs
  the instructions that produce the attention's keys and values (``MASK.keys``, the
  ``CONTEXT`` values, and what they are computed from inside the unit) over every tile and
  keeps their results whole on chip; pass 2 runs the rest tile by tile. On chip: every
  other tensor's slice (``R/H`` of it), the whole K/V-chain tensors, and a line buffer of
  ``kh − stride`` source rows for each overlapping window (the 3×1 and 5×1 pools: tiles go
  top to bottom, a window's last rows wait for the next tile, so halos are never re-read)
  and one output row of partial sums for each strided one (the spatial reduction's 8×8).
  Across the port: each crossing tensor written once and read once per pass that reads
  it (a residual read by both passes crosses twice); every instruction that touches a
  tiled tensor runs once per tile and pays the instruction overhead each time. The unit's
  weights and constants stay on chip for all its tiles when a tile fits beside them (the
  largest such tile; they then cross once, without the cycle model's per-chunk re-reads);
  otherwise each run reads its own again. A constant with a row per token (the position
  embeddings) is read a slice per tile: once in all. A unit no tile fits (not even the smallest) fails at
  compile time like ``block``.

Also refused in one line: a working set (payload and activations) larger than the external
memory, and a port narrower than one word of the chip's burst (the SDRAM cannot pause a
burst, so the port must take a whole word per cycle).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from math import ceil

from binaryvit.errors import CompileError
from binaryvit.hw.engine.config import WORD_BYTES, EngineConfig
from binaryvit.hw.engine.cycle_model import instruction_cycles
from binaryvit.hw.engine.encoding import instruction_words
from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7, SdramChip
from binaryvit.hw.engine.isa import Mask, MatMul, MatMulMode, TensorRef, Window, WindowMode
from binaryvit.hw.engine.program import Program

__all__ = ["ExternalMemory", "InstructionTraffic", "TileChoice", "TrafficPlan", "plan_traffic",
           "unit_of",
           "check_port",
           "SCHEDULES", "wide_buffer_cycles"]

SCHEDULES = ("layer", "block", "fit", "tile")
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
    (``fused_units``: none for ``layer``, all for ``block``); for ``tile``, the tiled units'
    ``tiles`` (unit: ``TileChoice``)."""

    schedule: str
    memory: ExternalMemory
    instructions: list[InstructionTraffic]
    unit_peak_bytes: dict[str, int]
    fused_units: list[str]
    tiles: dict[str, "TileChoice"] = field(default_factory=dict)

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


@dataclass(frozen=True)
class TileChoice:
    """A tiled unit: ``rows`` token rows per tile of its ``grid``-row grid, ``tiles`` of
    them, ``need`` bytes on chip at the peak, the K/V pass's instructions (``pass1``);
    ``weights_held``: the unit's weights and constants stay on chip for all its tiles
    (counted in ``need``) and cross the port once."""

    rows: int
    grid: int
    tiles: int
    need: int
    pass1: tuple[int, ...]
    weights_held: bool


def plan_traffic(program: Program, memory: ExternalMemory = ExternalMemory(),
                 schedule: str = "block", compute: list[int] | None = None) -> TrafficPlan:
    """The per-image traffic of ``program`` under ``schedule`` (module docstring);
    CompileError when the memory, its port or the on-chip buffer cannot serve it.
    ``compute``: each instruction's compute cycles (default the cycle model's,
    ``program.cycles``), e.g. those of wider on-chip buffers (``wide_buffer_cycles``)."""
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
    compute = compute or [c.cycles for c in program.cycles]
    rows = [InstructionTraffic(label, units[i], compute[i])
            for i, label in enumerate(program.labels)]
    weight_reads: dict[int, tuple[int, int, int]] = {}   # XNOR: bytes, tokens, chunk tokens
    params: list[int] = []                               # constant bytes, each read once
    token_constants: list[int] = []                      # constants a tile reads a slice of
    reads: list[set[str]] = []
    writes: list[set[str]] = []
    for i, ins in enumerate(program.instructions):
        found: list = []
        _operands(ins, found)
        r, w, constants, per_token = set(), set(), set(), set()
        tokens = getattr(ins, "tokens", None)
        for item, written in found:
            address = item if isinstance(item, int) else item.address
            if address in regions and isinstance(item, TensorRef) and tokens is not None \
                    and item.rows == tokens and item != getattr(ins, "weights", None):
                per_token.add(address)       # a row per token (position embeddings)
            elif address in regions:
                constants.add(address)
            elif written:
                w.add(placement(item, i))
            else:
                r.add(placement(item, i))
        reads.append(r)
        writes.append(w)
        row = rows[i]
        params.append(sum(regions[a].words for a in constants) * WORD_BYTES)
        row.bytes["weights"] += params[i]
        token_constants.append(sum(regions[a].words for a in per_token) * WORD_BYTES)
        if isinstance(ins, MatMul) and ins.mode == MatMulMode.XNOR:
            k = ins.weights.cols
            chunk = max(1, config.bit_buffer_bits // k)
            weight_reads[i] = (ins.weights.words(wide) * WORD_BYTES, ins.tokens, chunk)
            row.bytes["weights"] += (ceil(ins.tokens / chunk) - 1) * weight_reads[i][0]

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
             if schedule == "block" or (schedule in ("fit", "tile")
                                        and peak <= memory.on_chip_bytes)}
    tiles: dict[str, TileChoice] = {}
    if schedule == "tile":
        for unit in peaks:
            if unit not in fused:
                tiles[unit] = _choose_tile(program, unit, units, reads, writes, size,
                                           memory.on_chip_bytes, params, token_constants)
        fused |= set(tiles)
    loaded: set[tuple[str, str, int]] = set()
    for i in range(len(rows)):
        tile = tiles.get(units[i])
        if tile is not None:
            runs = tile.tiles if _touches_tiled(i, tile, writes, reads, units) else 1
            if runs > 1:
                rows[i].compute += (runs - 1) * config.instruction_overhead
            if tile.weights_held:
                rows[i].bytes["weights"] = params[i]
            elif runs > 1:
                constants = rows[i].bytes["weights"]
                if i in weight_reads:
                    once, tokens, chunk = weight_reads[i]
                    constants -= ceil(tokens / chunk) * once
                    per_run = ceil(ceil(tokens / tile.tiles) / chunk)
                    rows[i].bytes["weights"] = runs * (constants + per_run * once)
                else:
                    rows[i].bytes["weights"] = runs * constants
        if units[i] not in fused:
            for name in reads[i] | writes[i]:
                rows[i].bytes[kind(name)] += size[name]
            continue
        for name in writes[i]:
            if name in crossing or name == output:
                rows[i].bytes[kind(name)] += size[name]
        phase = 1 if tile is not None and i in tile.pass1 else 2
        for name in reads[i]:
            if name in crossing and (units[i], name, phase) not in loaded:
                loaded.add((units[i], name, phase))
                rows[i].bytes[kind(name)] += size[name]
    rows[0].bytes["weights"] += regions[program.program_address].words * WORD_BYTES
    for row, extra in zip(rows, token_constants):
        row.bytes["weights"] += extra
        row.memory = ceil(row.total_bytes / memory.bytes_per_cycle)
        row.stall = max(0, row.memory - row.compute)
    return TrafficPlan(schedule, memory, rows, {u: p for u, (p, _) in peaks.items()},
                       sorted(fused, key=units.index), tiles)


def _touches_tiled(i: int, tile: TileChoice, writes, reads, units) -> bool:
    """Whether instruction ``i`` of a tiled unit runs once per tile: it is in pass 2, or in
    pass 1 reading a tensor from outside the K/V chain (the tiled unit input)."""
    if i not in tile.pass1:
        return True
    chain = {n for j in tile.pass1 for n in writes[j]}
    return bool(reads[i] - chain)


def _choose_tile(program: Program, unit: str, units: list[str], reads, writes, size,
                 on_chip: int, params: list[int], token_constants: list[int]) -> TileChoice:
    """The largest tile of ``unit`` that fits ``on_chip`` bytes beside the unit's weights
    and constants, else the largest that fits without them (``tile`` schedule, module
    docstring); CompileError when none does."""
    members = [i for i, u in enumerate(units) if u == unit]
    written = writes[members[-1]]
    out_rows = max((p.ref.rows for p in program.tensors if p.name in written), default=0)
    grid = int(round(out_rows ** 0.5))
    if grid * grid != out_rows or grid < 2:
        raise CompileError(f"schedule 'tile': unit {unit!r} writes {out_rows} tokens, not a "
                           f"square grid to tile, and its tensors do not fit the on-chip "
                           f"buffer of {on_chip} bytes")
    # pass 1: what the keys and values are computed from inside the unit
    chain: set[str] = set()
    for i in members:
        ins = program.instructions[i]
        if isinstance(ins, Mask):
            chain |= {n for n in reads[i] if any(p.name == n and p.ref == ins.keys
                                                 for p in program.tensors)}
        elif isinstance(ins, MatMul) and ins.mode == MatMulMode.CONTEXT:
            chain |= {n for n in reads[i] if any(p.name == n and p.ref == ins.weights
                                                 for p in program.tensors)}
    pass1: set[int] = set()
    for i in reversed(members):
        if writes[i] & chain:
            pass1.add(i)
            chain |= {n for n in reads[i] if any(n in writes[j] for j in members)}
    whole = {n for i in pass1 for n in writes[i]}
    line = 0
    for i in members:
        ins = program.instructions[i]
        if isinstance(ins, Window) and ins.mode != WindowMode.GLOBAL:
            if ins.kh > ins.stride:
                source = next(iter(reads[i]))
                line += ceil(size[source] * (ins.kh - ins.stride) / ins.grid_h)
            elif ins.stride > 1:                     # one output row of partial sums
                line += max(ceil(size[n] / ins.out_grid[0]) for n in writes[i])
    order = sorted(pass1) + [i for i in members if i not in pass1]   # as executed
    spans: dict[str, list[int]] = {}
    for step, i in enumerate(order):
        for name in reads[i] | writes[i]:
            spans.setdefault(name, [step, step])[1] = step

    sliced = sum(token_constants[i] for i in members)

    def need(rows: int) -> int:
        return line + ceil(sliced * rows / grid) + max(
            sum(size[n] if n in whole else ceil(size[n] * rows / grid)
                for n, (a, b) in spans.items() if a <= step <= b)
            for step in range(len(order)))

    held = sum(params[i] for i in members)
    for extra in (held, 0):
        for rows in range(grid, 0, -1):
            if need(rows) + extra <= on_chip:
                return TileChoice(rows, grid, ceil(grid / rows), need(rows) + extra,
                                  tuple(sorted(pass1)), extra > 0)
    raise CompileError(f"schedule 'tile': unit {unit!r} needs {need(1)} bytes on chip even in "
                       f"tiles of one of its {grid} token rows but the on-chip buffer holds "
                       f"{on_chip} bytes")


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


def wide_buffer_cycles(program: Program, config: EngineConfig, words_per_cycle: int) \
        -> list[int]:
    """Each instruction's compute cycles on ``config`` (array, vector unit: the cycle
    model's ``instruction_cycles``, called as it is) when every bank moves
    ``words_per_cycle`` 16-bit words per cycle instead of one: on-chip buffers of block RAM
    side by side, each DP16KD giving two words per cycle in its 512 × 36 mode.
    ``max(array, vector, ⌈bank words / words_per_cycle⌉) + overhead``; a model, not RTL."""
    if words_per_cycle < 1:
        raise CompileError(f"words_per_cycle must be at least 1, got {words_per_cycle}")
    fetch, pc = [], program.program_address
    for ins in program.instructions:
        fetch.append(pc)
        pc += 2 * instruction_words(ins)
    out = []
    for ins, at in zip(program.instructions, fetch):
        c = instruction_cycles(ins, config, at)
        out.append(max(c.array, c.vector, ceil(max(c.bank_words) / words_per_cycle))
                   + config.instruction_overhead)
    return out
