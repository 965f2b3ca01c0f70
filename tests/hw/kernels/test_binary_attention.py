"""BinaryAttention: every context word equals the integer reference, under bubbles and back-pressure.

Random stimulus is checked against ``model()`` (which calls ``binaryvit.golden.intref``);
the corner cases (all-equal and all-opposite Q/K, exact threshold ties, rows where no key
or every key passes) are also checked against contexts derived by hand in this file.
"""
from __future__ import annotations

import random

import pytest
import torch
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.golden import intref
from binaryvit.hw.kernels.binary_attention import BinaryAttention
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import simulate_streams, stream_put
from binaryvit.sim.lint import lint_verilog
from binaryvit.sim.runner import run_stream_vectors

# Tiny digits model (research §6): θ ≈ α_att/2 with α_att ≈ 1/Tk, frac 8 for the exp LUT.
STAGE1 = dict(heads=2, head_dim=16, query_tokens=64, key_tokens=16)
STAGE2 = dict(heads=4, head_dim=16, query_tokens=16, key_tokens=16)

RANDOM_CASES = {
    "stage1_p2": (dict(STAGE1, keys_per_cycle=2), 2),
    "stage2_p1_lanes8": (dict(STAGE2, lanes=8), 2),
    "d1_tk1": (dict(heads=1, head_dim=1, query_tokens=3, key_tokens=1), 3),
    "d2_tk1_lanes1": (dict(heads=3, head_dim=2, query_tokens=2, key_tokens=1, lanes=1), 3),
    "all_keys_per_cycle": (dict(heads=2, head_dim=4, query_tokens=5, key_tokens=6, keys_per_cycle=6, lanes=2), 3),
    "tk3_p3_d5_counter6": (dict(heads=1, head_dim=5, query_tokens=4, key_tokens=3, keys_per_cycle=3,
                                popcount_style="counter6"), 3),
    "stage2_p2_counter4": (dict(STAGE2, keys_per_cycle=2, popcount_style="counter4"), 1),
}


def make_attention(config: dict, *, frac: int = 8, theta_shift: int = 8, theta: int | None = None,
                   lut: list[int] | None = None) -> BinaryAttention:
    if lut is None:
        lut = intref.exp_lut(config["head_dim"], frac, frac + 1).tolist()
    if theta is None:
        theta = round((1 << theta_shift) / (2 * config["key_tokens"]))
    return BinaryAttention(lut=lut, theta=theta, theta_shift=theta_shift, **config)


def random_bits(generator: torch.Generator, images: int, tokens: int, channels: int) -> torch.Tensor:
    return torch.randint(0, 2, (images, tokens, channels), generator=generator).bool()


def run(dut: BinaryAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
        bubble_prob: float = 0.3, stall_prob: float = 0.3, seed: int = 0):
    count = q.shape[0] * dut.query_tokens * dut.channels // dut.lanes
    return simulate_streams(dut, {"q": dut.token_words(q), "k": dut.token_words(k), "v": dut.token_words(v)},
                            {"o": count}, bubble_prob=bubble_prob, stall_prob=stall_prob, seed=seed)


def context_by_hand(mask: list[list[int]], v_token_bits: list[list[int]]) -> list[list[int]]:
    """Σ_k b_ik·v_kc with v bits read as ±1, written as plain loops."""
    return [[sum(b * (1 if v_token_bits[k][c] else -1) for k, b in enumerate(row))
             for c in range(len(v_token_bits[0]))] for row in mask]


@pytest.mark.parametrize("case", list(RANDOM_CASES))
def test_random_images_back_to_back_match_model(case):
    config, images = RANDOM_CASES[case]
    dut = make_attention(config)
    generator = torch.Generator().manual_seed(len(case))
    q = random_bits(generator, images, dut.query_tokens, dut.channels)
    k = random_bits(generator, images, dut.key_tokens, dut.channels)
    v = random_bits(generator, images, dut.key_tokens, dut.channels)
    if dut.key_tokens > 1:
        # The stimulus must exercise the threshold: some bits set, some clear.
        heads_q = q.reshape(images, dut.query_tokens, dut.heads, -1).transpose(1, 2)
        heads_k = k.reshape(images, dut.key_tokens, dut.heads, -1).transpose(1, 2)
        mask = intref.attention_mask(intref.attention_scores(heads_q, heads_k), dut.lut, dut.theta, dut.theta_shift)
        assert 0.05 < mask.float().mean() < 0.95
    expected = dut.context_words(dut.model(q, k, v))
    result = run(dut, q, k, v, seed=7)
    assert result.outputs["o"] == expected


