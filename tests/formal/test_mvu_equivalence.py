"""The XNOR-popcount datapath and the MVU against the integer definition, for all inputs.

``reference_dot`` (the ±1 dot product written in Amaranth) is first checked against
``intref.xnor_popcount_dot`` on every input of K = 3 in Amaranth's simulator; the formal
checks then use it as the reference (``binaryvit.sim.formal.mvu_equivalence``).
"""
from __future__ import annotations

import itertools

import pytest
import torch
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from binaryvit.golden import intref
from binaryvit.sim.formal.mvu_equivalence import (MVUEquivalence, PopcountEquivalence,
                                                   all_weight_rows, reference_dot)
from binaryvit.sim.formal.sby_runner import run_sby
from binaryvit.sim.formal.suite import MVU_EQUIVALENCE


def test_reference_dot_is_intref_on_every_input():
    K = 3
    a, w = Signal(K), Signal(K)
    dot = Signal(signed(K.bit_length() + 1))
    m = Module()
    m.d.comb += dot.eq(reference_dot(a, w))
    rows = list(itertools.product((0, 1), repeat=K))
    seen = []

    async def bench(ctx):
        for a_bits, w_bits in itertools.product(rows, rows):
            ctx.set(a, sum(b << k for k, b in enumerate(a_bits)))
            ctx.set(w, sum(b << k for k, b in enumerate(w_bits)))
            seen.append(ctx.get(dot))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    expected = intref.xnor_popcount_dot(torch.tensor(rows), torch.tensor(rows)).T.reshape(-1)
    assert seen == expected.tolist()


def test_all_weight_rows_are_every_row():
    rows = all_weight_rows(3)
    assert sorted(map(tuple, rows.tolist())) == list(itertools.product((0, 1), repeat=3))


@pytest.mark.parametrize("style", ["plain", "counter4"])
def test_wrong_popcount_reference_is_rejected(style, tmp_path):
    check = PopcountEquivalence(5, style, flip_reference_bit=2)
    result = run_sby(check, check.ports, f"mutant-{style}", mode="bmc", depth=1, workdir=tmp_path)
    assert result.status == "FAIL"


def _mvu(style: str):
    from binaryvit.hw.kernels.mvu import XnorPopcountMVU
    K = MVU_EQUIVALENCE["K"]
    return XnorPopcountMVU(K, 1 << K, pe=MVU_EQUIVALENCE["pe"], simd=MVU_EQUIVALENCE["simd"],
                           weights=all_weight_rows(K), popcount=style)


def test_wrong_mvu_reference_is_rejected(tmp_path):
    """One weight bit flipped in the reference only: the MVU no longer matches it, and
    the bounded check must find an input stream that shows it."""
    check = MVUEquivalence(_mvu("counter6"), flip_reference_bit=1)
    result = run_sby(check, check.ports, "mutant-mvu", mode="bmc",
                     depth=MVU_EQUIVALENCE["depth"], workdir=tmp_path)
    assert result.status == "FAIL"


@pytest.mark.filterwarnings("ignore:.*MVUEquivalence object.*created but never used")
def test_thresholded_mvu_is_refused():
    from amaranth.hdl import Fragment

    from binaryvit.hw.kernels.mvu import XnorPopcountMVU
    mvu = XnorPopcountMVU(2, 2, pe=1, simd=1, weights=[[1, 0], [0, 1]], thresholds=[0, 0])
    with pytest.raises(ValueError, match="without thresholds"):
        MVUEquivalence(mvu)
    Fragment.get(mvu, None)  # used: no "created but never used" warning
