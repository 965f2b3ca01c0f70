"""The core's shared ``RoundShiftSaturate`` (one shift bit per cycle, then round, saturation
from the high bits, no comparators) equals ``intref``'s ``saturate(round_shift(x, shift),
width)`` — and, with rounding off, the floor shift the mask's ``θ·Σ`` compare uses — on corner
and random values at run-time shifts and widths, ready exactly ``shift + 1`` cycles after its
load (``cycles.MULTIPLY_CYCLES`` counts on it)."""
import random

from amaranth.sim import Simulator

from binaryvit.golden.intref.fixed_point import round_shift, saturate
from binaryvit.hw.engine.rtl.round_shift import RoundShiftSaturate

BITS = 38


def _cases():
    rng = random.Random(12)
    lo, hi = -(1 << (BITS - 1)), (1 << (BITS - 1)) - 1
    corners = [lo, lo + 1, -1, 0, 1, hi - 1, hi, -(1 << 20), (1 << 20) - 1, 5, -5, 3, -3]
    cases = [(v, s, w, r) for v in corners for s in (0, 1, 2, 19, 37, 40, 62)
             for w in (0, 2, 3, 16, 32) for r in (0, 1)]
    cases += [(rng.randint(lo >> rng.randint(0, 30), hi >> rng.randint(0, 30)),
               rng.randint(0, 40), rng.choice([0, rng.randint(2, 36)]), rng.randint(0, 1))
              for _ in range(1500)]
    return cases


def _want(v, s, w, r):
    x = round_shift(v, s) if r else (v >> s)
    return int(saturate(x, w if w else None))


def test_round_shift_saturate_equals_intref_after_shift_plus_one_cycles():
    unit = RoundShiftSaturate(BITS)
    cases = _cases()
    got, waits = [], []

    async def bench(ctx):
        for v, s, w, r in cases:
            ctx.set(unit.value, v)
            ctx.set(unit.shift, s)
            ctx.set(unit.width, w)
            ctx.set(unit.rounding, r)
            ctx.set(unit.load, 1)
            await ctx.tick()
            ctx.set(unit.load, 0)
            ctx.set(unit.value, 0)                # read only while loading
            wait = 1
            while not ctx.get(unit.ready):
                await ctx.tick()
                wait += 1
            got.append(ctx.get(unit.result))
            waits.append(wait)

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    wrong = [(c, g, _want(*c)) for c, g in zip(cases, got) if g != _want(*c)]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. (case, got, want) {wrong[:3]}"
    late = [(c, n) for c, n in zip(cases, waits) if n != c[1] + 1]
    assert not late, f"ready after (case, cycles) {late[:3]}, not shift + 1"