@pytest.mark.parametrize("config", [
    dict(heads=2, head_dim=4, query_tokens=3, key_tokens=4, keys_per_cycle=2, lanes=1),
    dict(heads=1, head_dim=4, query_tokens=1, key_tokens=8, keys_per_cycle=8),
    dict(STAGE2, keys_per_cycle=16),
])
def test_heavy_back_pressure_and_bubbles(config):
    # Several images in a row: the next image's keys and values load while this one
    # computes, which is where the double buffer can go wrong.
    dut = make_attention(config)
    generator = torch.Generator().manual_seed(3)
    q, k, v = (random_bits(generator, 5, t, dut.channels)
               for t in (dut.query_tokens, dut.key_tokens, dut.key_tokens))
    expected = dut.context_words(dut.model(q, k, v))
    for seed, (bubble, stall) in enumerate([(0.8, 0.0), (0.0, 0.8), (0.7, 0.7)]):
        assert run(dut, q, k, v, bubble_prob=bubble, stall_prob=stall, seed=seed).outputs["o"] == expected


# Corner cases: heads=2, d=4, Tq=3, Tk=4, a LUT with distinct positive entries so the
# index the hardware reads shows in the result.
CORNER = dict(heads=2, head_dim=4, query_tokens=3, key_tokens=4, keys_per_cycle=2)
CORNER_LUT = [3, 5, 7, 11, 13]


def corner_stimulus(key_relation: str, seed: int):
    """One random C-bit pattern x: every query is x; keys are x, ~x, or x, x, ~x, ~x."""
    rng = random.Random(seed)
    x = [rng.randrange(2) for _ in range(8)]
    not_x = [1 - bit for bit in x]
    keys = {"equal": [x] * 4, "opposite": [not_x] * 4, "half": [x, x, not_x, not_x]}[key_relation]
    values = [[rng.randrange(2) for _ in range(8)] for _ in range(4)]
    return (torch.tensor([[x] * 3]).bool(), torch.tensor([keys]).bool(), torch.tensor([values]).bool(), values)


def hand_context(mask_per_key: list[int], values: list[list[int]]) -> torch.Tensor:
    """The same mask row for every query and head; returns ``[1, 3, 8]``."""
    rows = []
    for head in range(2):
        head_values = [token[head * 4:(head + 1) * 4] for token in values]
        rows.append(context_by_hand([mask_per_key], head_values)[0])
    return torch.tensor([[rows[0] + rows[1]] * 3])


