"""The folding pass: how many elements per cycle each layer handles, from a cost model.

A *fold* is a small dict per step:

* ``xnor_popcount_dot`` / ``fixed_mac``: ``simd`` (input elements per cycle) and ``pe``
  (outputs in parallel); output words carry ``pe`` lanes.
* attention (the ``and_popcount_context`` step): ``keys_per_cycle`` ``P`` and ``lanes``
  (context values per output word).
* ``token_patches``: ``simd`` (input bits per word) and ``lanes`` (output bits per word).
* every other kernel: ``lanes``, its elements per word (one word per cycle).

The cost model gives, per step, cycles per image in steady state (``step_cycles``, the
kernel's documented formula) and its logic cells (``step_luts``, from
``binaryvit.hw.estimate.resource_model``, calibrated against Yosys). The pass picks, for every
step, the cheapest fold whose cycles stay within the target, so every stage is as slow
as the target allows and none is needlessly fast; ``binaryvit.hw.estimate.device_fit`` searches
the target for a device.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.hw.estimate.resource_model import FAMILIES
from binaryvit.hw.network.graph import TensorInfo, attention_groups, infer_tensors
from binaryvit.hw.ops.registry import spec_of

__all__ = ["Folding", "fold_network", "step_cycles", "step_luts", "out_lanes", "in_lanes",
           "default_target", "load_overrides", "cycle_range", "candidates"]


def default_target(model: IntModel) -> int:
    """The default cycles per image: 32 per token of the largest grid (2048 for tiny-digits),
    a folding that keeps XNOR arrays small while a digit takes microseconds."""
    tensors = infer_tensors(model)
    return 32 * max(t.tokens for t in tensors.values())


def out_lanes(step: Step, fold: dict[str, int]) -> int:
    """Elements per output word of ``step`` under ``fold``."""
    return spec_of(step.op).out_lanes(step, fold)


def in_lanes(step: Step, fold: dict[str, int]) -> int:
    """Elements per input word the step's kernel reads (its first input)."""
    return spec_of(step.op).in_lanes(step, fold)


def step_cycles(step: Step, fold: dict[str, int], tensors: dict[str, TensorInfo]) -> int:
    """Steady-state cycles per image of the step's kernel under ``fold`` (0: no kernel)."""
    return spec_of(step.op).cycles(step, fold, tensors)


def step_luts(step: Step, fold: dict[str, int], tensors: dict[str, TensorInfo],
              steps: dict[str, Step] | None = None) -> int:
    """Logic cells of the step's kernel on an ECP5 (its op's calibrated structure: its
    datapath, control and the memories Yosys would put in logic; multipliers in DSP
    blocks). The pass ranks a step's folds by it; ``steps`` (name → step) lets a
    position-embedding add see its constant."""
    return round(spec_of(step.op).cost(step, fold, tensors, steps).price(FAMILIES["ecp5"]).luts)


def candidates(step: Step, tensors: dict[str, TensorInfo]) -> list[dict[str, int]]:
    """Every legal fold of ``step`` (its op's spec)."""
    return spec_of(step.op).candidates(step, tensors)


@dataclass
class Folding:
    """The chosen folds and what the cost model predicts for them.

    folds : step name → fold dict.
    cycles : step name → cycles per image; ``bottleneck`` the largest (the network's
        steady-state cycles per image), ``bottleneck_step`` its step.
    luts : step name → LUT estimate; ``total_luts`` their sum.
    target_cycles : the target the pass met.
    """

    folds: dict[str, dict[str, int]]
    cycles: dict[str, int]
    luts: dict[str, int]
    target_cycles: int

    @property
    def bottleneck(self) -> int:
        return max(self.cycles.values())

    @property
    def bottleneck_step(self) -> str:
        return max(self.cycles, key=self.cycles.get)

    @property
    def total_luts(self) -> int:
        return sum(self.luts.values())


def _validate_fold(step: Step, fold: dict[str, Any], tensors: dict[str, TensorInfo]) -> dict:
    allowed = set(spec_of(step.op).fold_keys)
    unknown = set(fold) - allowed
    if unknown:
        raise FoldingError(f"fold of step {step.name!r} ({step.op}): unknown keys "
                           f"{sorted(unknown)}; valid keys are {sorted(allowed)}")
    legal = candidates(step, tensors)
    for key, value in fold.items():
        values = sorted({c[key] for c in legal})
        if value not in values:
            raise FoldingError(f"fold of step {step.name!r}: {key}={value!r} is not valid; "
                               f"valid values are {values}")
    return dict(fold)


