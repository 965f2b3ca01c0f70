"""Every formal check of the project, as one list: what ``make formal``, the tests and the
bench run.

A ``FormalCheck`` is one SymbiYosys run: a harness (built fresh each time: Amaranth
elaborates a design once), a mode and a depth. The list:

- ``stream/<kernel>``: each kernel's stream protocol (``kernel_cases.KERNEL_CASES``),
  ``prove`` (k-induction) or, for the balances still without an occupancy invariant,
  ``bmc``;
- ``cover/<kernel>``: for each balance, a ``cover`` run showing the harness's assumptions
  leave an output transfer (and a ``last``) reachable, and that a bounded check's depth
  lets one through (so no check passes because nothing can happen);
- ``popcount/<style>-<lanes>``: the XNOR-popcount datapath equals the ±1 dot product for
  every input and weight word;
- ``mvu/<style>``: the streaming MVU equals the ±1 dot product for every input stream,
  against all ``2^K`` weight rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from amaranth.hdl import Elaboratable

from binaryvit.sim.formal.kernel_cases import KERNEL_CASES, FormalCase
from binaryvit.sim.formal.sby_runner import FormalResult, run_sby

__all__ = ["FormalCheck", "FORMAL_CHECKS", "check_by_name", "run_check",
           "POPCOUNT_STYLES_CHECKED", "MVU_EQUIVALENCE"]

POPCOUNT_LANES = (1, 3, 6, 8)
MVU_EQUIVALENCE = dict(K=4, simd=2, pe=4, depth=14)


@dataclass(frozen=True)
class FormalCheck:
    name: str
    build: Callable[[], Elaboratable]
    mode: str
    depth: int
    note: str = ""

    def run(self, workdir: Path, **kw) -> FormalResult:
        top = self.build()
        return run_sby(top, top.ports, self.name.replace("/", "-").replace(":", "-"),
                       mode=self.mode, depth=self.depth, workdir=workdir, **kw)


def _stream_checks(case: FormalCase) -> list[FormalCheck]:
    checks = [FormalCheck(f"stream/{case.name}", case.harness, case.mode, case.depth, case.note)]
    if case.mode == "bmc" or case.spec.outputs:
        checks.append(FormalCheck(f"cover/{case.name}", case.harness, "cover", case.cover_depth,
                                  "the assumptions leave a transfer on every output (and a "
                                  f"last) reachable within {case.cover_depth} cycles"))
    return checks


def _popcount(lanes: int, style: str) -> Callable[[], Elaboratable]:
    def build():
        from binaryvit.sim.formal.mvu_equivalence import PopcountEquivalence
        return PopcountEquivalence(lanes, style)
    return build


def _mvu(style: str, **kw) -> Callable[[], Elaboratable]:
    def build():
        from binaryvit.hw.kernels.mvu import XnorPopcountMVU
        from binaryvit.sim.formal.mvu_equivalence import MVUEquivalence, all_weight_rows
        K, simd, pe = MVU_EQUIVALENCE["K"], MVU_EQUIVALENCE["simd"], MVU_EQUIVALENCE["pe"]
        mvu = XnorPopcountMVU(K, 1 << K, pe=pe, simd=simd, weights=all_weight_rows(K),
                              popcount=style)
        return MVUEquivalence(mvu, **kw)
    return build


def _popcount_styles() -> tuple[str, ...]:
    from binaryvit.hw.kernels.popcount import POPCOUNT_STYLES
    return tuple(POPCOUNT_STYLES)


POPCOUNT_STYLES_CHECKED = _popcount_styles()

FORMAL_CHECKS: tuple[FormalCheck, ...] = (
    *(check for case in KERNEL_CASES for check in _stream_checks(case)),
    *(FormalCheck(f"popcount/{style}-{lanes}", _popcount(lanes, style), "bmc", 1,
                  f"{lanes} lanes, every a and w (combinational: one step is every case)")
      for style in POPCOUNT_STYLES_CHECKED for lanes in POPCOUNT_LANES),
    *(FormalCheck(f"mvu/{style}", _mvu(style), "bmc", MVU_EQUIVALENCE["depth"],
                  "K=4 (simd 2: 2 synapse folds), N=16 (every weight row, pe 4: 4 neuron "
                  "folds), every input stream and back-pressure")
      for style in ("counter6", "shared4")),
)


def check_by_name(name: str) -> FormalCheck:
    for check in FORMAL_CHECKS:
        if check.name == name:
            return check
    raise KeyError(f"{name}: no such formal check (see binaryvit.sim.formal.suite.FORMAL_CHECKS)")


def run_check(name: str, workdir: Path, **kw) -> FormalResult:
    return check_by_name(name).run(workdir, **kw)
