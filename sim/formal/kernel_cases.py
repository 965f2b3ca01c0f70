"""The stream-protocol proofs of every kernel: a small instance of each, and its accounting.

Each ``FormalCase`` names one kernel instance (parameters small enough for a quick
proof, every structural branch of the kernel still present: several channel groups,
several lanes, several folds), the ``StreamSpec`` of what is checked on it, and the
SymbiYosys mode and depth. ``prove`` cases are unbounded proofs by k-induction (``depth``
is k); ``bmc`` cases are bounded to ``depth`` cycles and say why in ``note``.

The ``pending`` functions are the kernels' occupancy written from their own registers:
how many words each holds (in the balance's unit, see ``OutputAccount``) and how many
``last`` flags. They are the inductive invariants; a wrong one fails the proof, so they
cannot make a broken kernel pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import Value
from amaranth.lib import wiring

from binaryvit.sim.formal.stream_properties import (OutputAccount, Probe, StreamProtocolHarness,
                                                    StreamSpec)

__all__ = ["FormalCase", "KERNEL_CASES", "case_by_name"]


@dataclass(frozen=True)
class FormalCase:
    name: str
    build: Callable[[], wiring.Component]
    spec: StreamSpec
    mode: str
    depth: int
    note: str = ""

    def harness(self, build: Callable[[], wiring.Component] | None = None) -> StreamProtocolHarness:
        """The harness around a fresh kernel (or around ``build()``, e.g. a mutant)."""
        return StreamProtocolHarness((build or self.build)(), self.spec)


def _sum(values) -> Value:
    total = 0
    for v in values:
        total = total + v
    return total


def _stages(*names: str):
    """Occupancy of a pipeline of registered stages ``names`` plus the output register."""
    def pending(probe: Probe) -> Value:
        return _sum([probe(n) for n in names] + [probe.kernel.o.valid])
    return pending


def _stage_lasts(*pairs: tuple[str, str]):
    """``last`` flags held by the stages ``(valid, last)`` and the output register."""
    def pending(probe: Probe) -> Value:
        o = probe.kernel.o
        return _sum([probe(v) & probe(l) for v, l in pairs] + [o.valid & o.payload.last])
    return pending


def _pipeline_spec(stages: tuple[str, ...], lasts: tuple[tuple[str, str], ...], **kw) -> StreamSpec:
    return StreamSpec(outputs=(OutputAccount("o", 1, 1, _stages(*stages), len(stages) + 1,
                                             _stage_lasts(*lasts)),), **kw)


# -- kernels --------------------------------------------------------------------------

def _affine():
    from binaryvit.hw.affine import AffineUnit
    return AffineUnit(channels=4, lanes=2, in_width=4, mul=[1, -2, 3, -1], bias=[0, 1, -2, 3],
                      shift=1, out_width=4)


def _rprelu():
    from binaryvit.hw.rprelu import RPReLUUnit
    return RPReLUUnit(channels=4, lanes=2, in_width=4, pre_bias=[0, 1, -1, 2],
                      mul_pos=[1, 2, 1, 3], mul_neg=[-1, 1, 2, 1], post_bias=[0, -1, 1, 2],
                      shift=1, out_width=4)


def _threshold():
    from binaryvit.hw.threshold import ThresholdUnit
    return ThresholdUnit(channels=4, lanes=2, in_width=4, thresh=[0, 1, -2, 3], flip=[0, 1, 0, 1])


def _residual_add():
    from binaryvit.hw.residual_add import ResidualAdd
    return ResidualAdd(channels=4, lanes=2, in_width=4, out_width=4)


def _position_embedding():
    from binaryvit.hw.residual_add import PositionEmbeddingAdd
    return PositionEmbeddingAdd(embedding=[[1, -2], [3, 0]], lanes=1, in_width=4, out_width=4)


def _fifo():
    from binaryvit.hw.fixed_point_stream import fixed_point_layout
    from binaryvit.hw.stream_fifo import StreamFIFO
    return StreamFIFO(fixed_point_layout(3, 1), 4)


def _fifo_pending(probe: Probe) -> Value:
    return probe("level") + probe.kernel.o.valid


PIPELINE = "a registered pipeline with a global stall"

KERNEL_CASES: tuple[FormalCase, ...] = (
    FormalCase("affine", _affine,
               _pipeline_spec(("valid1", "valid2"), (("valid1", "last1"), ("valid2", "last2"))),
               "prove", 4, PIPELINE),
    FormalCase("rprelu", _rprelu,
               _pipeline_spec(("valid1", "valid2", "valid3"),
                              (("valid1", "last1"), ("valid2", "last2"), ("valid3", "last3"))),
               "prove", 4, PIPELINE),
    FormalCase("threshold", _threshold,
               _pipeline_spec(("valid1",), (("valid1", "last1"),)), "prove", 4, PIPELINE),
    FormalCase("residual_add", _residual_add,
               _pipeline_spec((), (), lockstep=("residual",)), "prove", 4,
               "both inputs taken on the same cycle"),
    FormalCase("position_embedding_add", _position_embedding,
               _pipeline_spec(("valid1",), (("valid1", "last1"),)), "prove", 4, PIPELINE),
    FormalCase("stream_fifo", _fifo,
               StreamSpec(outputs=(OutputAccount("o", 1, 1, _fifo_pending, 4),)), "prove", 6,
               "lasts are memory contents: framing is the payload passing through, "
               "not a separate balance"),
)


def case_by_name(name: str) -> FormalCase:
    for case in KERNEL_CASES:
        if case.name == name:
            return case
    raise KeyError(f"{name}: no such formal case (have {[c.name for c in KERNEL_CASES]})")
