"""The engine's cycle model: what each instruction keeps each unit and each bank busy.

An instruction streams its operands through decoupled units, so its cycles are those of its
busiest resource plus a fixed overhead (``EngineConfig.instruction_overhead``: fetch, decode,
pipeline fill and drain):

``cycles = max(array, vector, max over banks of words accessed) + overhead``

* **array** (``pe`` outputs × ``simd`` bits per cycle): MATMUL ``T·⌈K/simd⌉·⌈N/pe⌉``; context
  ``heads·T·⌈Tk/simd⌉·⌈d/pe⌉``; MASK ``heads·T·⌈d/simd⌉·⌈Tk/pe⌉`` for the scores, and its
  mask unit ``heads·T·(⌈Tk/pe⌉ + 1)`` (row sum, then the compare over the buffered row).
* **vector** (``vector_lanes`` values per cycle; an epilogue with ``m`` multiplying stages
  takes ``⌈m / lane_multipliers⌉`` cycles per value): ``⌈T·N / lanes⌉ · passes``; a WINDOW's
  adder ``⌈max(reads, T_out·C) / lanes⌉`` (an ``AVERAGE`` adds one multiplying pass); a MAC ``⌈T·N·K·w / multipliers⌉`` with
  ``w = 2`` for a wide input (two 16-bit halves per product).
* **banks** (one 16-bit word per cycle each): every operand word read once — a MATMUL's
  input bits enter the array's bit buffer once per token chunk that fits
  ``bit_buffer_bits`` (the weights are read once per chunk), a WINDOW reads each input value
  once (running sums along a 1-D window's direction, partial sums for a non-overlapping 2-D
  window) but ``kh·kw`` values per output for an overlapping 2-D window, a MAC each input once per token — every
  result word written once (bits gathered into whole words), every constant read once, and
  the instruction's own words (32-bit, two reads) fetched from the payload.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from binaryvit.hw.engine.config import EngineConfig
from binaryvit.hw.engine.encoding import instruction_words
from binaryvit.hw.engine.isa import (
    Add,
    Affine,
    GroupAverage,
    Instruction,
    Mac,
    Mask,
    MatMul,
    MatMulMode,
    RPReLU,
    Store,
    TensorKind,
    TensorRef,
    Threshold,
    Window,
    WindowMode,
)


@dataclass(frozen=True)
class InstructionCycles:
    """One instruction's demand on each unit, its cycles and its binary multiply-accumulates."""

    kind: str
    array: int
    vector: int
    bank_words: tuple[int, ...]
    cycles: int
    binary_macs: int


def _words(ref: TensorRef, config: EngineConfig) -> int:
    return ref.words(config.wide_words)


class _Traffic:
    def __init__(self, config: EngineConfig):
        self.config = config
        self.banks = [0] * len(config.banks)

    def add(self, address: int, words: int, accesses: int | None = None) -> None:
        """``accesses`` (default ``words``) accesses spread evenly over the ``words``
        consecutive words from ``address`` (split where they cross banks)."""
        c = self.config
        accesses = words if accesses is None else accesses
        end = address + words
        while address < end:
            bank = c.bank_of(address)
            top = min(end, c.bank_start(bank) + c.banks[bank].words)
            self.banks[bank] += ceil(accesses * (top - address) / words)
            address = top


def multiplying_stages(instruction: Instruction) -> int:
    return sum(1 for s in instruction.stages
               if isinstance(s, (Affine, RPReLU)) or (isinstance(s, GroupAverage) and s.mul != 1))


def constant_bits_per_value(instruction: Instruction, config: EngineConfig) -> int:
    """Bits of per-channel constants the epilogue reads for every value it processes (each
    stage reads its channel's constants in the same cycle): what the RTL's constant buffers
    must deliver per cycle per channel, e.g. 16 + 32 for an ``Affine``."""
    wide = config.wide_bits
    bits = 0
    for s in instruction.stages:
        if isinstance(s, Affine):
            bits += 16 + wide
        elif isinstance(s, RPReLU):
            bits += 2 * 16 + 2 * wide
        elif isinstance(s, Threshold):
            bits += wide + 1
    return bits


