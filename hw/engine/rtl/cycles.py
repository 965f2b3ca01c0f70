"""Busy cycles of the sequential engine core (:mod:`binaryvit.hw.engine.rtl.core`), exactly,
computed from the program (never from a run).

The core's loops do not depend on the data, so every instruction takes a fixed number of
cycles; this module counts them state by state (``docs/engine-rtl.md``, "Cycles"):

- every multiply: ``3 + shift`` from ``MULTIPLY`` on (``MULTIPLY``, ``ROUND``, then
  ``FINISH`` waits while the round-shift shifts one bit per cycle);
- fetch: 3 per 32-bit instruction word (two reads and the store into the instruction
  buffer, derived fields included); ``DISPATCH`` 1; ``INIT`` 1;
- per element (output token × channel) its source, then every stage, then 2 (the last
  ``STAGE`` check and ``NEXT_ELEMENT``): a WINDOW ``5 + 2·kh·kw + shift`` (``SUM``: shift
  0); an XNOR or context MATMUL ``2 + 5·words·f²`` (``words`` 16-bit words of one source
  row segment); a MAC ``7 + shift + K·6`` (``K·7`` for a wide input);
- per stage ``4 + gathered words + tail`` (its record is read from the stage-record memory
  while in ``STAGE``, no load walk): the tail is ``3 + shift`` for a multiply
  (``Affine``, ``RPReLU``, ``Add`` with shift 0), 2 for a bit read-modify-write
  (``Threshold``), one per stored word (``Store``), and for ``GroupAverage`` ``3 + shift``
  plus the group's stored words at its last channel;
- a ``MASK`` per head and query row: ``keys·(14 + 10·words) + 4 + θ shift`` (the exp-sum
  pass, the ``θ·Σ`` multiply, the compare pass);
- the program's ``HALT``: 3.
"""
from __future__ import annotations

from math import ceil

from binaryvit.hw.engine.encoding import instruction_words
from binaryvit.hw.engine.isa import (
    Add, Affine, GroupAverage, Instruction, Mac, Mask, MatMul, MatMulMode, Pattern,
    RPReLU, Store, TensorKind, Threshold, Window, WindowMode)
from binaryvit.hw.engine.program import Program

MULTIPLY_CYCLES = 3    # MULTIPLY, ROUND, FINISH; plus the shift
HALT_CYCLES = 3


def _stored_words(kind: TensorKind) -> int:
    return 2 if kind == TensorKind.WIDE else 1


def _stage_cycles(stage, outputs: int) -> int:
    """One stage's cycles summed over the ``outputs`` channels of one token."""
    base = 1 + 1 + 1 + 1          # STAGE, STAGE_STEP, GATHER's last cycle, COMPUTE
    if isinstance(stage, Affine):
        return outputs * (base + 3 + MULTIPLY_CYCLES + stage.shift + 1)
    if isinstance(stage, RPReLU):
        return outputs * (base + 6 + MULTIPLY_CYCLES + stage.shift + 1)
    if isinstance(stage, Add):
        return outputs * (base + _stored_words(stage.operand.tensor.kind) + MULTIPLY_CYCLES + 1)
    if isinstance(stage, Threshold):
        return outputs * (base + 3 + 2 + 1)
    if isinstance(stage, Store):
        return outputs * (base + _stored_words(stage.out.kind) + 1)
    if isinstance(stage, GroupAverage):
        return outputs * (base + MULTIPLY_CYCLES + stage.shift + 1) \
            + (outputs // stage.group) * _stored_words(stage.out.kind)
    raise TypeError(f"no cycle count for stage {type(stage).__name__}")


def instruction_core_cycles(instruction: Instruction) -> int:
    """Busy cycles of one instruction on the sequential core, fetch included."""
    cycles = 3 * instruction_words(instruction) + 1 + 1          # fetch, DISPATCH, INIT
    per_token_stages = 0
    if isinstance(instruction, Mask):
        d = instruction.queries.cols // instruction.heads
        words, keys = ceil(d / 16), instruction.keys.rows
        return cycles + instruction.heads * instruction.queries.rows * (
            keys * (14 + 10 * words) + 1 + MULTIPLY_CYCLES + instruction.theta_shift)
    n, tokens = instruction.outputs, instruction.tokens
    if isinstance(instruction, MatMul) and instruction.mode == MatMulMode.CONTEXT:
        n = instruction.weights.cols          # heads·d channels (``outputs`` is the keys)
    per_token_stages = sum(_stage_cycles(s, n) for s in instruction.stages) + 2 * n
    if isinstance(instruction, Window):
        kh, kw = (instruction.source.rows, 1) if instruction.mode == WindowMode.GLOBAL \
            else (instruction.kh, instruction.kw)
        shift = 0 if instruction.mode == WindowMode.SUM else instruction.shift
        source = n * (2 + 2 * kh * kw + MULTIPLY_CYCLES + shift)
    elif isinstance(instruction, MatMul):
        access = instruction.source
        f = access.factor if access.pattern == Pattern.PATCHES else 1
        words = ceil(access.tensor.cols / 16)
        source = n * (2 + 5 * words * f * f)
    elif isinstance(instruction, Mac):
        access = instruction.source
        f = access.factor if access.pattern == Pattern.PATCHES else 1
        per_product = (4 if access.tensor.kind == TensorKind.WIDE else 3) + MULTIPLY_CYCLES
        source = n * (4 + MULTIPLY_CYCLES + instruction.shift
                      + access.tensor.cols * f * f * per_product)
    else:
        raise TypeError(f"no cycle count for instruction {type(instruction).__name__}")
    return cycles + tokens * (source + per_token_stages)


def program_core_cycles(program: Program) -> int:
    """Busy cycles of one image: every instruction, then the ``HALT`` word's fetch."""
    return sum(instruction_core_cycles(i) for i in program.instructions) + HALT_CYCLES


__all__ = ["MULTIPLY_CYCLES", "instruction_core_cycles", "program_core_cycles"]