@pytest.mark.parametrize("key_relation, lut, theta, theta_shift, mask", [
    # every score = d: e = lut[4] = 13, S = 52; e·4 > θ·52 ⇔ 4 > 4θ.
    ("equal", CORNER_LUT, 0, 2, [1, 1, 1, 1]),      # all keys pass
    ("equal", CORNER_LUT, 1, 2, [0, 0, 0, 0]),      # 52 > 52: exact tie, strict → 0
    # every score = −d: e = lut[0] = 3, S = 12; e·4 > θ·12 ⇔ 1 > θ.
    ("opposite", CORNER_LUT, 0, 2, [1, 1, 1, 1]),
    ("opposite", CORNER_LUT, 1, 2, [0, 0, 0, 0]),   # 12 > 12: tie
    # scores d, d, −d, −d with lut [1, 9, 9, 9, 3]: e = 3, 3, 1, 1, S = 8; e·8 vs θ·8.
    ("half", [1, 9, 9, 9, 3], 3, 3, [0, 0, 0, 0]),  # 24 > 24 ties, 8 > 24 no
    ("half", [1, 9, 9, 9, 3], 2, 3, [1, 1, 0, 0]),  # 24 > 16 yes, 8 > 16 no
    ("half", [1, 9, 9, 9, 3], 1, 3, [1, 1, 0, 0]),  # 8 > 8: tie on the low keys
    ("half", [1, 9, 9, 9, 3], 0, 3, [1, 1, 1, 1]),
    # θ = 1 (theta = 2^shift): e > S is impossible, so no key ever passes.
    ("half", CORNER_LUT, 8, 3, [0, 0, 0, 0]),
])
def test_corner_rows_match_hand_derived_context(key_relation, lut, theta, theta_shift, mask):
    dut = BinaryAttention(lut=lut, theta=theta, theta_shift=theta_shift, **CORNER)
    q, k, v, values = corner_stimulus(key_relation, seed=theta * 10 + theta_shift)
    expected_context = hand_context(mask, values)
    assert torch.equal(dut.model(q, k, v), expected_context)
    result = run(dut, q, k, v, seed=theta)
    assert result.outputs["o"] == dut.context_words(expected_context)


def test_no_key_passes_gives_zero_context_on_random_images():
    dut = make_attention(dict(STAGE2, keys_per_cycle=4), theta=1 << 8)
    generator = torch.Generator().manual_seed(11)
    q, k, v = (random_bits(generator, 1, t, 64) for t in (16, 16, 16))
    result = run(dut, q, k, v, seed=2)
    assert dut.words_to_context(result.outputs["o"]).abs().sum() == 0


def test_context_words_round_trip_and_layout():
    dut = make_attention(dict(heads=2, head_dim=4, query_tokens=2, key_tokens=5, lanes=2))
    assert dut.ctx_width == 4  # [−5, 5] needs signed 4 bits
    context = torch.tensor([[[-5, 5, 0, -1, 1, 2, 3, 4], [0, 0, 0, 0, 0, 0, 0, -5]]])
    words = dut.context_words(context)
    assert len(words) == 8
    # Word 0: channels 0, 1 = −5 (0b1011), 5 (0b0101) → 0x5b, last = bit 8 only on word 7.
    assert words[0] == 0x5B and words[7] >> 8 == 1 and all(word >> 8 == 0 for word in words[:7])
    assert torch.equal(dut.words_to_context(words), context)
    # Tokens: bit j of the data is channel j; last on the image's final token.
    q = torch.tensor([[[1, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 0]]]).bool()
    assert dut.token_words(q) == [0x81, 0x102]
    # The hardware's words decode to the model's context.
    k = torch.tensor([[[1, 0, 1, 0, 1, 0, 1, 0]] * 5]).bool()
    v = torch.tensor([[[1, 1, 0, 0, 1, 1, 0, 0]] * 5]).bool()
    result = run(dut, q, k, v)
    assert torch.equal(dut.words_to_context(result.outputs["o"]), dut.model(q, k, v))


@pytest.mark.parametrize("config, images", [
    (dict(STAGE2, keys_per_cycle=4), 3),
    (dict(STAGE1, keys_per_cycle=16), 2),
    (dict(heads=3, head_dim=2, query_tokens=4, key_tokens=3, keys_per_cycle=1), 4),
    (dict(heads=2, head_dim=8, query_tokens=5, key_tokens=8, keys_per_cycle=2, lanes=2), 3),
])
def test_cycles_without_bubbles_match_documented_count(config, images):
    dut = make_attention(config)
    generator = torch.Generator().manual_seed(5)
    q = random_bits(generator, images, dut.query_tokens, dut.channels)
    k, v = (random_bits(generator, images, dut.key_tokens, dut.channels) for _ in range(2))
    result = run(dut, q, k, v, bubble_prob=0.0, stall_prob=0.0)
    assert result.outputs["o"] == dut.context_words(dut.model(q, k, v))
    tq, tk, heads = dut.query_tokens, dut.key_tokens, dut.heads
    blocks, words = tk // dut.keys_per_cycle, dut.head_dim // dut.lanes
    # Per image: Tq·h heads of Tk/P cycles back to back, images too (the next image's K and
    # V load meanwhile). Once per stream: the first image's Tk loads and one cycle to start
    # its queries, then the last head's Tk/P cycles of accumulation and d/lanes words.
    assert words <= blocks and tq * heads * blocks >= tk + blocks + 1
    assert dut.cycles_per_image == tq * heads * blocks
    assert result.cycles == images * dut.cycles_per_image + tk + 1 + blocks + words