def _stage_traffic(instruction: Instruction, tokens: int, n: int, t: _Traffic,
                   config: EngineConfig) -> None:
    wide = config.wide_words
    for s in instruction.stages:
        if isinstance(s, Affine):
            t.add(s.params, n * (1 + wide))
        elif isinstance(s, RPReLU):
            t.add(s.params, n * (2 + 2 * wide))
        elif isinstance(s, Add):
            ref = s.operand.tensor
            per = wide if ref.kind == TensorKind.WIDE else 1
            t.add(ref.address, _words(ref, config), tokens * n * per)
        elif isinstance(s, Threshold):
            t.add(s.params, n * wide + ceil(n / 16))
            t.add(s.out.address, _words(s.out, config))
        elif isinstance(s, (GroupAverage, Store)):
            t.add(s.out.address, _words(s.out, config))


def instruction_cycles(instruction: Instruction, config: EngineConfig,
                       fetch_address: int) -> InstructionCycles:
    """The cycle model of one instruction fetched from word ``fetch_address``."""
    c = config
    t = _Traffic(c)
    t.add(fetch_address, 2 * instruction_words(instruction))
    array = vector = macs = 0
    lanes = c.vector_lanes
    passes = max(1, ceil(multiplying_stages(instruction) / c.lane_multipliers))
    if isinstance(instruction, MatMul):
        src = instruction.source.tensor
        n, tokens = instruction.outputs, instruction.tokens
        if instruction.mode == MatMulMode.CONTEXT:
            n = instruction.weights.cols        # heads·d channels (``outputs`` is the keys)
        if instruction.mode == MatMulMode.XNOR:
            k = instruction.weights.cols
            chunk = max(1, c.bit_buffer_bits // k)
            t.add(src.address, _words(src, c))
            weight_words = _words(instruction.weights, c)
            t.add(instruction.weights.address, weight_words, ceil(tokens / chunk) * weight_words)
            array = tokens * ceil(k / c.simd) * ceil(n / c.pe)
            macs = tokens * k * n
        else:
            heads, keys = instruction.heads, instruction.weights.rows
            d = n // heads
            t.add(src.address, _words(src, c))
            t.add(instruction.weights.address, _words(instruction.weights, c))
            array = heads * tokens * ceil(keys / c.simd) * ceil(d / c.pe)
            macs = tokens * keys * n
        vector = ceil(tokens * n / lanes) * passes
        _stage_traffic(instruction, tokens, n, t, c)
    elif isinstance(instruction, Mask):
        q, k, heads = instruction.queries, instruction.keys, instruction.heads
        d = q.cols // heads
        t.add(q.address, _words(q, c))
        t.add(k.address, _words(k, c))
        t.add(instruction.lut, (d + 1) * c.wide_words)
        t.add(instruction.out.address, _words(instruction.out, c))
        array = max(heads * q.rows * ceil(d / c.simd) * ceil(k.rows / c.pe),
                    heads * q.rows * (ceil(k.rows / c.pe) + 1))
        macs = heads * q.rows * k.rows * d
    elif isinstance(instruction, Window):
        src = instruction.source
        n, tokens = instruction.outputs, instruction.tokens
        w = instruction
        overlapping = w.mode != WindowMode.GLOBAL and w.kh > 1 and w.kw > 1 \
            and w.stride < max(w.kh, w.kw)
        reads = tokens * w.kh * w.kw * n if overlapping else _words(src, c)
        t.add(src.address, _words(src, c), reads)
        window = ceil(max(reads, tokens * n) / lanes)
        if instruction.mode == WindowMode.AVERAGE or (
                instruction.mode == WindowMode.GLOBAL and instruction.mul != 1):
            passes += 1
        vector = max(window, ceil(tokens * n / lanes) * passes)
        _stage_traffic(instruction, tokens, n, t, c)
    elif isinstance(instruction, Mac):
        src = instruction.source.tensor
        wide_input = src.kind == TensorKind.WIDE
        k = instruction.source.shape[1]
        n, tokens = instruction.outputs, instruction.tokens
        t.add(src.address, _words(src, c))
        t.add(instruction.weights, n * k)
        t.add(instruction.bias, n * c.wide_words)
        vector = max(ceil(tokens * n * k * (2 if wide_input else 1) / c.multipliers),
                     ceil(tokens * n / lanes) * passes)
        _stage_traffic(instruction, tokens, n, t, c)
    busiest = max(array, vector, max(t.banks))
    kind = type(instruction).__name__.upper()
    if isinstance(instruction, MatMul) and instruction.mode == MatMulMode.CONTEXT:
        kind = "MATMUL/CONTEXT"
    return InstructionCycles(kind, array, vector, tuple(t.banks),
                             busiest + c.instruction_overhead, macs)


__all__ = ["InstructionCycles", "instruction_cycles", "multiplying_stages",
           "constant_bits_per_value"]
