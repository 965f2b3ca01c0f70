"""The ``binaryvit generate`` stage: ``OUT/intmodel.npz`` → ``OUT/rtl``, ``OUT/weights`` and
``OUT/reports/estimate.json``.

``OUT/rtl/binaryvit_top.v`` holds the whole accelerator (weights and constants inlined as
ROM initialisers, so no file is loaded at run time); ``OUT/rtl/network.json`` describes
its ports for the simulator and board wrappers; ``OUT/weights/<layer>.*`` are the binary
layers' weight ROM images exactly as the Verilog holds them, for the folding chosen here
(recorded in ``OUT/manifest.json``, ``binaryvit.hw.network.weight_images``);
``OUT/reports/estimate.json`` gives the cost model's cycles and logic cells per layer, the
folds, the FIFO depths, the resource estimate per FPGA family and, when generated for a
board, its fit. Everything is written atomically and is byte-identical for identical inputs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, load_quantized
from binaryvit.hw.boards.definitions import Board
from binaryvit.hw.estimate.device_fit import DEFAULT_MARGIN, fold_for_board, resource_report
from binaryvit.hw.network.accelerator import BinaryViTAccelerator, instance_name
from binaryvit.hw.network.folding import fold_network, load_overrides, step_cycles
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.network.weight_images import record_folding, write_weight_images
from binaryvit.hw.verilog import to_verilog

__all__ = ["generate", "estimate_report", "describe_network", "TOP_NAME"]

TOP_NAME = "binaryvit_top"


def estimate_report(plan: NetworkPlan) -> dict:
    """Per-layer cycles, LUT estimates and folds, FIFO words and bits, and the network
    totals (with the timing model's latency of one image, first pixel to last logit)."""
    model, folding, tensors = plan.model, plan.folding, plan.tensors
    steps = {s.name: s for s in model.steps}
    layers = []
    for name, fold in folding.folds.items():
        step = steps[name]
        layers.append({"name": name, "op": step.op, "fold": fold,
                       "cycles_per_image": folding.cycles[name],
                       "ideal_cycles_per_image": step_cycles(step, fold, tensors),
                       "luts": folding.luts[name]})
    fifos = [{"tensor": e.tensor, "consumer": e.consumer or "output", "port": e.port,
              "side": side, "lanes": lanes, "depth_words": depth,
              "bits": depth * _word_bits(plan, e.tensor, lanes)}
             for e, side, lanes, depth in plan.fifos()]
    weight_bits = sum(int(s.arrays["weight_bits"].size) for s in model.xnor_layers())
    xnor_lanes = sum(folding.folds[s.name]["pe"] * folding.folds[s.name]["simd"]
                     for s in model.xnor_layers())
    xnor_work = sum(int(s.arrays["weight_bits"].size) * tensors[s.name].tokens
                    for s in model.xnor_layers())
    ideal = max(layer["ideal_cycles_per_image"] for layer in layers)
    return {
        "target_cycles": folding.target_cycles,
        "cycles_per_image": folding.bottleneck,
        "ideal_cycles_per_image": ideal,
        "bottleneck": folding.bottleneck_step,
        "luts": folding.total_luts,
        "xnor_lanes": xnor_lanes,
        "xnor_utilisation": xnor_work / (xnor_lanes * folding.bottleneck),
        "weight_bits": weight_bits,
        "fifo_bits": sum(f["bits"] for f in fifos),
        "latency_cycles_model": plan.schedule.latency(plan.logits),
        "layers": layers,
        "fifos": fifos,
    }


def _word_bits(plan: NetworkPlan, tensor: str, lanes: int) -> int:
    """Bits of a stream word of ``tensor`` with ``lanes`` elements (data and ``last``)."""
    info = plan.tensors[tensor]
    return (1 if info.kind == "binary" else info.width) * lanes + 1


def describe_network(plan: NetworkPlan, taps: Sequence[str], estimate: dict) -> dict:
    """What a testbench needs to drive the top: ports, widths, lanes, taps, and per kernel
    (``streams``) its instance name in the Verilog and its output words per image (the
    simulation harness times each kernel's output stream there)."""
    model = plan.model
    pixels = plan.tensors["input"]
    logits = plan.tensors[plan.logits]
    tapped = []
    for name in taps:
        info = plan.tensors[name]
        tapped.append({"step": name, "kind": info.kind, "width": info.width,
                       "lanes": plan.produced_lanes[name], "channels": info.channels,
                       "tokens": info.tokens})
    return {"top": TOP_NAME, "verilog": f"{TOP_NAME}.v", "config": model.config.name,
            "patch_size": model.steps[0].params["size"], "pixel_width": pixels.width,
            "input_lanes": plan.input_lanes, "logit_width": logits.width,
            "logit_lanes": plan.produced_lanes[plan.logits],
            "classes": logits.channels, "class_bits": plan.class_bits, "taps": tapped,
            "streams": [{"step": name, "op": node.op, "instance": instance_name(name),
                         "words_per_image": plan.tensors[name].tokens
                         * plan.tensors[name].channels // node.lanes}
                        for name, node in plan.nodes.items()],
            "estimate": {"cycles_per_image": estimate["cycles_per_image"],
                         "ideal_cycles_per_image": estimate["ideal_cycles_per_image"],
                         "latency_cycles": estimate["latency_cycles_model"],
                         "luts": estimate["luts"]}}


def generate(out_dir: str | os.PathLike, *, target_cycles: int | None = None,
             lut_budget: int | None = None, overrides: str | os.PathLike | dict | None = None,
             taps: Sequence[str] = (), model: IntModel | None = None,
             board: Board | None = None, margin: float = DEFAULT_MARGIN) -> dict:
    """Fold, generate and write ``OUT/rtl``, ``OUT/weights`` and ``OUT/reports/estimate.json``
    (and the folding into ``OUT/manifest.json`` when there is one).

    Parameters
    ----------
    out_dir : the output folder holding ``intmodel.npz`` (unless ``model`` is given).
    target_cycles, lut_budget : the folding goal (see ``fold_network``).
    board, margin : instead, the fastest folding whose estimate fits ``board`` with logic
        at most ``margin`` of the device (``binaryvit.hw.estimate.device_fit.fold_for_board``).
    overrides : a JSON file path or a dict of per-step fold overrides.
    taps : steps whose streams the top mirrors on debug ports (divergence finding).

    Returns the estimate report.
    """
    out = Path(out_dir)
    if model is None:
        model = load_quantized(out)
    if isinstance(overrides, (str, os.PathLike)):
        overrides = load_overrides(overrides)
    fit = None
    if board is not None:
        if target_cycles is not None or lut_budget is not None:
            raise ConfigError("give a board or a folding goal (target_cycles, lut_budget), "
                              "not both")
        plan, fit = fold_for_board(model, board, margin=margin, overrides=overrides)
    else:
        plan = plan_network(model, fold_network(model, target_cycles=target_cycles,
                                                lut_budget=lut_budget, overrides=overrides))
    network = BinaryViTAccelerator(plan, taps=taps)
    estimate = estimate_report(plan)
    estimate["resources"] = resource_report(plan, fit)
    if fit is not None:
        estimate["device"] = fit.to_json()
    description = describe_network(plan, network.tap_names, estimate)
    verilog = to_verilog(network, TOP_NAME)
    write_text_atomic(out / "rtl" / f"{TOP_NAME}.v", verilog)
    write_text_atomic(out / "rtl" / "network.json", json.dumps(description, indent=2) + "\n")
    record_folding(out, write_weight_images(out, plan))
    write_text_atomic(out / "reports" / "estimate.json", json.dumps(estimate, indent=2) + "\n")
    return estimate