def test_output_bound_heads_take_d_over_lanes_cycles():
    # d/lanes = 8 words per head against Tk/P = 1 block: the output port sets the pace.
    dut = make_attention(dict(heads=2, head_dim=8, query_tokens=5, key_tokens=4, keys_per_cycle=4, lanes=1))
    generator = torch.Generator().manual_seed(6)
    cycles = []
    for images in (2, 4):
        q = random_bits(generator, images, 5, 16)
        k, v = (random_bits(generator, images, 4, 16) for _ in range(2))
        result = run(dut, q, k, v, bubble_prob=0.0, stall_prob=0.0)
        assert result.outputs["o"] == dut.context_words(dut.model(q, k, v))
        cycles.append(result.cycles)
    assert dut.cycles_per_image == 5 * 2 * 8 == (cycles[1] - cycles[0]) // 2


def test_one_query_per_image_waits_for_its_own_keys():
    # Tq = 1: the query of image n + 2 arrives while the slot it will use still holds image
    # n; it must wait for image n + 2's keys and values, not score against image n's.
    dut = make_attention(dict(heads=1, head_dim=4, query_tokens=1, key_tokens=8))
    generator = torch.Generator().manual_seed(5)
    q, k, v = (random_bits(generator, 5, t, 4) for t in (1, 8, 8))
    expected = dut.context_words(dut.model(q, k, v))
    for seed, (bubble, stall) in enumerate([(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)]):
        assert run(dut, q, k, v, bubble_prob=bubble, stall_prob=stall, seed=seed).outputs["o"] == expected


