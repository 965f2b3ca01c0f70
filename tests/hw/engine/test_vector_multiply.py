# amaranth: UnusedElaboratable=no
import random

import pytest
import torch
from amaranth.sim import Simulator
from ice40_synthesis import ice40_cells

from binaryvit.errors import ConfigError, DataError
from binaryvit.hw.engine.vector_multiply import VectorMultiply
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import int_to_payload, simulate_streams
from binaryvit.sim.lint import lint_verilog

def extremes(width: int) -> list[int]:
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return [low, low + 1, -1, 0, 1, high]


def words_for(unit: VectorMultiply, rng: random.Random, count: int):
    """Random words and corner words: ±32768 extremes, rounding ties, every shift."""
    words = []
    for index in range(count):
        x, mul, bias = [], [], []
        for _ in range(unit.lanes):
            # |mul·x| < 2^(x_width + 14): any bias within the rest of the accumulator is safe
            bias_limit = (1 << (unit.accumulator_width - 1)) - (1 << (unit.x_width + 14))
            if index % 3 == 0:
                x.append(rng.choice(extremes(unit.x_width)))
                mul.append(rng.choice(extremes(16)))
                bias.append(rng.choice([0, 1, -1, bias_limit - 1, -bias_limit, rng.randrange(-9, 10)]))
            else:
                x.append(rng.randrange(-(1 << (unit.x_width - 1)), 1 << (unit.x_width - 1)))
                mul.append(rng.randrange(-32768, 32768))
                bias.append(rng.randrange(-bias_limit, bias_limit))
        shift = index % (unit.max_shift + 1) if index < 2 * (unit.max_shift + 1) \
            else rng.randrange(unit.max_shift + 1)
        words.append({"x": x, "mul": mul, "bias": bias, "shift": shift})
    return words


@pytest.mark.parametrize("lanes, out_width, x_width, accumulator_width, seed", [
    (2, 16, 16, 32, 0), (1, 12, 16, 32, 1), (3, 24, 16, 32, 2),
    (2, 16, 18, 36, 3),          # the engine's UP5K configuration: 18-bit window sums
])
def test_matches_the_model_with_bubbles_and_back_pressure(lanes, out_width, x_width,
                                                         accumulator_width, seed):
    unit = VectorMultiply(lanes=lanes, out_width=out_width, x_width=x_width,
                          accumulator_width=accumulator_width, max_shift=accumulator_width - 1)
    words = words_for(unit, random.Random(seed), 400)
    run = simulate_streams(unit, {"i": words}, {"o": len(words)}, bubble_prob=0.3,
                           stall_prob=0.4, seed=seed)
    got = [int_to_payload(unit.output_layout, w) for w in run.outputs["o"]]
    expected = [unit.model(w["x"], w["mul"], w["bias"], w["shift"]).tolist() for w in words]
    assert got == expected
    saturated = sum(abs(v) == (1 << (out_width - 1)) - (v > 0) for row in got for v in row)
    assert saturated > 10          # the corner words reach both clamps


@pytest.mark.parametrize("x, mul, bias, shift, expected", [
    (-32768, -32768, 0, 0, 32767),            # 2^30 saturates
    (-32768, -32768, 0, 15, 32767),           # 32768 still one over
    (-32768, -32768, 0, 16, 16384),
    (-32768, 32767, 0, 15, -32767),           # -32767.0 exactly
    (-32768, 32767, -(1 << 30), 0, -32768),   # the most negative accumulator
    (5, 1, 0, 1, 3),                          # 2.5 rounds half up
    (-5, 1, 0, 1, -2),                        # -2.5 rounds towards +inf
    (3, 7, 100, 3, 15),                       # (21 + 100) / 8 = 15.125
    (1000, 1000, 0, 31, 0),
    (-32768, 32767, (1 << 30) - 1, 31, 0),    # (2^15 - 1) / 2^31 rounds to 0
])
def test_hand_computed_values(x, mul, bias, shift, expected):
    unit = VectorMultiply(lanes=1)
    run = simulate_streams(unit, {"i": [{"x": [x], "mul": [mul], "bias": [bias], "shift": shift}]},
                           {"o": 1}, bubble_prob=0, stall_prob=0)
    assert int_to_payload(unit.output_layout, run.outputs["o"][0]) == [expected]
    assert unit.model([x], [mul], [bias], shift).tolist() == [expected]


