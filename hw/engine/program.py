"""A compiled engine program: instructions, their encoding, the memory plan and the cycles."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binaryvit.hw.engine.config import WORD_BYTES, EngineConfig
from binaryvit.hw.engine.cycle_model import InstructionCycles
from binaryvit.hw.engine.encoding import instruction_words
from binaryvit.hw.engine.isa import Instruction, Pattern, TensorRef


@dataclass(frozen=True)
class PayloadRegion:
    """``words`` words of the parameter payload at word ``address`` (``program`` is the
    encoded instructions; the others are one step's constants)."""

    name: str
    address: int
    words: int


@dataclass(frozen=True)
class PayloadSegment:
    """The payload words bank ``bank`` holds: ``words`` words from word ``address`` up to the
    bank's last word. The payload image is the segments' words in bank order."""

    bank: int
    address: int
    words: int


@dataclass(frozen=True)
class TensorPlacement:
    """An activation tensor in memory, live from instruction ``first`` to ``last``
    (``-1``: written by the host before the program starts)."""

    name: str
    ref: TensorRef
    bank: int
    first: int
    last: int


@dataclass
class Program:
    """What the compiler produces for one integer model and one engine.

    The engine's memories form one word-address space (``config.banks`` in order). The
    parameter payload (``payload``: the encoded program and every constant, ``regions``)
    is split into one segment per bank at the top of that bank (``segments``, in bank
    order; ``payload`` is their words concatenated); activations are placed below. The host writes the image into ``input`` (``STREAM [H·W, C]``, channels of a
    pixel together, rows of pixels in raster order) and reads the logits from ``output``
    (``WIDE [1, classes]``). ``cycles[i]`` is the cycle model of ``instructions[i]``.
    """

    config: EngineConfig
    instructions: list[Instruction]
    labels: list[str]
    words: list[int]
    payload: np.ndarray
    segments: list[PayloadSegment]
    regions: list[PayloadRegion]
    tensors: list[TensorPlacement]
    input: TensorRef
    output: TensorRef
    cycles: list[InstructionCycles]

    @property
    def program_address(self) -> int:
        """Word address of the first instruction."""
        return next(r.address for r in self.regions if r.name == "program")

    def segment_words(self) -> list[tuple[int, np.ndarray]]:
        """``(address, words)`` of every payload segment: what the loader writes where."""
        out, at = [], 0
        for s in self.segments:
            out.append((s.address, self.payload[at:at + s.words]))
            at += s.words
        return out

    @property
    def total_cycles(self) -> int:
        return sum(c.cycles for c in self.cycles)

    @property
    def payload_bytes(self) -> int:
        return len(self.payload) * WORD_BYTES

    def activation_bytes(self) -> int:
        """Bytes of the address space the activations occupy at their peak (per bank, the
        highest word any placed tensor reaches, summed over banks)."""
        c = self.config
        top = [0] * len(c.banks)
        for t in self.tensors:
            end = t.ref.address + t.ref.words(c.wide_words) - c.bank_start(t.bank)
            top[t.bank] = max(top[t.bank], end)
        return sum(top) * WORD_BYTES

    @property
    def memory_bytes(self) -> int:
        return self.config.total_words * WORD_BYTES

    def listing(self) -> list[str]:
        """One line per instruction: fetch address, class, cycles, the step it starts from
        and its epilogue stages (what an RTL waveform is compared against)."""
        lines, pc = [], self.program_address
        for ins, label, cyc in zip(self.instructions, self.labels, self.cycles):
            stages = " > ".join(_stage_text(s) for s in ins.stages)
            lines.append(f"{pc:6d} {cyc.kind:14s} {cyc.cycles:7d}  {label}"
                         + (f"  | {stages}" if stages else ""))
            pc += 2 * instruction_words(ins)
        return lines

    def describe(self) -> dict:
        """JSON-ready summary: the memory plan, the payload's segments and regions, every
        tensor's placement and every instruction's cycles (for manifests and reports)."""
        wide = self.config.wide_words
        return {
            "engine": self.config.name,
            "instructions": len(self.instructions),
            "program_words": len(self.words),
            "cycles_per_image": self.total_cycles,
            "payload_bytes": self.payload_bytes,
            "activation_bytes": self.activation_bytes(),
            "memory_bytes": self.memory_bytes,
            "segments": [{"bank": self.config.banks[s.bank].name, "address": s.address,
                          "words": s.words} for s in self.segments],
            "regions": [{"name": r.name, "address": r.address, "words": r.words}
                        for r in self.regions],
            "tensors": [{"name": t.name, "kind": t.ref.kind.name, "shape": [t.ref.rows, t.ref.cols],
                         "address": t.ref.address, "words": t.ref.words(wide),
                         "bank": self.config.banks[t.bank].name, "live": [t.first, t.last]}
                        for t in self.tensors],
            "input": {"address": self.input.address, "shape": [self.input.rows, self.input.cols]},
            "output": {"address": self.output.address, "shape": [self.output.rows, self.output.cols]},
            "cycles": [{"label": label, "class": c.kind, "cycles": c.cycles, "array": c.array,
                        "vector": c.vector, "bank_words": list(c.bank_words)}
                       for label, c in zip(self.labels, self.cycles)],
        }


def _stage_text(stage) -> str:
    name = type(stage).__name__
    out = getattr(stage, "out", None)
    if out is not None:
        return f"{name}->{out.kind.name}@{out.address}"
    operand = getattr(stage, "operand", None)
    if operand is not None:
        pattern = "" if operand.pattern == Pattern.IDENTITY else f" {operand.pattern.name}"
        return f"{name}({operand.tensor.address}{pattern})"
    return name


__all__ = ["Program", "PayloadRegion", "PayloadSegment", "TensorPlacement"]