def load_overrides(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Per-step fold overrides from a JSON file ``{step: {key: value}}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"folding overrides {path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"folding overrides {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"folding overrides {path}: expected {{step name: {{key: value}}}}")
    return data


def _fold_at(model: IntModel, tensors: dict[str, TensorInfo], target: int,
             overrides: dict[str, dict[str, int]]) -> Folding | tuple[str, int]:
    folds, cycles, luts = {}, {}, {}
    steps = {s.name: s for s in model.steps}
    for s in model.steps:
        if s.name in overrides:
            base = _best(s, tensors, target, steps) or candidates(s, tensors)[-1]
            fold = _validate_fold(s, {**base, **overrides[s.name]}, tensors)
        else:
            fold = _best(s, tensors, target, steps)
            if fold is None:
                best = min(step_cycles(s, c, tensors) for c in candidates(s, tensors))
                return s.name, best
        folds[s.name] = fold
        cycles[s.name] = step_cycles(s, fold, tensors)
        luts[s.name] = step_luts(s, fold, tensors, steps)
    folding = Folding(folds, cycles, luts, target)
    slowed = _flush_bound(model, tensors, folding)
    if slowed is not None:
        tighter = _fold_at(model, tensors, slowed, overrides)
        if isinstance(tighter, Folding):
            return replace(tighter, target_cycles=target)
    return folding


def _flush_bound(model: IntModel, tensors, folding: Folding) -> int | None:
    """The cycles the bottleneck must come down to so that no strip pool's flush slows the
    network, or None when none does.

    A strip pool whose input waits at an image boundary carries the image's tail on the
    next image's first units; when none waits it flushes the tail a unit at a time, and a
    next image arriving mid-unit waits for the unit. With images ``B`` (the bottleneck)
    cycles apart, a pool of ``c < B`` cycles per image is never slowed when ``B ≥ c + U``
    (``U``: its flush unit in words, one a cycle) and is never waiting at ``B = c``; in
    between it falls behind and catches up again, a pattern that does not repeat every
    image. So the pass lowers such a bottleneck to the largest such ``c``."""
    bottleneck = folding.bottleneck
    bound = [folding.cycles[s.name] for s in model.steps
             if folding.cycles[s.name] < bottleneck
             < folding.cycles[s.name] + spec_of(s.op).flush_unit(s, folding.folds[s.name], tensors)]
    return max(bound) if bound else None


def _best(step: Step, tensors, target: int, steps: dict[str, Step]) -> dict | None:
    options = [c for c in candidates(step, tensors) if step_cycles(step, c, tensors) <= target]
    if not options:
        return None
    return min(options, key=lambda c: (step_luts(step, c, tensors, steps),
                                       -step_cycles(step, c, tensors), sorted(c.items())))


def cycle_range(model: IntModel) -> tuple[int, int]:
    """Cycles per image of the most parallel folding and of the slowest one."""
    return _cycle_range(model, infer_tensors(model))


def _cycle_range(model: IntModel, tensors: dict[str, TensorInfo]) -> tuple[int, int]:
    best = max(min(step_cycles(s, c, tensors) for c in candidates(s, tensors))
               for s in model.steps)
    slowest = max(step_cycles(s, c, tensors) for s in model.steps
                  for c in candidates(s, tensors))
    return best, slowest


def fold_network(model: IntModel, *, target_cycles: int | None = None,
                 lut_budget: int | None = None,
                 overrides: dict[str, dict[str, int]] | None = None) -> Folding:
    """Choose every step's fold.

    Parameters
    ----------
    target_cycles : cycles per image every stage must meet (default ``default_target``).
    lut_budget : instead of a target, the fastest folding whose LUT estimate fits.
    overrides : step name → fold keys to force (the rest chosen by the pass).

    Raises
    ------
    FoldingError
        The target is below what the most parallel folding reaches (the message gives that
        figure and the limiting step), the budget is below the smallest folding's LUTs, or
        an override is not a valid fold.
    """
    tensors = infer_tensors(model)
    attention_groups(model)
    overrides = dict(overrides or {})
    names = {s.name for s in model.steps}
    for name in overrides:
        if name not in names:
            raise FoldingError(f"folding override for {name!r}: no such step in the model")
    if target_cycles is not None and lut_budget is not None:
        raise ConfigError("give either target_cycles or lut_budget, not both")
    best, slowest = _cycle_range(model, tensors)
    if lut_budget is not None:
        lo, hi = best, slowest
        result = _fold_at(model, tensors, hi, overrides)
        if isinstance(result, tuple) or result.total_luts > lut_budget:
            luts = result.total_luts if isinstance(result, Folding) else "?"
            raise FoldingError(f"lut_budget={lut_budget} is below the smallest folding's "
                               f"estimate of {luts} LUTs ({slowest} cycles per image)")
        while lo < hi:  # the smallest target whose folding fits the budget
            mid = (lo + hi) // 2
            trial = _fold_at(model, tensors, mid, overrides)
            if isinstance(trial, Folding) and trial.total_luts <= lut_budget:
                hi = mid
            else:
                lo = mid + 1
        return _fold_at(model, tensors, hi, overrides)
    target = default_target(model) if target_cycles is None else target_cycles
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise ConfigError(f"target_cycles must be a positive integer, got {target!r}")
    result = _fold_at(model, tensors, target, overrides)
    if isinstance(result, tuple):
        step, cycles = result
        raise FoldingError(f"target_cycles={target} cannot be met: step {step!r} needs at "
                           f"least {cycles} cycles per image at its most parallel fold; the "
                           f"best achievable for this network is {best} cycles per image")
    return result
