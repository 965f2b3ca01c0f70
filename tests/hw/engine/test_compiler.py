"""The compiler: the fused program's shape for micro (counted from the model's definition),
a consistent memory plan, the cycle model worked by hand, and one-line refusals of formats,
operations and sizes the engine cannot take."""
import json
import re
from collections import Counter

import numpy as np
import pytest

from binaryvit.errors import CompileError, ConfigError
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.float_model.config import get_config
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import UP5K, EngineConfig, MemoryBank
from binaryvit.hw.engine.cycle_model import constant_bits_per_value, instruction_cycles
from binaryvit.hw.engine.isa import (
    Access,
    Add,
    Affine,
    GroupAverage,
    Mask,
    MatMul,
    MatMulMode,
    Pattern,
    RPReLU,
    Store,
    TensorKind,
    TensorRef,
    Threshold,
    Window,
    WindowMode,
)
from engine_models import ENGINE_FORMATS, engine_quantized
from network_models import int_model


@pytest.fixture(scope="module")
def micro():
    return compile_intmodel(engine_quantized("micro").intmodel)


def _kinds(program) -> Counter:
    kinds = Counter()
    for ins in program.instructions:
        name = type(ins).__name__
        if isinstance(ins, MatMul):
            name += "/" + ins.mode.name
        if isinstance(ins, Window):
            name += "/" + ins.mode.name
        kinds[name] += 1
    return kinds


def test_micro_program_has_one_instruction_per_anchor():
    unlimited = EngineConfig(epilogue_constant_bits=None)
    kinds = _kinds(compile_intmodel(engine_quantized("micro").intmodel, unlimited))
    # micro: 2 stages of one block each. Binary layers: q, k, v, out, fc1, fc2 per block,
    # sr in the first (sr_ratio 2) and the merge conv: 6 + 7 + 1 = 14; one attention per block.
    # Windows: the sr pool and the merge shortcut pool (AVERAGE), 4 pool branches per block
    # (SUM), the head's token sum (GLOBAL). MACs: stem and classifier. Nothing else: every
    # affine, RPReLU, residual add, threshold and group average rides in an epilogue.
    assert kinds == {"MatMul/XNOR": 14, "MatMul/CONTEXT": 2, "Mask": 2, "Window/AVERAGE": 2,
                     "Window/SUM": 8, "Window/GLOBAL": 1, "Mac": 2}


def test_epilogues_are_split_at_the_constant_budget(micro):
    # UP5K: 192 bits per value. The merge conv's chain (affine 48, RPReLU 96, the next
    # block's norm1 affine 48, three thresholds 33 each = 291) no longer fits in one
    # instruction: the rest runs as 1 x 1 windows over the stored value
    assert UP5K.epilogue_constant_bits == 192
    assert all(constant_bits_per_value(i, UP5K) <= 192 for i in micro.instructions)
    unlimited = compile_intmodel(engine_quantized("micro").intmodel,
                                 EngineConfig(epilogue_constant_bits=None))
    assert max(constant_bits_per_value(i, UP5K) for i in unlimited.instructions) == 291
    extra = _kinds(micro) - _kinds(unlimited)
    assert set(extra) == {"Window/SUM"} and extra["Window/SUM"] >= 1
    for ins in micro.instructions:
        if isinstance(ins, Window) and ins.mode == WindowMode.SUM and ins.kh == ins.kw == 1:
            assert ins.stages and ins.source.kind == TensorKind.STREAM


def test_merge_conv_epilogue_adds_the_hoisted_shortcut_pool(micro):
    conv = micro.instructions[micro.labels.index("stages.1.merge.conv")]
    pool = micro.instructions[micro.labels.index("stages.1.merge.shortcut_pool")]
    assert micro.labels.index("stages.1.merge.shortcut_pool") < micro.labels.index("stages.1.merge.conv")
    assert conv.source.pattern == Pattern.PATCHES and conv.source.factor == 2
    # conv -> BN -> + tiled pool -> RPReLU -> + position embedding (a payload constant)
    assert [type(s) for s in conv.stages[:4]] == [Affine, Add, RPReLU, Add]
    assert conv.stages[1].operand.tensor == pool.stages[-1].out
    assert conv.stages[1].operand.pattern == Pattern.TILE
    pos = conv.stages[3].operand.tensor
    assert any(r.name == "stages.1.merge.pos_embed" and r.address == pos.address
               for r in micro.regions)


