"""Shared helpers for the pointwise-kernel and MAC tests: stimulus, simulation runs, lint."""
from __future__ import annotations

import torch

from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import simulate_streams
from binaryvit.sim.lint import lint_verilog


def lint_warnings(component, name: str) -> list[str]:
    """Verilator ``-Wall`` warnings on the component's Verilog (after sim.lint's waivers)."""
    return lint_verilog(to_verilog(component, name), name)


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
