"""Instruction fields as slices of the fetched 32-bit words, from the encoding's field tables.

The RTL never repeats a bit position: every field is looked up in
``binaryvit.hw.engine.encoding.field_table`` (the table ``docs/engine.md`` prints), so a change
of the encoding changes the decoder with it.

The instruction header is not kept whole: :data:`HEADER_SLOTS` maps every field the core
uses to a shared register ("slot"); fields of different instructions that play the same
part (a MATMUL's, a MAC's and a WINDOW's source address, a MASK's query address; the derived
steps of a window's and a patch walk's pointers) share one, so the units read one register
instead of a multiplexer over the instruction classes, and the slot's load multiplexer
fills the logic cell its flip-flop sits in (:func:`load_slots`). A stage record is held
whole in a block RAM row; :data:`STAGE_SLOTS` names the same parts (a ``Store``'s and a
``Threshold``'s output address, …) and :func:`record_slots` selects each from the row by the
stage's opcode, without registers.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, Value

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.encoding import field_table
from binaryvit.hw.engine.isa import (
    Add, Affine, GroupAverage, Mac, Mask, MatMul, RPReLU, Store, Threshold, Window)

# slot: (width, None for an address, the fields it holds: (instruction, path)); no instruction
# has two fields in one slot. A field wider than its slot (a 24-bit address) keeps its low bits,
# a narrower one is sign- or zero-extended as the field is signed.
HEADER_SLOTS = {
    "src_address": (None, [(Window, "source.address"), (MatMul, "source.tensor.address"),
                           (Mac, "source.tensor.address"), (Mask, "queries.address")]),
    "src_kind": (2, [(Window, "source.kind"), (MatMul, "source.tensor.kind"),
                     (Mac, "source.tensor.kind")]),
    "src_cols": (16, [(MatMul, "source.tensor.cols"), (Mac, "source.tensor.cols")]),
    "channels": (16, [(Window, "source.cols"), (MatMul, "channels"), (Mac, "outputs")]),
    "tokens": (16, [(MatMul, "tokens"), (Mac, "tokens"), (Mask, "queries.rows")]),
    "pattern": (2, [(MatMul, "source.pattern"), (Mac, "source.pattern")]),
    "factor": (8, [(MatMul, "source.factor"), (Mac, "source.factor")]),
    "grid_w": (16, [(Window, "grid_w")]),
    "grid_h": (16, [(Window, "grid_h")]),
    "mode": (2, [(Window, "mode"), (MatMul, "mode")]),
    "kw": (4, [(Window, "kw")]),
    "stride": (4, [(Window, "stride")]),
    "pad_h": (4, [(Window, "pad_h")]),
    "pad_w": (4, [(Window, "pad_w")]),
    "mul": (18, [(Window, "mul"), (Mask, "theta")]),
    "shift": (6, [(Window, "shift"), (Mac, "shift"), (Mask, "theta_shift")]),
    "width": (6, [(Window, "width"), (Mac, "width")]),
    "heads": (8, [(MatMul, "heads"), (Mask, "heads")]),
    "w_address": (None, [(MatMul, "weights.address"), (Mac, "weights"),
                         (Mask, "keys.address")]),
    "aux_address": (None, [(Mac, "bias"), (Mask, "lut")]),
    "out_address": (None, [(Mask, "out.address")]),
    # derived fields (docs/engine.md): the walks' steps and loop ends
    "row_step": (None, [(Window, "row_step"), (MatMul, "line_step"), (Mac, "line_step")]),
    "origin_step": (None, [(Window, "stride_step"), (MatMul, "token_step"),
                           (Mac, "token_step")]),
    "line_step": (None, [(Window, "line_step"), (MatMul, "patch_line_step"),
                         (Mac, "patch_line_step")]),
    "offset": (None, [(Window, "pad_offset"), (MatMul, "head_step")]),
    "pitch": (None, [(MatMul, "pitch"), (Mac, "pitch"), (Mask, "key_pitch")]),
    "w_pitch": (16, [(MatMul, "w_pitch"), (Mask, "out_pitch")]),
    "last_x": (16, [(Window, "last_x"), (MatMul, "row_patches"), (Mac, "row_patches"),
                    (Mask, "head_bits")]),
    "last_y": (16, [(Window, "last_y"), (Mask, "query_pitch")]),
    "count": (16, [(Window, "taps_h"), (MatMul, "dot_length"), (Mask, "keys.rows")]),
}

# the same for a stage record (the opcode and length stay in their own register)
STAGE_SLOTS = {
    "params": (None, [(Affine, "params"), (RPReLU, "params"), (Threshold, "params")]),
    "address": (None, [(Add, "operand.tensor.address"), (Threshold, "out.address"),
                       (GroupAverage, "out.address"), (Store, "out.address")]),
    "kind": (2, [(Add, "operand.tensor.kind"), (Threshold, "out.kind"),
                 (GroupAverage, "out.kind"), (Store, "out.kind")]),
    "shift": (6, [(Affine, "shift"), (RPReLU, "shift"), (GroupAverage, "shift")]),
    "width": (6, [(Affine, "width"), (RPReLU, "width"), (Add, "width"),
                  (GroupAverage, "width")]),
    "cols": (16, [(Add, "operand.tensor.cols")]),
    "step": (16, [(Add, "step"), (Threshold, "step"), (GroupAverage, "step"), (Store, "step")]),
    "mul": (18, [(GroupAverage, "mul")]),
    "count": (8, [(GroupAverage, "group"), (Add, "operand.factor")]),
    "grid_w": (16, [(Add, "operand.grid_w")]),
    "pattern": (2, [(Add, "operand.pattern")]),
}


def _field(cls: type, path: str) -> tuple[int, int, int, bool]:
    """(word, lsb, bits, signed) of field ``path`` of record ``cls``, from the field table."""
    for name, word, lsb, bits, signed in field_table(cls):
        if name == path:
            return word, lsb, bits, signed
    raise ConfigError(f"{cls.__name__} has no field {path!r}")


def record_field(data: Value, cls: type, path: str) -> Value:
    """Field ``path`` of record ``cls`` held whole in ``data`` (its 32-bit words side by
    side), signed if the field is."""
    word, lsb, bits, signed = _field(cls, path)
    value = data[32 * word + lsb:32 * word + lsb + bits]
    return value.as_signed() if signed else value


def record_slots(m: Module, table: dict, data: Value, opcode: Value, address_bits: int,
                 prefix: str) -> dict:
    """A signal per slot of ``table`` driven (combinationally) from the record held whole
    in ``data``: the slot's field of the record whose opcode is ``opcode``; fields of
    several records at one position need no multiplexer."""
    slots = slot_registers(table, address_bits, prefix)
    for name, (_, fields) in table.items():
        groups: dict[tuple, tuple[Value, list[int]]] = {}      # by (word, lsb, bits, signed)
        for cls, path in fields:
            position = _field(cls, path)
            if position not in groups:
                groups[position] = (record_field(data, cls, path), [])
            groups[position][1].append(cls.OPCODE)
        with m.Switch(opcode):
            for i, (value, opcodes) in enumerate(groups.values()):
                with (m.Default() if i == len(groups) - 1 else m.Case(*opcodes)):
                    m.d.comb += slots[name].eq(value)
    return slots


def slot_registers(table: dict, address_bits: int, prefix: str) -> dict:
    """A register per slot of ``table`` (:data:`HEADER_SLOTS` or :data:`STAGE_SLOTS`),
    addresses ``address_bits`` wide."""
    return {name: Signal(address_bits if width is None else width, name=f"{prefix}_{name}")
            for name, (width, _) in table.items()}


def slot_field(slots: dict, table: dict, cls: type, path: str) -> Value:
    """The slot register holding field ``path`` of record ``cls`` (signed if the field is);
    ``slots`` maps the names of ``table`` to their registers."""
    for name, (_, fields) in table.items():
        if (cls, path) in fields:
            return slots[name].as_signed() if _field(cls, path)[3] else slots[name]
    raise ConfigError(f"{cls.__name__}.{path} has no slot")


def load_slots(m: Module, slots: dict, table: dict, word: Value, word_index: Value,
               opcode: Value) -> None:
    """Fill the slots from word ``word_index`` (``word``, 32 bits) of a record as it is
    read; ``opcode`` is the record's (registered from word 0; word 0 itself carries it in
    its low 4 bits)."""
    for name, (_, fields) in table.items():
        slot = slots[name]
        for cls, path in fields:
            index, lsb, bits, signed = _field(cls, path)
            value = word[lsb:lsb + bits]
            op = word[0:4] if index == 0 else opcode
            with m.If((word_index == index) & (op == cls.OPCODE)):
                m.d.sync += slot.eq(value.as_signed() if signed else value)


__all__ = ["HEADER_SLOTS", "STAGE_SLOTS", "load_slots", "record_field", "record_slots",
           "slot_field", "slot_registers"]
