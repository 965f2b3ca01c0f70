"""Fit the network to a board: its resource estimate against the device, and the fastest
folding whose estimate fits.

``check_fit`` compares an estimate (``binaryvit.hw.estimate.resource_model``) with a board's
capacity under a utilisation margin: logic cells and flip-flops may fill ``margin`` of the
device (default 0.95 of the estimate: nextpnr placed and routed tiny-digits networks at
87.5 %, 82 % and 90 % of the ECP5-85F's ``TRELLIS_COMB``, for which the estimate said 94 %,
89 % and 93 %: the logic estimate runs 3–8 % high on a whole network), block RAMs and DSP
blocks all of it (their count follows Yosys' mapping rules exactly). ``fold_for_board`` walks cycle targets from the fastest folding to
the slowest and returns the first whose network fits; when even the slowest does not, its
``FoldingError`` names each overflowing resource, by how much, and the smallest folding's
figures.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.hw.boards.definitions import Board
from binaryvit.hw.estimate.network_estimate import NetworkResources, network_resources
from binaryvit.hw.estimate.resource_model import FAMILIES, Resources
from binaryvit.hw.network.folding import cycle_range, fold_network
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.network.planner import plan_network

__all__ = ["Overflow", "DeviceFit", "capacity_of", "check_fit", "board_family",
           "estimate_network", "fold_for_board", "resource_report", "estimate_lines",
           "DEFAULT_MARGIN", "LUT_RAM_OPTIONS"]

DEFAULT_MARGIN = 0.95
_FIELDS = ("luts", "ffs", "brams", "dsps", "sprams")
# LUT-RAM limits ``(words, bits)`` tried in turn on a family with LUT RAM: the first
# (fewest RAMs moved out of block RAM) whose estimate fits is kept and built.
LUT_RAM_OPTIONS: tuple[tuple[int, int] | None, ...] = (None, (66, 20), (130, 20), (130, 36),
                                                        (258, 36))


@dataclass(frozen=True)
class Overflow:
    """One resource the estimate does not fit: ``needed`` against the ``limit`` allowed
    (``available`` cells of the device times the margin for logic)."""

    resource: str
    needed: int
    available: int
    limit: int

    def line(self) -> str:
        share = f"{100 * self.needed / self.available:.0f} % of {self.available}"
        over = self.needed - self.limit
        if self.limit < self.available:
            return (f"{self.resource}: {self.needed} needed, {share}; the limit is {self.limit} "
                    f"({100 * self.limit / self.available:.0f} %): {over} over")
        return f"{self.resource}: {self.needed} needed of {self.available} ({share}): {over} over"


@dataclass
class DeviceFit:
    """An estimate against one board.

    needed, capacity : Resources (capacity in the board's cells); margin : the share of
        logic cells and flip-flops allowed; overflows : one per resource over its limit;
        lut_ram_limits : the LUT-RAM limits the estimate assumed (``board_build`` applies
        them), ``None``: Yosys' own choice everywhere.
    """

    board: str
    needed: Resources
    capacity: Resources
    margin: float
    cell_names: tuple[str, str, str, str, str | None]
    overflows: list[Overflow]
    lut_ram_limits: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.overflows

    def utilisation(self) -> dict[str, tuple[int, int]]:
        """nextpnr cell name → (needed, available); the iCE40's logic cells hold both its
        LUTs and its flip-flops, so only the larger of the two is given. The iCE40's DSPs
        and single-port RAMs appear only when the design uses them (the engine does, the
        dataflow network does not)."""
        rows: dict[str, tuple[int, int]] = {}
        needed, capacity = self.needed.rounded(), self.capacity.rounded()
        for name, field in zip(self.cell_names, _FIELDS):
            optional = name in ("ICESTORM_DSP", "ICESTORM_SPRAM")
            if optional and not needed[field]:
                continue
            if capacity[field] and needed[field] >= rows.get(name, (0, 0))[0]:
                rows[name] = (needed[field], capacity[field])
        return rows

    def to_json(self) -> dict:
        return {"board": self.board, "margin": self.margin, "fits": self.ok,
                "lut_ram_limits": list(self.lut_ram_limits) if self.lut_ram_limits else None,
                "needed": self.needed.rounded(), "capacity": self.capacity.rounded(),
                "utilisation": {k: {"needed": n, "available": a}
                                for k, (n, a) in self.utilisation().items()},
                "overflows": [o.line() for o in self.overflows]}


def capacity_of(board: Board) -> Resources:
    """The board's device in resource-model fields (``ConfigError`` for a board without a
    resource model, the Arty)."""
    family = FAMILIES.get(board.family)
    if family is None:
        raise ConfigError(f"board {board.name}: no resource model for the {board.family} "
                          f"family; fit estimates cover {', '.join(FAMILIES)}")
    cells = [board.capacity.get(name, 0) if name else 0 for name in family.cell_names]
    return Resources(luts=cells[0], ffs=cells[1], brams=cells[2], dsps=cells[3],
                     sprams=cells[4])


def check_fit(needed: Resources, board: Board, margin: float = DEFAULT_MARGIN,
              lut_ram_limits: tuple[int, int] | None = None) -> DeviceFit:
    """``needed`` against ``board`` with logic and flip-flops limited to ``margin``."""
    if not 0 < margin <= 1:
        raise ConfigError(f"margin: expected a share in (0, 1], got {margin!r}")
    capacity = capacity_of(board)
    names = FAMILIES[board.family].cell_names
    overflows = []
    have, need = capacity.rounded(), needed.rounded()
    for name, field in zip(names, _FIELDS):
        if field == "ffs" and name == names[0]:
            continue   # iCE40: flip-flops sit in the logic cells the LUT figure counts
        limit = math.floor(have[field] * margin) if field in ("luts", "ffs") else have[field]
        if need[field] > limit and (have[field] or need[field]):
            overflows.append(Overflow(name, need[field], have[field], limit))
    return DeviceFit(board.name, needed, capacity, margin, names, overflows, lut_ram_limits)


def board_family(board: Board, lut_ram_limits: tuple[int, int] | None = None):
    """``board``'s family in the resource model, with the build's LUT-RAM limits."""
    capacity_of(board)
    return dataclasses.replace(FAMILIES[board.family], lut_ram_limits=lut_ram_limits)


def estimate_network(plan: NetworkPlan, board: Board,
                     lut_ram_limits: tuple[int, int] | None = None) -> NetworkResources:
    """The resource estimate of a planned network on ``board``'s family."""
    return network_resources(plan, board_family(board, lut_ram_limits))


