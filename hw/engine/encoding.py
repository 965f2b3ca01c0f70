"""Binary encoding of engine programs: 32-bit words the sequencer fetches.

A program is a sequence of instructions ended by a ``HALT`` word (``0``). An instruction is
a header followed by its epilogue stages, each stage starting at a new word:

* instruction header, word 0: bits ``[3:0]`` opcode (``MatMul`` 1, ``Mask`` 2, ``Window`` 3,
  ``Mac`` 4), ``[11:4]`` the instruction's length in words (header and stages), ``[15:12]``
  the number of stages; its fields follow from bit 16.
* stage, word 0: bits ``[3:0]`` stage opcode (``Affine`` 1 … ``Store`` 6), ``[7:4]`` the
  stage's length in words; its fields follow from bit 8.

Fields are packed LSB-first in the order of the class's ``FIELDS`` (nested records inline),
then its ``DERIVED`` fields (computed by the record's ``derived(wide_words)``: the encoding
depends on the engine's ``wide_words``), or in the order of its ``LAYOUT`` (a stage record
puts the fields that several stages share at one place, so the core selects them without a
multiplexer); a field that would straddle a word boundary starts
the next word instead. Signed fields are two's complement. :func:`field_table` lists every
field's word, bit and width — the table ``docs/engine.md`` prints for the RTL. Decoding
checks every derived field against the record's fields.
"""
from __future__ import annotations

import typing
from dataclasses import fields as dataclass_fields
from enum import IntEnum
from functools import lru_cache
from typing import Iterable, Iterator

from binaryvit.errors import CompileError
from binaryvit.hw.engine.isa import HALT_OPCODE, INSTRUCTIONS, STAGES, Instruction, Stage

WORD = 32
INSTRUCTION_HEADER = (("opcode", 4), ("length", 8), ("stages", 4))
STAGE_HEADER = (("opcode", 4), ("length", 4))
_BY_OPCODE = {cls.OPCODE: cls for cls in INSTRUCTIONS}
_STAGE_BY_OPCODE = {cls.OPCODE: cls for cls in STAGES}


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, type]:
    return typing.get_type_hints(cls)


def _derived_fields(cls: type) -> list[tuple[str, int]]:
    return list(getattr(cls, "DERIVED", ()))


def _flat_fields(cls: type, prefix: str = "") -> list[tuple[str, int]]:
    """``(path, bits)`` of every scalar field of ``cls``, nested records expanded, in the
    order of its ``FIELDS`` then ``DERIVED``, or of its ``LAYOUT`` (every name once)."""
    specs = dict(cls.FIELDS) | dict(_derived_fields(cls))
    order = getattr(cls, "LAYOUT", None) or list(specs)
    if sorted(order) != sorted(specs):
        raise CompileError(f"{cls.__name__}.LAYOUT {list(order)} does not list each of its fields "
                           f"once: {list(specs)}")
    out = []
    for name, spec in ((name, specs[name]) for name in order):
        if isinstance(spec, int):
            out.append((prefix + name, spec))
        else:
            out.extend(_flat_fields(spec, f"{prefix}{name}."))
    return out


def _layout(header: tuple[tuple[str, int], ...], body: list[tuple[str, int]]) \
        -> list[tuple[str, int, int, int]]:
    """``(path, word, lsb, bits)`` for the header then the body fields (bits < 0: signed)."""
    placed, word, bit = [], 0, 0
    for path, bits in list(header) + body:
        width = abs(bits)
        if bit + width > WORD:
            word, bit = word + 1, 0
        placed.append((path, word, bit, bits))
        bit += width
    return placed


@lru_cache(maxsize=None)
def record_layout(cls: type) -> tuple[tuple[str, int, int, int], ...]:
    header = INSTRUCTION_HEADER if cls in INSTRUCTIONS else STAGE_HEADER
    return tuple(_layout(header, _flat_fields(cls)))


def record_words(cls: type) -> int:
    """Words one record of ``cls`` occupies (without its stages)."""
    return record_layout(cls)[-1][1] + 1


def instruction_words(instruction: Instruction) -> int:
    return record_words(type(instruction)) + sum(record_words(type(s)) for s in instruction.stages)


def field_table(cls: type) -> list[tuple[str, int, int, int, bool]]:
    """``(field, word, lsb, bits, signed)`` of every field of one record class."""
    return [(path, word, lsb, abs(bits), bits < 0) for path, word, lsb, bits in record_layout(cls)]


def field_tables_markdown() -> str:
    """Every record's field table as Markdown (``docs/engine.md`` carries this text)."""
    out = []
    for cls in INSTRUCTIONS + STAGES:
        kind = "instruction" if cls in INSTRUCTIONS else "stage"
        derived = {name for name, _ in _derived_fields(cls)}
        out.append(f"#### {cls.__name__} ({kind} opcode {cls.OPCODE}, {record_words(cls)} words)\n")
        out.append("| field | word | bits | signed | derived |")
        out.append("|---|---|---|---|---|")
        for name, word, lsb, bits, signed in field_table(cls):
            out.append(f"| `{name}` | {word} | [{lsb + bits - 1}:{lsb}] | "
                       f"{'yes' if signed else ''} | {'yes' if name in derived else ''} |")
        out.append("")
    return "\n".join(out)


def _get(obj, path: str) -> int:
    for part in path.split("."):
        obj = getattr(obj, part)
    return int(obj)