def test_fc1_epilogue_fuses_its_bn_shortcut_rprelu_group_average_and_sign(micro):
    i = micro.labels.index("stages.0.blocks.0.mlp.fc1")
    fc1 = micro.instructions[i]
    # fc1 -> BN (affine) -> + tiled norm2 (8 channels read twice for 16) -> RPReLU, then
    # fc2's shortcut (group average of 2) and fc2's input sign; fc1_act itself is never stored
    assert [type(s) for s in fc1.stages] == [Affine, Add, RPReLU, GroupAverage, Threshold]
    add = fc1.stages[1]
    assert add.operand.pattern == Pattern.TILE and add.operand.factor == 2
    assert add.operand.tensor.cols == 8 and fc1.outputs == 16
    assert fc1.stages[3].group == 2 and fc1.stages[3].out.cols == 8
    assert fc1.stages[4].out.kind == TensorKind.BITS


def test_attention_values_are_stored_transposed_for_the_context_matmul(micro):
    for ins in micro.instructions:
        if isinstance(ins, MatMul) and ins.mode == MatMulMode.CONTEXT:
            assert ins.weights.kind == TensorKind.BITS_T
            writers = [s for other in micro.instructions for s in other.stages
                       if isinstance(s, Threshold) and s.out == ins.weights]
            assert len(writers) == 1


def _spans(program):
    wide = program.config.wide_words
    for t in program.tensors:
        yield t, t.ref.address, t.ref.address + t.ref.words(wide)