def _fit(network: NetworkPlan, board: Board, margin: float) -> DeviceFit:
    """The first LUT-RAM option under which ``network`` fits, else the one that misses by
    the least (the sum of each overflow's share of its device resource)."""
    options = LUT_RAM_OPTIONS if FAMILIES[board.family].lut_ram is not None else (None,)
    fits = []
    for limits in options:
        fit = check_fit(estimate_network(network, board, limits).total, board, margin, limits)
        if fit.ok:
            return fit
        fits.append(fit)
    return min(fits, key=lambda f: sum((o.needed - o.limit) / o.available for o in f.overflows))


def _targets(model: IntModel) -> list[int]:
    """Cycle targets from the most parallel folding's to the slowest, √2 apart."""
    best, slowest = cycle_range(model)
    targets, t = [], float(best)
    while t < slowest:
        targets.append(int(t))
        t *= math.sqrt(2)
    return targets + [slowest]


def fold_for_board(model: IntModel, board: Board, *, margin: float = DEFAULT_MARGIN,
                   overrides: dict[str, dict[str, int]] | None = None,
                   refine: int = 4) -> tuple[NetworkPlan, DeviceFit]:
    """The plan of the fastest folding whose estimate fits ``board``, and its fit (the
    plan ``generate`` elaborates; its ``folding`` is the chosen one).

    The slowest (smallest) folding is checked first: when it does not fit, ``FoldingError``
    names each overflowing resource, by how much, and its figures. Otherwise targets √2
    apart are tried from the fastest, each with the LUT-RAM options in turn; between the
    first target that fits and the one before it, ``refine`` bisection steps look for a
    faster fit.
    """
    family = board_family(board)
    targets = _targets(model)
    smallest = fold_network(model, target_cycles=targets[-1], overrides=overrides)
    fit = _fit(plan_network(model, smallest), board, margin)
    if not fit.ok:
        raise FoldingError(
            f"no folding fits the {board.description}: at the smallest ({smallest.bottleneck} "
            f"cycles per image) " + "; ".join(o.line() for o in fit.overflows)
            + f" (estimate {_figures(fit)}){_format_hint(fit, family)}")
    previous = None
    for target in targets:
        folding = fold_network(model, target_cycles=target, overrides=overrides)
        plan = plan_network(model, folding)
        fit = _fit(plan, board, margin)
        if fit.ok:
            break
        previous = target
    best = (plan, fit)
    lo, hi = (previous or target) + 1, target
    for _ in range(refine if previous else 0):
        if lo >= hi:
            break
        mid = (lo + hi) // 2
        trial = fold_network(model, target_cycles=mid, overrides=overrides)
        trial_plan = plan_network(model, trial)
        trial_fit = _fit(trial_plan, board, margin)
        if trial_fit.ok:
            best, hi = (trial_plan, trial_fit), mid
        else:
            lo = mid + 1
    return best


