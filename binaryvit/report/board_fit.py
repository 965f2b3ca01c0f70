"""Each board's fit as the report draws it: per resource the estimate, the device, the limit
the flow holds it to, and nextpnr's count once built.

The estimate (``estimate.json``'s ``resources.<family>.total``) is checked with
``check_fit`` at the flow's margin (``DEFAULT_MARGIN``: logic cells and flip-flops within
0.95 of the device, block RAM and DSPs within all of it), the check ``binaryvit generate
--board`` and ``flow --board`` make. A board without a resource model (the Arty) appears
only once built, with nextpnr's / Yosys' counts alone.
"""
from __future__ import annotations

import math

from binaryvit.hw.boards.board_build import BuildResult
from binaryvit.hw.boards.definitions import BOARDS, Board
from binaryvit.hw.estimate.device_fit import DEFAULT_MARGIN, check_fit
from binaryvit.hw.estimate.resource_model import FAMILIES, Resources

__all__ = ["board_title", "fit_panels"]

_KINDS = ("logic", "flip-flops", "block RAM", "DSP", "single-port RAM")


def board_title(board: Board, fits: bool | None) -> str:
    """``"Radiona ULX3S: fits\\nLattice ECP5 LFE5U-85F-6BG381"`` (no verdict when ``None``)."""
    name, _, chip = board.description.partition(", ")
    chip = chip.split(" (", 1)[0]
    verdict = "" if fits is None else (": fits" if fits else ": does not fit")
    return f"{name}{verdict}\n{chip}"


def fit_panels(estimate: dict | None, builds: dict[str, BuildResult],
               margin: float = DEFAULT_MARGIN) -> list[dict]:
    """The panels ``figures.fit_per_board_png`` draws, one per board with an estimate or a
    build, in ``BOARDS``' order."""
    resources = (estimate or {}).get("resources") or {}
    panels = []
    for name, board in BOARDS.items():
        build = builds.get(name)
        figures = resources.get(board.family)
        rows = []
        fits = None
        if figures is not None and board.family in FAMILIES:
            fit = check_fit(Resources(**figures["total"]), board, margin)
            fits = fit.ok
            names = FAMILIES[board.family].cell_names
            kinds: dict[str, str] = {}
            for cell, kind in zip(names, _KINDS):   # the iCE40's logic cells hold its FFs too
                kinds.setdefault(cell, kind)
            for cell, (needed, available) in fit.utilisation().items():
                limit = math.floor(available * margin) if cell in names[:2] else available
                used = build.utilisation.get(cell) if build else None
                rows.append({"resource": cell, "kind": kinds[cell], "needed": needed,
                             "available": available, "limit": limit,
                             "built": used.used if used else None})
        elif build is not None:
            rows = [{"resource": cell, "kind": "built", "needed": None,
                     "available": usage.available, "limit": usage.available,
                     "built": usage.used}
                    for cell, usage in build.utilisation.items()
                    if cell in board.capacity and usage.available]
        if rows:
            panels.append({"board": name, "title": board_title(board, fits), "rows": rows})
    return panels
