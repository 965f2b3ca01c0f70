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
    Access,
    Mac,
    Mask,
    MatMul,
    MatMulMode,
    Pattern,
    Store,
    TensorKind,
    TensorRef,
    Window,
    WindowMode,
)
from engine_models import engine_quantized


def test_store_stage_words_by_hand():
    # stage header: opcode 6 in [3:0], length 3 in [7:4]; its LAYOUT puts the derived step
    # (one word per value) in [23:8]; out.address (24 bits) would straddle, so it starts
    # word 1, kind [25:24]; cols would straddle after rows, so word 2 holds rows and cols
    words = encode_instruction(Window(WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 1, 1),
                                      1, 1, 1, 1, 1, 0, 0, 1, 0, 0,
                                      (Store(TensorRef(0x123456, TensorKind.BITS, 5, 7)),)), 2)
    assert words[-3:] == [6 | 3 << 4 | 1 << 8, 0x123456 | 2 << 24, 5 | 7 << 16]
    # instruction header: opcode 3, length 12 + 3 words, one stage
    assert words[0] & 0xFFFF == 3 | (12 + 3) << 4 | 1 << 12
    assert record_words(Window) == 12 and record_words(Store) == 3


def test_window_derived_fields_by_hand():
    # a 3 × 3 window, stride 2, padding 1 on a 5 × 7 grid of 4 channels: output 3 × 4;
    # after the source (words 4, 5), word 6: taps_h 3 [15:0], last_x 6 [31:16]; word 7: last_y
    # 4 [15:0]; then one 24-bit step per word: row_step 7·4, stride_step 2·4, line_step
    # 2·7·4, pad_offset (1·7 + 1)·4
    words = encode_instruction(Window(WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 35, 4),
                                      5, 7, 3, 3, 2, 1, 1, 1, 0, 0, ()), 2)
    assert words[6:] == [3 | 6 << 16, 4, 28, 8, 56, 32]
    words = encode_instruction(Window(WindowMode.GLOBAL, TensorRef(0, TensorKind.STREAM, 35, 4),
                                      35, 1, 1, 1, 1, 0, 0, 1, 0, 0, ()), 2)
    assert words[6:] == [35, 0, 4, 0, 0, 0]      # every source row one tap, one column


def test_patch_walk_derived_fields_by_hand():
    # a MAC over 2 × 2 patches of a 4 × 6 grid of WIDE 3-channel tokens (3 wide words each):
    # pitch 9, token_step 18, line_step 6·9, patch_line_step 2·6·9, 3 patches per row,
    # 6 output tokens
    mac = Mac(Access(TensorRef(0, TensorKind.WIDE, 24, 3), Pattern.PATCHES, 2, 4, 6),
              0, 0, 5, 0, 0, ())
    assert mac.derived(3) == {"tokens": 6, "row_patches": 3, "pitch": 9, "token_step": 18,
                              "line_step": 54, "patch_line_step": 108}
    context = MatMul(MatMulMode.CONTEXT, Access(TensorRef(0, TensorKind.BITS, 8, 20)),
                     TensorRef(0, TensorKind.BITS_T, 20, 6), 2, ())
    assert context.derived(2) == {"tokens": 4, "channels": 6, "dot_length": 20, "w_pitch": 2,
                                  "row_patches": 0, "pitch": 2, "token_step": 2, "line_step": 0,
                                  "patch_line_step": 0, "head_step": 8}


def test_a_layout_must_list_every_field_once():
    class Broken(Store):
        LAYOUT = ("out",)
    with pytest.raises(CompileError, match=r"Broken.LAYOUT \['out'\] does not list each of "
                                           r"its fields once: \['out', 'step'\]"):
        record_words(Broken)


def test_no_field_straddles_a_word():
    for cls in INSTRUCTIONS + STAGES:
        for name, word, lsb, bits, _ in field_table(cls):
            assert lsb + bits <= 32, (cls.__name__, name)


def _random_value(cls, rng: random.Random, extreme: bool):
    """A record of ``cls`` with random fields (``extreme``: each at its least or greatest
    value); an instruction is drawn again until its derived fields fit theirs."""
    while True:
        record = _random_fields(cls, rng, extreme)
        if cls not in INSTRUCTIONS:
            return record
        try:
            encode_instruction(record, 2)
            return record
        except CompileError:
            continue


def _random_fields(cls, rng: random.Random, extreme: bool):
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
    assert decode_program(encode_program(program, 2), 2) == program


@pytest.mark.parametrize("name", ["micro", "tiny-digits"])
def test_compiled_programs_round_trip(name):
    program = compile_intmodel(engine_quantized(name).intmodel)
    assert decode_program(program.words, program.config.wide_words) == program.instructions
    assert program.words[-1] == 0 and len(program.words) == \
        next(r.words for r in program.regions if r.name == "program") // 2


def test_a_value_too_wide_for_its_field_is_refused():
    window = Window(WindowMode.SUM, TensorRef(1 << 24, TensorKind.STREAM, 1, 1),
                    1, 1, 1, 1, 1, 0, 0, 1, 0, 0, ())
    with pytest.raises(CompileError, match=r"Window.source.address = 16777216 .* 24-bit field"):
        encode_instruction(window, 2)
    too_many = Window(WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 1, 1), 1, 1, 1, 1, 1,
                      0, 0, 1, 0, 0, (Store(TensorRef(0, TensorKind.STREAM, 1, 1)),) * 16)
    with pytest.raises(CompileError, match="16 stages"):
        encode_instruction(too_many, 2)


def test_bad_words_are_refused():
    with pytest.raises(CompileError, match="unknown instruction opcode 9"):
        decode_program([9], 2)
    window = Window(WindowMode.SUM, TensorRef(0, TensorKind.STREAM, 1, 1), 1, 1, 1, 1, 1, 0, 0,
                    1, 0, 0, ())
    with pytest.raises(CompileError, match="without a HALT"):
        decode_program(encode_instruction(window, 2), 2)
    words = encode_instruction(window, 2)
    words[7] ^= 1                                # last_y 0 → 1 on a one-token grid
    with pytest.raises(CompileError, match=r"word 0: Window.last_y = 1, but its fields give 0"):
        decode_program(words + [0], 2)
    assert Pattern.PATCHES == 3  # the encoding's 2-bit pattern field holds every pattern


def test_derived_fields_that_do_not_fit_or_mean_nothing_are_refused():
    big = TensorRef(0, TensorKind.STREAM, 1, 65535)
    with pytest.raises(CompileError, match=r"Window.line_step = \d+ does not fit its 24-bit"):
        encode_instruction(Window(WindowMode.SUM, big, 1, 256, 1, 1, 15, 0, 0, 1, 0, 0, ()), 2)
    with pytest.raises(CompileError, match="a Window with stride 0"):
        encode_instruction(Window(WindowMode.SUM, big, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, ()), 2)
    with pytest.raises(CompileError, match="a 3 × 1 Window over a 1 × 1 grid .* no output"):
        encode_instruction(Window(WindowMode.SUM, big, 1, 1, 3, 1, 1, 0, 0, 1, 0, 0, ()), 2)
    with pytest.raises(CompileError, match="a Mask with 0 heads"):
        encode_instruction(Mask(big, big, 0, 0, 0, 0, big), 2)


def test_docs_carry_the_current_field_tables():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "engine.md").read_text()
    assert field_tables_markdown() in docs
