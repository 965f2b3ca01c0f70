"""``binaryvit sim OUT`` for the engine: test images through the engine RTL in Verilator.

The program is compiled again from ``OUT/intmodel.npz`` and must have the plan of
``OUT/rtl/engine.json`` (what the bitstream is built from). Each image runs through
:func:`binaryvit.sim.engine_sim.run_engine_images` (payload and pixels through the engine's
host port with random gaps, ``start``, logits read back); its logits are compared with
``run_int_network``'s. ``OUT/reports/sim.json`` has the network simulation's layout: per
image logits, match, cycles; totals (mismatches, top-1 of the RTL and of the reference on
the same images, measured and modelled cycles per image).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import DataError
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.intref.intmodel import load_quantized
from binaryvit.sim.image_comparison import comparison_totals

__all__ = ["simulate_engine"]


def simulate_engine(out_dir, *, images: int = 20, data=None, progress: bool = True,
                    seed: int = 1) -> dict:
    """Simulate ``images`` test images on OUT's engine; write and return the report."""
    from binaryvit.golden.train.data import load_dataset
    from binaryvit.hw.engine.board.design import load_engine_design, plan_description
    from binaryvit.hw.engine.compiler import compile_intmodel
    from binaryvit.sim.engine_sim import run_engine_images

    out = Path(out_dir)
    if images < 1:
        raise DataError(f"--images must be at least 1, not {images}")
    design = load_engine_design(out / "rtl" / "engine.json")
    path = out / "intmodel.npz"
    model = load_quantized(out)
    program = compile_intmodel(model, design.config)
    if plan_description(program) != design.plan:
        raise DataError(f"{path} compiles to another memory plan than {out}/rtl/engine.json: "
                        f"run `binaryvit generate {out} --arch engine` again")
    dataset = load_dataset(data, model.config.in_channels)
    count = min(images, len(dataset.test_images))
    x = torch.as_tensor(dataset.test_images[:count]).to(torch.int64)
    labels = [int(v) for v in dataset.test_labels[:count]]
    reference = run_int_network(model, x).logits
    per_image, started = [], time.monotonic()
    for k in range(count):
        run = run_engine_images(program, x[k:k + 1], seed=seed + k)
        rtl = run.logits[0]
        per_image.append({"index": k, "label": labels[k], "rtl_logits": rtl.tolist(),
                          "ref_logits": reference[k].tolist(),
                          "match": bool(torch.equal(rtl, reference[k])),
                          "rtl_class": int(rtl.argmax()), "ref_class": int(reference[k].argmax()),
                          "cycles": run.cycles[0]})
        if progress:
            elapsed = time.monotonic() - started
            print(f"  image {k + 1}/{count}: {'match' if per_image[-1]['match'] else 'MISMATCH'}, "
                  f"{run.cycles[0]} cycles ({elapsed:.0f} s)", flush=True)
    wall = time.monotonic() - started
    cycles = [p["cycles"] for p in per_image]
    totals = {
        **comparison_totals(per_image),
        "cycles_per_image_measured": sum(cycles) / count,
        "steady_images": count,
        "cycles_per_image_estimated": program.total_cycles,
        "efficiency": None,
        "latency_cycles": cycles[0],
        "images_per_second_simulated": count / wall if wall else None,
        "cycles_per_second_simulated": sum(cycles) / wall if wall else None,
        "simulator": "verilator", "path": "engine host port", "seed": seed,
    }
    report = {"arch": "engine", "totals": totals, "images": per_image}
    write_text_atomic(out / "reports" / "sim.json", json.dumps(report, indent=2) + "\n")
    return report