def test_latency_is_cycles_from_query_to_first_context_word():
    dut = make_attention(dict(heads=1, head_dim=4, query_tokens=1, key_tokens=6, keys_per_cycle=2))
    measured = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        await stream_put(ctx, dut.k, [0] * 6)
        await stream_put(ctx, dut.v, [0] * 6)
        ctx.set(dut.q.valid, 1)
        await ctx.tick().until(dut.q.ready)
        ctx.set(dut.q.valid, 0)
        cycles = 0
        while True:
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            cycles += 1
            if valid:
                break
        measured.append(cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert measured == [dut.latency] and dut.latency == 2 * 3 + 1


@pytest.mark.parametrize("change, error, words", [
    (dict(lut=[1, 2, 3]), ConfigError, "lut must have head_dim + 1 = 5"),
    (dict(lut=[1, 2, 3, 4, -1]), ConfigError, "lut[4]"),
    (dict(lut=[1, 2, 3, 4, 16], lut_width=4), ConfigError, "lut_width=4"),
    (dict(theta=-1), ConfigError, "theta"),
    (dict(theta_shift=63), ConfigError, "theta_shift"),
    (dict(key_tokens=0), ConfigError, "key_tokens"),
    (dict(query_tokens=0), ConfigError, "query_tokens"),
    (dict(heads=0), ConfigError, "heads"),
    (dict(head_dim=0, lut=[1]), ConfigError, "head_dim"),
    (dict(keys_per_cycle=3), FoldingError, "keys_per_cycle"),
    (dict(lanes=3), FoldingError, "lanes"),
    (dict(theta=True), ConfigError, "theta"),
    (dict(popcount_style="fast"), ConfigError, "popcount_style"),
])
def test_bad_parameters_raise_errors_naming_them(change, error, words):
    parameters = dict(heads=2, head_dim=4, query_tokens=3, key_tokens=4, lut=[1, 2, 3, 4, 8],
                      theta=1, theta_shift=2)
    parameters.update(change)
    with pytest.raises(error) as info:
        BinaryAttention(**parameters)
    assert words in str(info.value)


# Generated Verilog, in cocotb: three builds in all (two Verilator, one Icarus).
def verilog_images(dut: BinaryAttention, seed: int, random_images: int):
    """Random images, then one whose queries and keys are all equal and one all opposite."""
    generator = torch.Generator().manual_seed(seed)
    q = random_bits(generator, random_images, dut.query_tokens, dut.channels)
    k, v = (random_bits(generator, random_images, dut.key_tokens, dut.channels) for _ in range(2))
    x = random_bits(generator, 1, 1, dut.channels)
    q = torch.cat([q, x.expand(2, dut.query_tokens, -1)])
    k = torch.cat([k, x.expand(1, dut.key_tokens, -1), ~x.expand(1, dut.key_tokens, -1)])
    v = torch.cat([v, random_bits(generator, 2, dut.key_tokens, dut.channels)])
    return q, k, v


def run_verilog(dut: BinaryAttention, name: str, q, k, v, simulator: str, seed: int,
                bubble_prob: float = 0.3, stall_prob: float = 0.3):
    expected = dut.context_words(dut.model(q, k, v))
    result = run_stream_vectors(dut, name, {"q": dut.token_words(q), "k": dut.token_words(k), "v": dut.token_words(v)},
                                {"o": expected}, simulator=simulator, bubble_prob=bubble_prob,
                                stall_prob=stall_prob, seed=seed)
    assert result.outputs["o"] == expected
    return result


def test_stage1_verilator_matches_model():
    """Tiny-digits stage 1 at one key per cycle (its slowest folding), four images in a row;
    with no stalls the documented cycle count holds in the generated Verilog."""
    dut = make_attention(dict(STAGE1, keys_per_cycle=1))
    q, k, v = verilog_images(dut, seed=21, random_images=2)
    run_verilog(dut, "binary_attention_stage1", q, k, v, "verilator", seed=1)
    result = run_verilog(dut, "binary_attention_stage1", q, k, v, "verilator", seed=2,
                         bubble_prob=0.0, stall_prob=0.0)
    assert result.cycles == 4 * dut.cycles_per_image + dut.key_tokens + 1 + 16 + 1


def test_stage2_verilator_ties_and_back_to_back_images():
    """θ = 1/Tk exactly: all-equal and all-opposite rows tie on every key (context 0)."""
    dut = make_attention(dict(STAGE2, keys_per_cycle=4, lanes=8), theta=16)
    q, k, v = verilog_images(dut, seed=22, random_images=3)
    context = dut.model(q, k, v)
    assert context[3:].abs().sum() == 0 and context[:3].abs().sum() > 0
    for seed, (bubble, stall) in enumerate([(0.3, 0.3), (0.8, 0.1), (0.7, 0.7)]):
        run_verilog(dut, "binary_attention_stage2", q, k, v, "verilator", seed=seed,
                    bubble_prob=bubble, stall_prob=stall)


def test_small_config_icarus_matches_model():
    dut = make_attention(dict(heads=3, head_dim=2, query_tokens=2, key_tokens=3, keys_per_cycle=3, lanes=1))
    q, k, v = verilog_images(dut, seed=23, random_images=2)
    run_verilog(dut, "binary_attention_small", q, k, v, "icarus", seed=3)


@pytest.mark.parametrize("config", [dict(STAGE2, keys_per_cycle=4, lanes=8),
                                    dict(STAGE1, keys_per_cycle=2, lanes=2),   # tiny-digits folds
                                    dict(STAGE2, keys_per_cycle=1, lanes=1),
                                    dict(STAGE2, keys_per_cycle=16),
                                    dict(heads=1, head_dim=1, query_tokens=1, key_tokens=1),
                                    dict(heads=3, head_dim=2, query_tokens=2, key_tokens=3, lanes=1),
                                    dict(heads=3, head_dim=5, query_tokens=2, key_tokens=6, keys_per_cycle=3)])
def test_verilator_lint_is_clean(config):
    dut = make_attention(config)
    assert lint_verilog(to_verilog(dut, "binary_attention"), "binary_attention") == []
