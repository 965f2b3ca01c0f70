"""Shared checks for the pointwise-kernel and MAC tests: stimulus runs and lint filtering."""
from __future__ import annotations

import re

import torch

from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import simulate_streams
from binaryvit.sim.lint import lint_verilog

# Warnings that come from how Amaranth's Yosys back end *writes* correct logic, not from
# the logic: signed operands sign-extended by Verilog's context rules (`$signed(a) + b`),
# `x == 0` written as `!x`, temporaries whose shifted-out bits are unread, and named
# wires kept for waveforms after Yosys rewired their readers. sim/lint.py owns the real
# waiver list; these patterns match only those message shapes.
AMARANTH_STYLE = (
    re.compile(r"WIDTHEXPAND: Operator \w+ expects \d+ bits on the [LR]HS, "
               r"but [LR]HS's SIGNED generates \d+ bits\."),
    re.compile(r"WIDTHTRUNC: Logical operator LOGNOT expects 1 bit on the LHS, "
               r"but LHS's VARREF '[^']+' generates \d+ bits\."),
    re.compile(r"UNUSEDSIGNAL: Bits of signal are not used: '\$\d+'\[\d+(:\d+)?\]"),
    re.compile(r"UNUSEDSIGNAL: Signal is not (used|driven, nor used): '[^']+'"),
)


def design_lint_warnings(component, name: str) -> list[str]:
    """Verilator ``-Wall`` warnings on the component's Verilog, less Amaranth style."""
    problems = lint_verilog(to_verilog(component, name), name)
    return [p for p in problems if not any(rule.fullmatch(p) for rule in AMARANTH_STYLE)]


def run_amaranth(dut, inputs: dict[str, list[int]], count: int, *, seed: int,
                 bubble_prob: float = 0.3, stall_prob: float = 0.4):
    """Amaranth simulation of ``dut``; returns the ``StreamRun`` (outputs of port ``o``)."""
    return simulate_streams(dut, inputs, {"o": count}, bubble_prob=bubble_prob,
                            stall_prob=stall_prob, seed=seed)


def random_ints(generator: torch.Generator, low: int, high: int, shape) -> torch.Tensor:
    """Uniform integers in ``[low, high]`` (both included)."""
    return torch.randint(low, high + 1, tuple(shape), generator=generator)


def signed_extremes(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1