def test_latency_is_three_cycles_and_one_word_per_cycle():
    unit = VectorMultiply(lanes=1)
    seen = []

    async def bench(ctx):
        ctx.set(unit.o.ready, 1)
        for cycle in range(12):
            word = {"x": [cycle], "mul": [2], "bias": [0], "shift": 0} if cycle < 5 else None
            ctx.set(unit.i.valid, word is not None)
            if word is not None:
                ctx.set(unit.i.payload, unit.input_layout.const(word))
            await ctx.tick()
            if ctx.get(unit.o.valid):
                seen.append((cycle, int_to_payload(unit.output_layout,
                                                   ctx.get(unit.o.payload.as_value()))))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # the word presented before tick 0 is out after tick 2: valid in the 3rd cycle after it
    assert seen == [(c + unit.latency - 1, [2 * c]) for c in range(5)]


def test_model_refuses_an_accumulator_that_would_wrap():
    unit = VectorMultiply()
    with pytest.raises(DataError, match="signed 32-bit accumulator"):
        unit.model([-32768], [-32768], [(1 << 31) - 1], 0)
    with pytest.raises(DataError, match="36-bit accumulator"):
        VectorMultiply(x_width=18, accumulator_width=36).model([-131072], [-32768], [(1 << 35) - 1], 0)
    with pytest.raises(DataError, match="x: outside"):
        unit.model([32768], [1], [0], 0)
    with pytest.raises(DataError, match="shift"):
        unit.model([1], [1], [0], 32)


def test_model_is_intref_affine():
    x = torch.tensor([[100, -7], [32767, -32768]])
    mul = torch.tensor([[3, 5], [2, 2]])
    bias = torch.tensor([[4, 0], [0, 0]])
    assert VectorMultiply(lanes=2, out_width=16).model(x, mul, bias, 2).tolist() == [[76, -9], [16384, -16384]]


@pytest.mark.parametrize("kwargs", [dict(lanes=0), dict(lanes=9), dict(out_width=33), dict(max_shift=64),
                                    dict(x_width=19), dict(accumulator_width=31)])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ConfigError):
        VectorMultiply(**kwargs)


def test_each_lane_is_one_sb_mac16_and_no_lut_multiplier(tmp_path):
    cells = ice40_cells(VectorMultiply(lanes=2), "vector_multiply", tmp_path, "-dsp")
    assert cells.get("SB_MAC16") == 2
    # Without -dsp one lane is 1,062 SB_LUT4 (measured): the multiplier alone is ~850. With
    # it, the shift, rounding and clamp are left (212 a lane), and the only carry chain is
    # the out_width-bit increment of the rounding.
    assert cells.get("SB_LUT4", 0) <= 2 * 240
    assert cells.get("SB_CARRY", 0) <= 2 * 17
    # x, mul, bias and the accumulator (96 flip-flops a lane) live in the DSP; in logic are
    # the shifted value (33) and the result (16) per lane, the shifts and the valid bits
    flops = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    assert flops <= 2 * (33 + 16) + 3 * 5 + 4


def test_verilog_lints_clean():
    assert lint_verilog(to_verilog(VectorMultiply(lanes=2), "vector_multiply"), "vector_multiply") == []


def test_an_18_bit_x_takes_two_sb_mac16_a_lane(tmp_path):
    cells = ice40_cells(VectorMultiply(lanes=1, x_width=18, accumulator_width=36, max_shift=35),
                        "vector_multiply_wide", tmp_path, "-dsp")
    assert cells.get("SB_MAC16") == 2
    assert cells.get("SB_LUT4", 0) <= 320      # one lane of 16 bits is 212: no LUT multiplier
