"""Write OUT/reports/report.md: accuracy, cycles and LUTs per layer, and each board build.

Reads what earlier stages left in OUT: manifest.json (the checkpoint's float accuracy),
reports/estimate.json (`binaryvit generate`: cycles and LUTs per layer), reports/sim.json
(`binaryvit sim`: integer reference and RTL accuracy, measured cycles per image) and
build/<board>/build.json (`binaryvit build`: utilisation, Fmax, overflow). Tables are
Markdown; plots are PNGs beside the report. An input that is missing is named in the
report together with the command that makes it; the rest is still reported.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binaryvit.atomic import atomic_file, write_text_atomic
from binaryvit.hw.boards.board_build import BUILD_JSON, BuildResult
from binaryvit.hw.boards.definitions import BOARDS
from binaryvit.hw.estimate.device_fit import check_fit
from binaryvit.hw.estimate.resource_model import Resources

NAME = "report"
HELP = "write OUT/reports/report.md with tables and plots of accuracy, cycles, LUTs, Fmax"
ORDER = 70

OPS_PER_LANE = 2   # one XNOR and one popcount add per lane per cycle (anchors_hw.md §1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", nargs="?", default="out",
                        help="output folder (default out/)")


@dataclass
class ReportInputs:
    """What OUT holds; ``missing`` lists absent inputs with the command that makes each."""

    manifest: dict | None = None
    estimate: dict | None = None
    sim: dict | None = None
    builds: dict[str, BuildResult] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _load_json(path: Path, inputs: ReportInputs, how: str) -> dict | None:
    if not path.is_file():
        inputs.missing.append(f"`{path}` (make it with `{how}`)")
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        inputs.missing.append(f"`{path}` is not valid JSON ({exc}); re-run `{how}`")
        return None


def read_inputs(out: Path) -> ReportInputs:
    inputs = ReportInputs()
    inputs.manifest = _load_json(out / "manifest.json", inputs, f"binaryvit quantize CKPT -o {out}")
    inputs.estimate = _load_json(out / "reports" / "estimate.json", inputs, f"binaryvit generate {out}")
    inputs.sim = _load_json(out / "reports" / "sim.json", inputs, f"binaryvit sim {out}")
    for name in BOARDS:
        path = out / "build" / name / BUILD_JSON
        if path.is_file():
            try:
                inputs.builds[name] = BuildResult.load(path)
            except Exception as exc:  # a damaged record is reported, not fatal
                inputs.missing.append(f"`{path}` is unreadable ({exc})")
    if not inputs.builds:
        inputs.missing.append(f"`{out}/build/<board>/{BUILD_JSON}` (make it with "
                              f"`binaryvit build {out} --board icebreaker|ulx3s|arty`)")
    return inputs


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _save_plot(figure, path: Path) -> None:
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _layer_plots(estimate: dict, sim: dict | None, folder: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = estimate.get("layers", [])
    if not layers:
        return []
    names = [layer["name"] for layer in layers]
    measured = {layer["name"]: layer.get("cycles_per_image")
                for layer in (sim or {}).get("layers", [])}
    x = range(len(names))
    height = max(3.0, 0.28 * len(names))
    fig, ax = plt.subplots(figsize=(8, height))
    ax.barh([i - 0.2 for i in x], [layer["cycles_per_image"] for layer in layers], 0.4,
            label="estimated (cost model)")
    ax.barh([i + 0.2 for i in x], [layer.get("ideal_cycles_per_image", 0) for layer in layers],
            0.4, label="ideal (work / lanes)")
    if any(measured.get(n) for n in names):
        ax.scatter([measured.get(n) or 0 for n in names], list(x), color="black", zorder=3,
                   label="measured (Verilator)")
    ax.set_yticks(list(x), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("cycles per image")
    ax.legend(fontsize=8)
    _save_plot(fig, folder / "cycles_per_layer.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, height))
    ax.barh(list(x), [layer.get("luts", 0) for layer in layers])
    ax.set_yticks(list(x), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ECP5 logic cells (resource estimate)")
    _save_plot(fig, folder / "luts_per_layer.png")
    plt.close(fig)
    return ["cycles_per_layer.png", "luts_per_layer.png"]


def _utilisation_plot(builds: dict[str, BuildResult], folder: Path) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [(f"{name}\n{res}", u.used / u.available)
            for name, build in builds.items() for res, u in build.utilisation.items()
            if res in BOARDS[name].capacity and u.available]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(bars)), 3.5))
    ax.bar(range(len(bars)), [100 * share for _, share in bars],
           color=["tab:red" if share > 1 else "tab:blue" for _, share in bars])
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=7)
    ax.set_ylabel("% of device")
    _save_plot(fig, folder / "utilisation.png")
    plt.close(fig)
    return "utilisation.png"


def board_rows(inputs: ReportInputs) -> list[list[Any]]:
    """One row per built board: resources, Fmax vs target, images/s, GOPS/kLUT."""
    estimate, sim = inputs.estimate or {}, (inputs.sim or {}).get("totals", {})
    cycles = sim.get("cycles_per_image_measured") or estimate.get("cycles_per_image")
    lanes, utilisation = estimate.get("xnor_lanes"), estimate.get("xnor_utilisation")
    rows = []
    for name, build in inputs.builds.items():
        board = BOARDS[name]
        luts = build.utilisation.get(board.lut_resource)
        lut_count = luts.used if luts else sum(n for c, n in build.yosys_cells.items()
                                               if c.startswith("LUT"))
        rams = [f"{r} {u.used}/{u.available}" for r, u in build.utilisation.items()
                if r in board.capacity and r != board.lut_resource and u.used]
        fmax = max((f["achieved"] for f in build.fmax_mhz.values()), default=None)
        target = board.fmax_target_mhz
        fmax_text = "—" if fmax is None else f"{fmax:.1f}" + (
            f" ({'meets' if fmax >= target else 'below'} {target})" if target else "")
        ips = f"{fmax * 1e6 / cycles:,.0f}" if fmax and cycles else "—"
        gops = "—"
        if fmax and lanes and utilisation and lut_count:
            peak = OPS_PER_LANE * lanes * fmax * 1e-3 / (lut_count / 1000)
            gops = f"{peak:.2f} ({peak * utilisation:.2f})"
        fit = "fits" if build.ok and not build.overflows else "; ".join(build.overflows) or "failed"
        rows.append([name, f"{lut_count}" + (f"/{luts.available}" if luts else " (yosys)"),
                     ", ".join(rams) or "—", fmax_text, ips, gops, fit])
    return rows


def fit_lines(inputs: ReportInputs) -> list[str]:
    """Per board with a resource model: each resource's estimate (``estimate.json``) and,
    once built, what nextpnr counted, against the device, with the excess of each one that
    overflows; then where the memories went and why."""
    resources = (inputs.estimate or {}).get("resources")
    if not resources:
        return ["No resource estimate in estimate.json (re-run `binaryvit generate`).", ""]
    lines = []
    device = (inputs.estimate or {}).get("device")
    if device:
        lines += [f"Folded for **{device['board']}**: logic within {100 * device['margin']:.0f} % "
                  f"of the device, block RAM and DSPs within all of it"
                  + (f"; RAMs of at most {device['lut_ram_limits'][0]} words × "
                     f"{device['lut_ram_limits'][1]} bits in LUT RAM"
                     if device.get("lut_ram_limits") else "") + ".", ""]
    rows = []
    for name, board in BOARDS.items():
        figures = resources.get(board.family)
        if figures is None:
            continue
        fit = check_fit(Resources(**figures["total"]), board, 1.0)
        build = inputs.builds.get(name)
        over = {o.resource: o.needed - o.available for o in fit.overflows}
        for cell, (needed, available) in fit.utilisation().items():
            measured = build.utilisation.get(cell) if build else None
            verdict = f"**{over[cell]} over**" if cell in over else "fits"
            if measured is not None and measured.used > available:
                verdict += f"; built: **{measured.used - available} over**"
            rows.append([board.name, cell, needed,
                         measured.used if measured is not None else "—", available,
                         f"{100 * needed / available:.0f} %", verdict])
    lines += _table(["board", "resource", "estimate", "nextpnr", "device", "estimate / device",
                     "fit"], rows)
    lines += ["Estimate: `binaryvit.hw.estimate.resource_model` (Yosys' memory mapping rules, kernels "
              "calibrated against synth_ice40 / synth_ecp5); nextpnr: the build's count "
              "(`binaryvit build`, `--force` for a design the estimate refuses).", ""]
    for family, figures in resources.items():
        memories = figures.get("memories", [])
        kinds: dict[str, list] = {}
        for memory in memories:
            kinds.setdefault(memory["kind"], []).append(memory)
        summary = ", ".join(f"{len(v)} {k} ({sum(m['cells'] for m in v)} cells)" if k != "logic"
                            else f"{len(v)} in logic" for k, v in sorted(kinds.items()))
        lines.append(f"- {family} memories: {summary}.")
        logic = sorted(kinds.get("logic", []), key=lambda m: -m["width"] * m["depth"])[:3]
        for memory in logic:
            kind = "ROM" if memory["rom"] else "RAM"
            lines.append(f"  - {memory['part']}.{memory['memory']} ({kind} {memory['width']} × "
                         f"{memory['depth']}): {memory['reason']}")
    return lines + [""]


def write_report(out: str | Path) -> Path:
    """Write ``OUT/reports/report.md`` (and its PNGs); return its path."""
    out = Path(out)
    folder = out / "reports"
    inputs = read_inputs(out)
    config = (inputs.manifest or {}).get("config", {}).get("name", "unknown config")
    lines = [f"# binaryvit report — {config}", "", f"Output folder: `{out}`", ""]
    if inputs.missing:
        lines += ["## Missing inputs", "", "These sections are incomplete because these "
                  "files are absent:", ""] + [f"- {m}" for m in inputs.missing] + [""]

    metrics = ((inputs.manifest or {}).get("checkpoint") or {}).get("metrics", {})
    totals = (inputs.sim or {}).get("totals", {})
    images = totals.get("images")
    lines += ["## Accuracy", ""] + _table(
        ["model", "top-1", "on"],
        [["float (PyTorch)", _pct(metrics.get("test_accuracy")), "the test split (checkpoint)"],
         ["integer reference", _pct(totals.get("ref_top1")), f"{images} test images" if images else "—"],
         ["RTL (Verilator)", _pct(totals.get("hw_top1")), f"{images} test images" if images else "—"]])
    if totals:
        lines += [f"RTL logits differing from the integer reference: **{totals.get('mismatches')}** "
                  f"of {images} images (bit-exact means 0).", ""]

    estimate = inputs.estimate or {}
    if estimate:
        lines += ["## Cycles per image", ""] + _table(
            ["", "cycles per image"],
            [["estimated (cost model, bottleneck " + str(estimate.get("bottleneck")) + ")",
              estimate.get("cycles_per_image")],
             ["ideal (work / lanes)", estimate.get("ideal_cycles_per_image")],
             ["measured (Verilator, steady state)",
              totals.get("cycles_per_image_measured", "— (no sim.json)")]])
        measured = {layer["name"]: layer.get("cycles_per_image")
                    for layer in (inputs.sim or {}).get("layers", [])}
        rows = [[layer["name"], layer["op"],
                 " ".join(f"{k}={v}" for k, v in sorted((layer.get("fold") or {}).items())),
                 layer["cycles_per_image"], layer.get("ideal_cycles_per_image", "—"),
                 measured.get(layer["name"], "—"), layer.get("luts", "—")]
                for layer in estimate.get("layers", [])]
        lines += ["## Per layer", ""] + _table(
            ["layer", "op", "fold", "cycles est.", "cycles ideal", "cycles measured",
             "ECP5 LUT4 est."],
            rows)
        if not measured:
            lines += ["Measured cycles per layer: not in sim.json (it records whole-network "
                      "cycles only).", ""]
        for png in _layer_plots(estimate, inputs.sim, folder):
            lines += [f"![{png}]({png})", ""]
        lines += ["## Fit (resource estimate and builds)", ""] + fit_lines(inputs)

    if inputs.builds:
        lines += ["## Boards (nextpnr, YoWASP)", ""] + _table(
            ["board", "LUT4 / LC used", "block RAM / DSP", "Fmax MHz (target)", "images/s at Fmax",
             "binary GOPS/kLUT peak (effective)", "fit"], board_rows(inputs))
        lines += ["GOPS/kLUT = 2 · XNOR lanes · Fmax / kLUT, and in brackets times the lanes' "
                  "utilisation (estimate.json's lanes and utilisation); images/s = Fmax / "
                  "cycles per image (measured when sim.json has it, else estimated).", ""]
        png = _utilisation_plot(inputs.builds, folder)
        if png:
            lines += [f"![{png}]({png})", ""]
    path = folder / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def run(args: argparse.Namespace) -> int:
    path = write_report(args.out)
    print(f"wrote {path}")
    return 0