@pytest.mark.parametrize("name", ["micro", "tiny-digits"])
def test_memory_plan_is_consistent(name):
    p = compile_intmodel(engine_quantized(name).intmodel)
    c = p.config
    assert sum(s.words for s in p.segments) == len(p.payload)
    for s in p.segments:   # each segment ends at the top of its bank
        assert s.address + s.words == c.bank_start(s.bank) + c.banks[s.bank].words
    regions = sorted((r.address, r.address + r.words) for r in p.regions)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(regions, regions[1:]))
    segment_of = {s.bank: s for s in p.segments}
    for r in p.regions:
        s = segment_of[c.bank_of(r.address)]
        assert s.address <= r.address and r.address + r.words <= s.address + s.words
    spans = list(_spans(p))
    for t, start, end in spans:
        bank_end = c.bank_start(t.bank) + c.banks[t.bank].words
        top = segment_of[t.bank].address if t.bank in segment_of else bank_end
        assert c.bank_start(t.bank) <= start and end <= top, t.name
    for i, (a, a0, a1) in enumerate(spans):
        for b, b0, b1 in spans[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert a1 <= b0 or b1 <= a0, (a.name, b.name)
    assert p.activation_bytes() + p.payload_bytes <= p.memory_bytes
    # every tensor an instruction touches is a placed tensor or lies in the payload
    placed = {t.ref for t in p.tensors}
    payload = [(r.address, r.address + r.words) for r in p.regions]
    for ins in p.instructions:
        refs = [getattr(ins, f) for f in ("queries", "keys", "out", "weights")
                if isinstance(getattr(ins, f, None), TensorRef)]
        refs += [ins.source if isinstance(ins.source, TensorRef) else ins.source.tensor] \
            if hasattr(ins, "source") else []
        for s in ins.stages:
            refs += [s.out] if hasattr(s, "out") else [s.operand.tensor] if isinstance(s, Add) \
                else []
        for ref in refs:
            assert ref in placed or any(a <= ref.address < b for a, b in payload), ref


def test_cycle_model_worked_by_hand():
    c = UP5K        # pe 4, simd 32, 2 lanes x 2 multipliers, banks of 16384 words, overhead 24
    bank = [c.bank_start(i) for i in range(4)]
    src = TensorRef(bank[0], TensorKind.BITS, 64, 32)             # 64 tokens x 2 words
    weights = TensorRef(bank[1], TensorKind.BITS, 128, 32)        # 128 rows x 2 words
    shortcut = TensorRef(bank[2] + 100, TensorKind.STREAM, 64, 32)
    out = TensorRef(bank[2] + 5000, TensorKind.STREAM, 64, 128)
    matmul = MatMul(MatMulMode.XNOR, Access(src), weights, 1,
                    (Affine(bank[1] + 300, 2, 16), Add(Access(shortcut, Pattern.TILE, 4), 16),
                     RPReLU(bank[1] + 700, 18, 16), Store(out)))
    got = instruction_cycles(matmul, c, fetch_address=bank[3])
    assert got.array == 64 * 1 * 32                  # T · ceil(K/simd) · ceil(N/pe)
    assert got.vector == 64 * 128 // 2 * 1           # T·N / lanes, 2 multiplies on 2 per lane
    # bank 0: the input bits once; bank 1: weights + affine (mul + 32-bit bias) + rprelu
    # (2 wide + 2 one-word constants) per channel; bank 2: the tiled shortcut read per output
    # and the stored result; bank 3: the instruction's words (MatMul 15, Affine 3, Add 5,
    # RPReLU 5, Store 3, derived fields included), two per 32-bit word
    assert got.bank_words == (128, 256 + 128 * 3 + 128 * 6, 64 * 128 + 64 * 128,
                              2 * (15 + 3 + 5 + 5 + 3))
    assert got.cycles == 2 * 64 * 128 + 24
    assert got.binary_macs == 64 * 32 * 128


def test_cycle_model_of_mask_and_window_by_hand():
    c = UP5K
    q = TensorRef(0, TensorKind.BITS, 64, 32)          # 2 heads of d = 16
    k = TensorRef(16384, TensorKind.BITS, 16, 32)
    out = TensorRef(32768, TensorKind.BITS, 128, 16)
    mask = instruction_cycles(Mask(q, k, 2, 49152, 100, 8, out), c, fetch_address=49200)
    # scores: heads·T·ceil(d/simd)·ceil(Tk/pe) = 2·64·1·4 = 512; mask unit 2·64·(4 + 1) = 640
    assert mask.array == 640 and mask.cycles == 640 + 24
    src = TensorRef(0, TensorKind.STREAM, 64, 32)
    window = Window(WindowMode.SUM, src, 8, 8, 1, 5, 1, 0, 2, 1, 0, 0,
                    (Store(TensorRef(16384, TensorKind.STREAM, 64, 32)),))
    got = instruction_cycles(window, c, fetch_address=49152)
    assert got.bank_words[0] == 64 * 32 and got.bank_words[1] == 64 * 32
    assert got.cycles == 64 * 32 + 24


def test_formats_wider_than_the_engine_are_refused():
    with pytest.raises(CompileError, match=re.escape(
            "format stream_width=24 is wider than engine 'up5k' allows (16 bits); quantize "
            "with --stream-width 16")):
        compile_intmodel(int_model("micro"))
    q = engine_quantized("micro")
    model = IntModel(q.intmodel.config, dict(q.intmodel.formats, const_bits=20),
                     q.intmodel.input_range, q.intmodel.steps)
    with pytest.raises(CompileError, match=r"const_bits=20 .* --const-bits 16"):
        compile_intmodel(model)
    model = IntModel(q.intmodel.config, dict(q.intmodel.formats, acc_width=48),
                     q.intmodel.input_range, q.intmodel.steps)
    with pytest.raises(CompileError, match=r"acc_width=48 .* --acc-width 36"):
        compile_intmodel(model)


def test_constants_wider_than_the_multipliers_are_refused():
    q = engine_quantized("micro")
    steps = list(q.intmodel.steps)
    i = next(i for i, s in enumerate(steps) if s.op == "affine")
    arrays = dict(steps[i].arrays, mul=steps[i].arrays["mul"] * 0 + (1 << 17))
    steps[i] = Step(steps[i].name, "affine", steps[i].inputs, steps[i].params, arrays)
    model = IntModel(q.intmodel.config, q.intmodel.formats, q.intmodel.input_range, steps)
    with pytest.raises(CompileError, match=rf"step '{steps[i].name}': mul constants need 19 bits"):
        compile_intmodel(model, EngineConfig(accumulator_bits=48))


def test_an_operation_the_engine_cannot_run_is_named():
    steps = [Step("patches", "image_patches", ("input",), {"size": 1}),
             Step("mac", "fixed_mac", ("patches",), {"shift": 0, "width": 16},
                  {"weight": np.array([[3]]), "bias": np.array([5])}),
             Step("probs", "softmax", ("mac",), {})]
    model = IntModel(get_config("tiny-digits"), dict(ENGINE_FORMATS.to_dict()), (0, 16), steps)
    with pytest.raises(CompileError, match=r"^step 'probs': the engine has no instruction for "
                                           r"operation 'softmax'$"):
        compile_intmodel(model)


def test_a_payload_larger_than_the_memories_is_refused():
    small = EngineConfig(name="small", banks=(MemoryBank("a", 1000), MemoryBank("b", 1000)))
    with pytest.raises(CompileError, match=r"^parameter payload needs (\d+) bytes but engine "
                                           r"'small' has 4000 bytes of memory$") as info:
        compile_intmodel(engine_quantized("micro").intmodel, small)
    assert int(re.search(r"needs (\d+)", str(info.value)).group(1)) > 4000


def test_a_tensor_that_does_not_fit_names_its_step_and_the_bytes(micro):
    # micro's payload is ~11,300 bytes: two banks of 2,900 words leave a few hundred bytes
    small = EngineConfig(name="small", banks=(MemoryBank("a", 2900), MemoryBank("b", 2900)))
    with pytest.raises(CompileError) as info:
        compile_intmodel(engine_quantized("micro").intmodel, small)
    message = str(info.value)
    match = re.fullmatch(r"step '([\w.]+)': its STREAM tensor \[(\d+), (\d+)\] needs (\d+) bytes "
                         r"but at most (\d+) bytes are free in any bank while it is live "
                         rf"\(engine 'small': 11600 bytes, parameter payload {micro.payload_bytes}\)",
                         message)
    assert match, message
    rows, cols, needed, free = (int(match.group(i)) for i in range(2, 6))
    assert needed == 2 * rows * cols and free < needed
    assert "\n" not in message


def test_rereads_are_charged_to_the_banks_the_tensor_occupies():
    c = EngineConfig(bit_buffer_bits=64)            # K = 32: two tokens per chunk
    src = TensorRef(c.bank_start(1), TensorKind.BITS, 8, 32)         # 8 tokens: 4 chunks
    # 4 rows x 2 words, the last 8 words of memory: re-read 4 times, all in bank 3
    top = MatMul(MatMulMode.XNOR, Access(src), TensorRef(c.total_words - 8, TensorKind.BITS,
                                                         4, 32), 1, ())
    assert instruction_cycles(top, c, fetch_address=0).bank_words[2:] == (0, 4 * 8)
    # straddling banks 0 and 1 (4 words each): the 32 reads split 16 / 16
    split = MatMul(MatMulMode.XNOR, Access(TensorRef(c.bank_start(2), TensorKind.BITS, 8, 32)),
                   TensorRef(c.bank_start(1) - 4, TensorKind.BITS, 4, 32), 1, ())
    fetch = 2 * 15                  # the 15-word MatMul (derived fields too), fetched from bank 0
    assert instruction_cycles(split, c, fetch_address=0).bank_words[:2] == (16 + fetch, 16)


def test_program_summary_is_json_and_adds_up(micro):
    summary = json.loads(json.dumps(micro.describe()))
    assert summary["cycles_per_image"] == sum(c["cycles"] for c in summary["cycles"])
    assert summary["payload_bytes"] == 2 * sum(s["words"] for s in summary["segments"])
    assert len(summary["cycles"]) == summary["instructions"] == len(micro.instructions)
    assert summary["output"]["shape"] == [1, 10]


def test_engine_config_is_validated():
    with pytest.raises(ConfigError, match="pe must be a positive integer"):
        EngineConfig(pe=0)
    with pytest.raises(ConfigError, match="stream_bits and const_bits must fit"):
        EngineConfig(stream_bits=24)
    with pytest.raises(ConfigError, match="wide_words 2 or 3"):
        EngineConfig(wide_words=4)


def test_listing_has_one_line_per_instruction_at_its_fetch_address(micro):
    lines = micro.listing()
    assert len(lines) == len(micro.instructions)
    assert lines[0].split()[:2] == [str(micro.program_address), "MAC"]
    fc1 = next(line for line in lines if line.rstrip().endswith("Threshold->BITS@" + str(
        micro.instructions[micro.labels.index("stages.0.blocks.0.mlp.fc1")].stages[-1].out.address)))
    assert "Add(" in fc1 and " TILE)" in fc1 and "GroupAverage->STREAM@" in fc1


def test_the_engine_runs_every_operation_of_the_integer_program_by_its_op_spec():
    """Each op's engine role lives in its spec (hw/ops); fusion reads it from there, so an
    op added to the integer program without a role is an op the compiler refuses."""
    from binaryvit.golden.intref.int_network import OPS
    from binaryvit.hw.engine.fusion import ANCHORS, SUPPORTED
    from binaryvit.hw.ops.registry import spec_of

    assert sorted(SUPPORTED) == sorted(OPS)
    assert {op: spec_of(op).engine_instruction for op in ANCHORS} == {
        "xnor_popcount_dot": "matmul", "and_popcount_context": "context",
        "attention_scores": "mask", "window_sum2d": "window", "avgpool2d": "window",
        "global_avgpool": "window", "fixed_mac": "mac"}
    assert spec_of("attention_mask").engine_role == "mask"


def test_cycle_model_of_a_context_matmul_counts_its_heads_times_d_channels():
    c = UP5K
    mask = TensorRef(0, TensorKind.BITS, 2 * 64, 16)             # 2 heads x 64 rows, Tk = 16
    values = TensorRef(16384, TensorKind.BITS_T, 16, 64)         # [Tk, N]: N = 2 heads x 32
    out = TensorRef(32768, TensorKind.STREAM, 64, 64)
    context = MatMul(MatMulMode.CONTEXT, Access(mask), values, 2, (Store(out),))
    got = instruction_cycles(context, c, fetch_address=49152)
    # array: heads·T·ceil(Tk/simd)·ceil(d/pe) = 2·64·1·8; vector: T·N/lanes = 64·64/2
    assert got.array == 2 * 64 * 1 * 8
    assert got.vector == 64 * 64 // 2
    assert got.bank_words[2] == 64 * 64                          # every stored value once
