"""Write OUT/reports/report.md: plots that answer questions, and the per-step detail in tables.

Reads what earlier stages left in OUT: manifest.json (the checkpoint, its float accuracy, the
formats), reports/estimate.json (`binaryvit generate`: cycles and resources per step and
part), reports/sim.json (`binaryvit sim`: integer reference and RTL on the simulated images,
measured cycles, and per step when it has `per_layer_cycles`) and build/<board>/build.json
(`binaryvit build`: utilisation, Fmax, overflow). Plots, each readable at its natural size:
accuracy against the stream width (the checkpoint re-quantized in memory at each width, about
3 s a width on tiny-digits, kept in reports/stream_width_accuracy.json), cycles per block
(estimated, and measured when sim.json has it), resources by op class per FPGA family, and
the fit per board against the 0.95 logic margin. An input that is missing is named in the
report together with the command that makes it; the rest is still reported.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binaryvit.atomic import write_text_atomic
from binaryvit.flow_summary import mismatching_logits
from binaryvit.hw.boards.board_build import BUILD_JSON, BuildResult
from binaryvit.hw.boards.definitions import BOARDS
from binaryvit.hw.estimate.device_fit import DEFAULT_MARGIN, check_fit
from binaryvit.hw.estimate.resource_model import Resources
from binaryvit.report.board_fit import fit_panels
from binaryvit.report.breakdown import RESOURCE_FIELDS, cycles_per_block, resources_by_class
from binaryvit.report.figures import (cycles_per_block_png, fit_per_board_png,
                                      resources_by_class_png, stream_width_png)
from binaryvit.report.stream_width_sweep import (SWEEP_JSON, WIDTHS, StreamWidthSweep,
                                                 stream_width_sweep)

NAME = "report"
HELP = ("write OUT/reports/report.md: accuracy (and vs stream width), cycles per block, "
        "resources by op class, fit per board, builds; per-step tables")
ORDER = 70

OPS_PER_LANE = 2   # one XNOR and one popcount add per lane per cycle (anchors_hw.md §1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", nargs="?", default="out",
                        help="output folder (default out/)")
    parser.add_argument("--stream-widths", type=int, nargs="*", default=list(WIDTHS),
                        metavar="W",
                        help="stream widths the accuracy sweep re-quantizes the checkpoint at "
                             f"(default {' '.join(map(str, WIDTHS))}, plus the model's own; "
                             "about 3 s each on tiny-digits, kept between runs; none: no sweep)")


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
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
              for row in rows]
    return lines + [""]


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
    lines += ["Estimate: `binaryvit.hw.estimate.resource_model` (Yosys' memory mapping rules, "
              "kernels calibrated against synth_ice40 / synth_ecp5); nextpnr: the build's count "
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


def _png(name: str | None, alt: str) -> list[str]:
    return [f"![{alt}]({name})", ""] if name else []


def _accuracy_section(inputs: ReportInputs, sweep: StreamWidthSweep | str | None) -> list[str]:
    """Float and integer on the whole test split, then integer and RTL on the same simulated
    images, so the two hardware-relevant figures are never compared across image sets."""
    metrics = ((inputs.manifest or {}).get("checkpoint") or {}).get("metrics", {})
    sim = inputs.sim or {}
    totals = sim.get("totals", {})
    images = totals.get("images")
    split = metrics.get("test_size")
    split_text = f"the test split ({split} images)" if split else "the test split"
    own = None
    if isinstance(sweep, StreamWidthSweep):
        own = next((w.int_top1 for w in sweep.widths if w.stream_width == sweep.model_width),
                   None)
        split_text = f"the test split ({sweep.test_images} images)"
    simulated = f"the first {images} test images, simulated" if images else "—"
    lines = ["## Accuracy", ""] + _table(
        ["model", "top-1", "on"],
        [["float binary (PyTorch)", _pct(metrics.get("test_accuracy")), split_text],
         ["integer reference", _pct(own), split_text if own is not None else
          "— (see Accuracy vs stream width)"],
         ["integer reference", _pct(totals.get("ref_top1")), simulated],
         ["RTL (Verilator)", _pct(totals.get("hw_top1")), simulated]])
    if sim.get("images"):
        differing, compared = mismatching_logits(sim)
        lines += [f"On those {images} images the RTL's logits differ from the integer "
                  f"reference's in **{differing}** of {compared} (every logit compared; "
                  f"bit-exact means 0): {totals.get('mismatches')} images differ.", ""]
    return lines


def _stream_width_section(sweep: StreamWidthSweep | str | None, classes: int | None,
                          folder: Path) -> list[str]:
    lines = ["## Accuracy vs stream width", ""]
    if sweep is None:
        return lines + ["Not measured (`--stream-widths` with no width).", ""]
    if isinstance(sweep, str):
        return lines + [f"Not measured: {sweep}.", ""]
    lines += _png(stream_width_png(sweep, classes, folder), "integer accuracy vs stream width")
    rows = [[w.stream_width, "—" if w.stream_frac is None else w.stream_frac,
             _pct(w.int_top1) if w.error is None else f"cannot be quantized: {w.error}"]
            for w in sweep.widths]
    lines += _table(["stream width", "binary point (calibrated)", "integer top-1"], rows)
    how = ("reused from" if sweep.reused else "measured now and kept in")
    lines += [f"Each width re-quantizes the checkpoint in memory (same calibration and "
              f"constants, {sweep.model_width} bits is this model's) and runs the integer "
              f"model on the {sweep.test_images} test images: {sweep.seconds:.0f} s, {how} "
              f"`{SWEEP_JSON}`.", ""]
    return lines


def measured_step_cycles(sim: dict) -> dict[str, float]:
    """``sim.json``'s ``per_layer_cycles`` (step name -> measured cycles per image), numbers
    only; empty when the simulation did not record them."""
    recorded = sim.get("per_layer_cycles")
    if not isinstance(recorded, dict):
        return {}
    return {name: value for name, value in recorded.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def _cycles_section(estimate: dict, sim: dict, folder: Path) -> list[str]:
    totals = sim.get("totals", {})
    measured = measured_step_cycles(sim)
    lines = ["## Cycles per image", ""] + _table(
        ["", "cycles per image"],
        [["estimated (cost model, bottleneck " + str(estimate.get("bottleneck")) + ")",
          estimate.get("cycles_per_image")],
         ["ideal (work / lanes)", estimate.get("ideal_cycles_per_image")],
         ["measured (Verilator, steady state)",
          totals.get("cycles_per_image_measured", "— (no sim.json)")]])
    blocks = cycles_per_block(estimate, measured)
    lines += ["### Per block", ""]
    lines += _png(cycles_per_block_png(blocks, estimate.get("cycles_per_image"),
                                       totals.get("cycles_per_image_measured"), folder),
                  "cycles per block")
    lines += _table(["block", "slowest step", "cycles est.", "cycles ideal", "cycles measured"],
                    [[b.block, b.slowest, b.estimated, b.ideal,
                      "—" if b.measured is None else f"{b.measured:g} ({b.measured_slowest})"]
                     for b in blocks])
    if not measured:
        lines += ["Measured cycles per block and step: `sim.json` has no `per_layer_cycles` "
                  "(a `binaryvit sim` that records them fills these columns).", ""]
    return lines


def _resources_section(estimate: dict, folder: Path) -> list[str]:
    by_class = resources_by_class(estimate)
    if not by_class:
        return []
    labels = {}
    for family in by_class:
        boards = [b.description.split(", ")[0].split(" ", 1)[-1] for b in BOARDS.values()
                  if b.family == family]
        labels[family] = {"ice40": "iCE40", "ecp5": "ECP5"}.get(family, family) + (
            "\n" + ", ".join(boards) if boards else "")
    lines = ["## Resources by op class", ""]
    lines += _png(resources_by_class_png(by_class, labels, folder), "resources by op class")
    rows = [[family, name] + [figures[f] for f in RESOURCE_FIELDS]
            for family, classes in by_class.items() for name, figures in classes.items()]
    lines += _table(["family", "op class", "logic cells", "flip-flops", "block RAMs", "DSPs"],
                    rows)
    lines += ["Resource model's estimate (`estimate.json`, `binaryvit generate`); on the iCE40 "
              "the logic cells hold both LUTs and flip-flops, and its multipliers are built "
              "in logic.", ""]
    return lines


def _per_step_section(estimate: dict, sim: dict) -> list[str]:
    measured = measured_step_cycles(sim)
    rows = [[layer["name"], layer["op"],
             " ".join(f"{k}={v}" for k, v in sorted((layer.get("fold") or {}).items())),
             layer["cycles_per_image"], layer.get("ideal_cycles_per_image", "—"),
             measured.get(layer["name"], "—"), layer.get("luts", "—")]
            for layer in estimate.get("layers", [])]
    return ["## Per step", ""] + _table(
        ["step", "op", "fold", "cycles est.", "cycles ideal", "cycles measured",
         "ECP5 LUT4 est."], rows)


def write_report(out: str | Path, stream_widths: tuple[int, ...] = WIDTHS,
                 progress: bool = True) -> Path:
    """Write ``OUT/reports/report.md`` (and its PNGs); return its path. ``stream_widths``:
    the widths the accuracy sweep quantizes at (empty: no sweep)."""
    out = Path(out)
    folder = out / "reports"
    inputs = read_inputs(out)
    manifest = inputs.manifest or {}
    config = manifest.get("config", {}).get("name", "unknown config")
    lines = [f"# binaryvit report — {config}", "", f"Output folder: `{out}`", ""]
    if inputs.missing:
        lines += ["## Missing inputs", "", "These sections are incomplete because these "
                  "files are absent:", ""] + [f"- {m}" for m in inputs.missing] + [""]

    sweep = None
    if inputs.manifest is None:
        sweep = "no manifest.json"
    elif stream_widths:
        sweep = stream_width_sweep(out, manifest, tuple(stream_widths), progress)
    lines += _accuracy_section(inputs, sweep)
    lines += _stream_width_section(sweep, manifest.get("config", {}).get("num_classes"), folder)

    estimate = inputs.estimate or {}
    if estimate:
        lines += _cycles_section(estimate, inputs.sim or {}, folder)
        lines += _resources_section(estimate, folder)
        lines += ["## Fit per board", ""]
        lines += _png(fit_per_board_png(fit_panels(estimate, inputs.builds), DEFAULT_MARGIN,
                                        folder), "fit per board")
        lines += [f"Red in the plot: over the limit `generate --board` holds a design to (logic "
                  f"and flip-flops {100 * DEFAULT_MARGIN:.0f} % of the device, block RAM and "
                  f"DSPs all of it); the table's excess is over the whole device.", ""]
        lines += fit_lines(inputs)

    if inputs.builds:
        lines += ["## Boards (nextpnr, YoWASP)", ""] + _table(
            ["board", "LUT4 / LC used", "block RAM / DSP", "Fmax MHz (target)", "images/s at Fmax",
             "binary GOPS/kLUT peak (effective)", "fit"], board_rows(inputs))
        lines += ["GOPS/kLUT = 2 · XNOR lanes · Fmax / kLUT, and in brackets times the lanes' "
                  "utilisation (estimate.json's lanes and utilisation); images/s = Fmax / "
                  "cycles per image (measured when sim.json has it, else estimated).", ""]
        if not estimate:
            lines += _png(fit_per_board_png(fit_panels(None, inputs.builds), DEFAULT_MARGIN,
                                            folder), "fit per board")
    if estimate:
        lines += _per_step_section(estimate, inputs.sim or {})
    path = folder / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def run(args: argparse.Namespace) -> int:
    path = write_report(args.out, tuple(args.stream_widths), progress=True)
    print(f"wrote {path}")
    return 0