def _pack(cls: type, obj, header_values: dict[str, int]) -> list[int]:
    layout = record_layout(cls)
    words = [0] * record_words(cls)
    for path, word, lsb, bits in layout:
        value = header_values[path] if path in header_values else _get(obj, path)
        width = abs(bits)
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if bits < 0 else (0, (1 << width) - 1)
        if not lo <= value <= hi:
            raise CompileError(f"{cls.__name__}.{path} = {value} does not fit its {width}-bit "
                               f"{'signed ' if bits < 0 else ''}field")
        words[word] |= (value & ((1 << width) - 1)) << lsb
    return words


def _derived_values(record, wide_words: int, channels: int | None = None) -> dict[str, int]:
    """A record's derived fields (none for a record without ``DERIVED``); a stage's depend on
    its instruction's ``channels``."""
    if not _derived_fields(type(record)):
        return {}
    if channels is None:
        return record.derived(wide_words)
    return record.derived(wide_words, channels)


def encode_instruction(instruction: Instruction, wide_words: int) -> list[int]:
    """The words of one instruction and its stages, for an engine with ``wide_words``."""
    cls = type(instruction)
    length = instruction_words(instruction)
    if length >= 1 << 8 or len(instruction.stages) >= 1 << 4:
        raise CompileError(f"{cls.__name__} with {len(instruction.stages)} stages "
                           f"({length} words) exceeds the encoding's 15 stages / 255 words")
    words = _pack(cls, instruction, {"opcode": cls.OPCODE, "length": length,
                                     "stages": len(instruction.stages),
                                     **_derived_values(instruction, wide_words)})
    for stage in instruction.stages:
        scls = type(stage)
        words += _pack(scls, stage, {"opcode": scls.OPCODE, "length": record_words(scls),
                                     **_derived_values(stage, wide_words,
                                                       instruction.channels)})
    return words


def encode_program(instructions: Iterable[Instruction], wide_words: int) -> list[int]:
    """All instructions, then the ``HALT`` word."""
    words: list[int] = []
    for instruction in instructions:
        words += encode_instruction(instruction, wide_words)
    return words + [HALT_OPCODE]


def _unpack_fields(cls: type, words: list[int]) -> dict[str, int]:
    values = {}
    for path, word, lsb, bits in record_layout(cls):
        width = abs(bits)
        value = (words[word] >> lsb) & ((1 << width) - 1)
        if bits < 0 and value >> (width - 1):
            value -= 1 << width
        values[path] = value
    return values


def _build(cls: type, values: dict[str, int], prefix: str = "", extra: dict | None = None):
    hints = _hints(cls)
    kwargs = dict(extra or {})
    for name, spec in cls.FIELDS:
        if isinstance(spec, int):
            value = values[prefix + name]
            hint = hints[name]
            kwargs[name] = hint(value) if isinstance(hint, type) and issubclass(hint, IntEnum) \
                else value
        else:
            kwargs[name] = _build(spec, values, f"{prefix}{name}.")
    return cls(**kwargs)


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclass_fields(cls)}


def _checked(record, values: dict[str, int], wide_words: int, at: int,
             channels: int | None = None):
    """``record`` if its decoded derived ``values`` equal what its fields give (a stage's:
    with its instruction's ``channels``)."""
    for name, want in _derived_values(record, wide_words, channels).items():
        if values[name] != want:
            raise CompileError(f"word {at}: {type(record).__name__}.{name} = {values[name]}, "
                               f"but its fields give {want}")
    return record


def decode_instructions(words: list[int], wide_words: int, start: int = 0) \
        -> Iterator[tuple[int, Instruction]]:
    """``(address, instruction)`` from word ``start`` up to the ``HALT`` word; CompileError on
    an unknown opcode, a truncated program or a derived field that its record's fields do
    not give (for an engine with ``wide_words``)."""
    at = start
    while True:
        if at >= len(words):
            raise CompileError(f"program ends at word {at} without a HALT word")
        opcode = words[at] & 0xF
        if opcode == HALT_OPCODE:
            return
        cls = _BY_OPCODE.get(opcode)
        if cls is None:
            raise CompileError(f"word {at}: unknown instruction opcode {opcode}")
        length = (words[at] >> 4) & 0xFF
        n_stages = (words[at] >> 12) & 0xF
        body = words[at:at + length]
        if len(body) < length:
            raise CompileError(f"word {at}: {cls.__name__} of {length} words is truncated")
        values = _unpack_fields(cls, body)
        pos = record_words(cls)
        stages: list[tuple[Stage, dict[str, int], int]] = []
        for _ in range(n_stages):
            scls = _STAGE_BY_OPCODE.get(body[pos] & 0xF)
            if scls is None:
                raise CompileError(f"word {at + pos}: unknown stage opcode {body[pos] & 0xF}")
            stage_values = _unpack_fields(scls, body[pos:pos + record_words(scls)])
            stages.append((_build(scls, stage_values), stage_values, at + pos))
            pos += record_words(scls)
        extra = {"stages": tuple(s for s, _, _ in stages)} if "stages" in _field_names(cls) \
            else {}
        instruction = _checked(_build(cls, values, extra=extra), values, wide_words, at)
        for stage, stage_values, stage_at in stages:
            _checked(stage, stage_values, wide_words, stage_at, instruction.channels)
        yield at, instruction
        at += length


def decode_program(words: list[int], wide_words: int) -> list[Instruction]:
    return [instruction for _, instruction in decode_instructions(words, wide_words)]


__all__ = ["encode_instruction", "encode_program", "decode_program", "decode_instructions",
           "field_table", "field_tables_markdown", "record_words", "instruction_words"]
