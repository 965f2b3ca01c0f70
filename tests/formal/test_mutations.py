"""Each property kind fails on a kernel broken in that one way (``sim/formal/mutations.py``).

A property that cannot fail proves nothing; these runs show the harness catches the fault
each property is about. They use SymbiYosys ``bmc`` from the initial state, so a FAIL is a
real trace from reset (not an induction step from an unreachable state), and check that
the failing assertion is of the expected kind.
"""
from __future__ import annotations

import pytest

from binaryvit.sim.formal.kernel_cases import case_by_name
from binaryvit.sim.formal.mutations import MUTANTS, Mutant
from binaryvit.sim.formal.sby_runner import run_sby

OUTPUT_FAULTS = [kind for kind in MUTANTS if kind != "early_input"]


def _mutant_fails(case_name: str, kind: str, depth: int, tmp_path) -> None:
    case = case_by_name(case_name)
    harness = case.harness(lambda: Mutant(case.build(), kind))
    result = run_sby(harness, harness.ports, f"{case_name}-{kind}", mode="bmc", depth=depth,
                     workdir=tmp_path)
    assert result.status == "FAIL", f"{kind} on {case_name}: {result.status}\n{result.log[-1500:]}"
    expected = MUTANTS[kind]
    assert any(p.startswith(expected + ":") for p in result.failed), (
        f"{kind} on {case_name} should fail {expected}, failed {result.failed}")


@pytest.mark.parametrize("kind", OUTPUT_FAULTS)
def test_pipeline_fault_is_caught(kind, tmp_path):
    _mutant_fails("affine", kind, 8, tmp_path)


def test_secondary_input_taken_alone_is_caught(tmp_path):
    _mutant_fails("residual_add", "early_input", 4, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", OUTPUT_FAULTS)
def test_mvu_fault_is_caught(kind, tmp_path):
    _mutant_fails("mvu", kind, 14, tmp_path)


# Each kernel whose balance and framing are tied to its own registers, with a depth that
# lets a word with ``last`` through (lasts held in FIFO memories are not balanced).
INVARIANT_KERNELS = {"rprelu": 8, "threshold": 6, "position_embedding_add": 6, "stream_fifo": 8,
                     "stream_width_split": 8, "stream_width_gather": 10, "channel_tile": 12,
                     "argmax": 10, "fixed_mac": 12, "global_avgpool": 12,
                     "channel_group_avgpool": 6, "patch_unfold": 12, "token_buffer": 14,
                     "strip_avgpool": 12, "binary_attention": 16,
                     "stream_edge": 14}
NO_FRAMING = {"stream_fifo", "stream_edge"}


# A dropped ``last`` is not sought in NO_FRAMING kernels: their lasts are payload stored in
# memory, with no framing balance to break.
BALANCE_FAULTS = [(kernel, kind) for kernel in sorted(INVARIANT_KERNELS)
                  for kind in ("lose_word", "duplicate_word", "drop_last")
                  if not (kind == "drop_last" and kernel in NO_FRAMING)]


@pytest.mark.slow
@pytest.mark.parametrize("kernel, kind", BALANCE_FAULTS)
def test_balance_fault_is_caught_in_every_kernel(kernel, kind, tmp_path):
    _mutant_fails(kernel, kind, INVARIANT_KERNELS[kernel], tmp_path)


def test_bounded_balance_catches_a_duplicated_word(tmp_path):
    """Without an occupancy invariant (``pending=None``) the balance is only kept in range,
    for bounded checks: that still passes on the kernel and still catches a duplicate."""
    from binaryvit.sim.formal.stream_properties import (OutputAccount, StreamProtocolHarness,
                                                        StreamSpec)

    spec = StreamSpec(outputs=(OutputAccount("o", 1, 1, None, 3),))
    build = case_by_name("affine").build
    for kernel, expected in ((build(), "PASS"), (Mutant(build(), "duplicate_word"), "FAIL")):
        harness = StreamProtocolHarness(kernel, spec)
        result = run_sby(harness, harness.ports, f"bounded-{expected}", mode="bmc", depth=8,
                         workdir=tmp_path)
        assert result.status == expected, result.log[-1500:]
    assert {"balance_range: o", "framing_range: o"} & set(result.failed), result.failed


def test_a_kernel_without_the_probed_register_is_refused():
    """An invariant naming a register the kernel lacks fails at construction, loudly."""
    from amaranth.back import rtlil

    from binaryvit.sim.formal.stream_properties import (OutputAccount, StreamProtocolHarness,
                                                        StreamSpec)

    case = case_by_name("threshold")
    account = OutputAccount("o", 1, 1, lambda probe: probe("no_such_register"), 2)
    spec = StreamSpec(outputs=(account,))
    harness = StreamProtocolHarness(case.build(), spec)
    with pytest.raises(KeyError, match="no_such_register"):
        rtlil.convert(harness, ports=harness.ports)
    _forget_half_built_designs()


def _forget_half_built_designs() -> None:
    """Collect the modules a refused elaboration left behind now, so Amaranth's
    "created but never used" warning is not reported against a later test."""
    import gc
    import sys
    import warnings

    sys.last_traceback = sys.last_value = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