def _figures(fit: DeviceFit) -> str:
    return ", ".join(f"{name} {n}/{a}" for name, (n, a) in fit.utilisation().items())


def _format_hint(fit: DeviceFit, family) -> str:
    """What to change when the DSP blocks overflow because the multipliers are wider than
    the device's."""
    if not family.dsp_width or not any(o.resource == family.cell_names[3] for o in fit.overflows):
        return ""
    return (f"; the multipliers are wider than the {family.dsp_width}×{family.dsp_width} "
            f"DSP blocks: quantize with --stream-width {family.dsp_width - 1} --const-bits "
            f"{family.dsp_width} (binaryvit flow --board does)")


def resource_report(plan: NetworkPlan, fit: DeviceFit | None = None) -> dict:
    """What ``estimate.json`` records about resources: per family (iCE40, ECP5; the ECP5
    with the fit's LUT-RAM limits when ``fit`` is an ECP5 fit) the totals, each part's
    estimate, and every memory with where Yosys puts it and why."""
    report = {}
    for name, family in FAMILIES.items():
        if fit is not None and fit.lut_ram_limits and family.lut_ram is not None:
            family = dataclasses.replace(family, lut_ram_limits=fit.lut_ram_limits)
        estimate = network_resources(plan, family)
        report[name] = {
            "total": estimate.total.rounded(),
            "lut_ram_limits": list(family.lut_ram_limits) if family.lut_ram_limits else None,
            "parts": {part: res.rounded() for part, res in estimate.parts.items()},
            "memories": [{"part": part, "memory": mp.memory.name, "width": mp.memory.width,
                          "depth": mp.memory.depth, "rom": not mp.memory.writable,
                          "kind": mp.kind, "cells": mp.cells, "geometry": mp.geometry,
                          "reason": mp.reason}
                         for part, maps in estimate.memories.items() for mp in maps],
        }
    return report


def estimate_lines(estimate: dict) -> list[str]:
    """The resource estimate of ``estimate.json`` in a few lines: per family the totals, and
    the board fit when generated for a board."""
    lines = []
    for family, figures in estimate["resources"].items():
        total = figures["total"]
        lines.append(f"{family}: {total['luts']} logic cells, {total['ffs']} flip-flops, "
                     f"{total['brams']} block RAMs, {total['dsps']} DSPs (estimate)")
    device = estimate.get("device")
    if device:
        lines.append(f"fits {device['board']} (logic within {100 * device['margin']:.0f} %): "
                     + ", ".join(f"{name} {u['needed']}/{u['available']}"
                                 for name, u in device["utilisation"].items()))
    return lines
