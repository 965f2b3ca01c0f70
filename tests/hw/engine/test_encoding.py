"""The binary encoding: hand-computed words, encode/decode round trips of random
instructions at the limits of every field and of whole compiled programs, and refusals."""
import random
import typing
from enum import IntEnum
from pathlib import Path

import pytest

from binaryvit.errors import CompileError
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.encoding import (
    decode_program,
    encode_instruction,
    encode_program,
    field_table,
    field_tables_markdown,
    record_words,
)
from binaryvit.hw.engine.isa import (
    INSTRUCTIONS,
    STAGES,
    Mask,
    Pattern,
    Store,
    TensorKind,
    TensorRef,
    Window,
    WindowMode,
)
from engine_models import engine_quantized


def test_store_stage_words_by_hand():
    # stage header: opcode 6 in [3:0], length 3 in [7:4]; out.address fills [31:8];
    # word 1: kind [1:0], rows [17:2]; cols (16 bits) would straddle, so it starts word 2
    words = encode_instruction(Window(WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 1, 1),
                                      1, 1, 1, 1, 1, 0, 0, 1, 0, 0,
                                      (Store(TensorRef(0x123456, TensorKind.BITS, 5, 7)),)))
    assert words[-3:] == [6 | 3 << 4 | 0x123456 << 8, 2 | 5 << 2, 7]
    # instruction header: opcode 3, length 6 + 3 words, one stage
    assert words[0] & 0xFFFF == 3 | (6 + 3) << 4 | 1 << 12
    assert record_words(Window) == 6 and record_words(Store) == 3


def test_no_field_straddles_a_word():
    for cls in INSTRUCTIONS + STAGES:
        for name, word, lsb, bits, _ in field_table(cls):
            assert lsb + bits <= 32, (cls.__name__, name)


def _random_value(cls, rng: random.Random, extreme: bool):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, spec in cls.FIELDS:
        if isinstance(spec, int):
            hint = hints[name]
            if isinstance(hint, type) and issubclass(hint, IntEnum):
                kwargs[name] = rng.choice(list(hint))
                continue
            width = abs(spec)
            lo, hi = ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if spec < 0
                      else (0, (1 << width) - 1))
            kwargs[name] = rng.choice([lo, hi]) if extreme else rng.randint(lo, hi)
        else:
            kwargs[name] = _random_value(spec, rng, extreme)
    if "stages" in hints and cls is not Mask:
        kwargs["stages"] = tuple(_random_value(rng.choice(STAGES), rng, extreme)
                                 for _ in range(rng.randint(0, 15)))
    return cls(**kwargs)


@pytest.mark.parametrize("extreme", [False, True])
def test_random_instructions_round_trip(extreme):
    rng = random.Random(7 + extreme)
    program = [_random_value(rng.choice(INSTRUCTIONS), rng, extreme) for _ in range(300)]
    assert decode_program(encode_program(program)) == program


@pytest.mark.parametrize("name", ["micro", "tiny-digits"])
def test_compiled_programs_round_trip(name):
    program = compile_intmodel(engine_quantized(name).intmodel)
    assert decode_program(program.words) == program.instructions
    assert program.words[-1] == 0 and len(program.words) == \
        next(r.words for r in program.regions if r.name == "program") // 2


def test_a_value_too_wide_for_its_field_is_refused():
    window = Window(WindowMode.SUM, TensorRef(1 << 24, TensorKind.STREAM, 1, 1),
                    1, 1, 1, 1, 1, 0, 0, 1, 0, 0, ())
    with pytest.raises(CompileError, match=r"Window.source.address = 16777216 .* 24-bit field"):
        encode_instruction(window)
    too_many = Window(WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 1, 1), 1, 1, 1, 1, 1,
                      0, 0, 1, 0, 0, (Store(TensorRef(0, TensorKind.STREAM, 1, 1)),) * 16)
    with pytest.raises(CompileError, match="16 stages"):
        encode_instruction(too_many)


def test_bad_words_are_refused():
    with pytest.raises(CompileError, match="unknown instruction opcode 9"):
        decode_program([9])
    with pytest.raises(CompileError, match="without a HALT"):
        decode_program(encode_instruction(Window(
            WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 1, 1), 1, 1, 1, 1, 1, 0, 0, 1, 0, 0,
            ())))
    assert Pattern.PATCHES == 3  # the encoding's 2-bit pattern field holds every pattern


def test_docs_carry_the_current_field_tables():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "engine.md").read_text()
    assert field_tables_markdown() in docs
