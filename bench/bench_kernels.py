"""Cycle efficiency of every streaming kernel of the network, measured in Verilator.

Usage: ``python bench/bench_kernels.py OUT [--digits N] [--only TEXT] [--overrides JSON]``
(OUT holds the flow's ``intmodel.npz``). The network generator builds the tiny-digits
accelerator at its default folding (``binaryvit.hw.network.folding.fold_network``, with the
per-step fold overrides of ``--overrides`` if given); for every kernel class and fold it
uses, the first such kernel is taken out of the network and run alone through cocotb on
Verilator (``binaryvit.sim.runner.run_throughput``: no bubbles, no back-pressure) on the
real tensors the integer network computes for ``N`` test digits (repeated as needed),
every output word checked against that reference. ``BinaryAttention`` is also swept over
``keys_per_cycle`` P = 1, 2, 4, 16 at both stages (lanes = head_dim).

Columns: the step, its kernel and its fold; words per image on each input port and on
the output port; ``ideal``
the cost model's compute-bound cycles per image for that fold (``folding.step_cycles``);
the images streamed and ``measured``, the cycles from the first input transfer to the last
output transfer; ``steady`` the cycles per image in steady state (the difference between
that run and one of 2 images, divided by the difference in images);
``latency`` the one-time fill, ``measured − images·steady``; ``eta = images·ideal /
measured`` and ``eta_steady = ideal / steady`` (η without the fill). The XNOR MVU has its
own table in ``bench/bench_mvu.py``.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.intref.intmodel import load_intmodel
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.hw.kernels.binary_attention import BinaryAttention
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.network.folding import fold_network, load_overrides, step_cycles
from binaryvit.hw.network.graph import TensorInfo
from binaryvit.hw.streams.fixed_point_stream import encode_binary, encode_fixed_point
from binaryvit.sim.runner import run_throughput

# Cycles of the long run per kernel, at least FILL_SHARE times its one-time fill (bounded
# by MIN_IMAGES … MAX_IMAGES images): long enough that the fill is a small part, short
# enough for the Python testbench.
TARGET_CYCLES = 16384
FILL_SHARE = 50
MIN_IMAGES, MAX_IMAGES = 4, 64
SWEEP_KEYS_PER_CYCLE = (1, 2, 4, 16)
MEASURED_OPS = {"and_popcount_context", "fixed_mac", "residual_add", "affine", "rprelu",
                "threshold", "avgpool2d", "window_sum2d", "channel_group_avgpool",
                "tile_channels", "nearest_upsample", "global_avgpool", "token_patches"}
SHAPED_OPS = {"window_sum2d", "and_popcount_context"}


@dataclass
class Case:
    """One kernel to measure: its network step (for tensors and the ideal), the component,
    its input ports (port, tensor, elements per word) and its output's elements per word."""

    label: str
    step: object
    fold: dict
    component: object
    inputs: list[tuple[str, str, int]]
    out_lanes: int


def encode(tensor: torch.Tensor, info: TensorInfo, lanes: int) -> list[int]:
    """Stream words of ``tensor`` (``[images, tokens, C]``) as the network carries them."""
    tensor = tensor.reshape(-1, info.tokens, info.channels)
    if info.kind == "binary":
        return encode_binary(tensor, lanes)
    return encode_fixed_point(tensor, info.width, lanes, is_signed=info.kind == "fixed")


def describe(step, fold: dict) -> str:
    folded = ", ".join(f"{key}={value}" for key, value in sorted(fold.items()))
    extra = ""
    if step.op == "window_sum2d":
        extra = f" {step.params['kh']}×{step.params['kw']}"
    return f"{step.op}{extra} [{folded}]"


def network_cases(network: NetworkPlan) -> list[Case]:
    """The first kernel of each class and fold (and stage, for strips and attention) in
    program order."""
    steps = {s.name: s for s in network.model.steps}
    cases, seen = [], set()
    for node in network.nodes.values():
        step = steps[node.name]
        if step.op not in MEASURED_OPS:
            continue
        fold = network.folding.folds[node.name]
        # Strips and attention differ per stage (grid, strip shape), not only per fold.
        shape = (step.params.get("kh"), step.params.get("kw"),
                 network.tensors[node.inputs[0][1]].grid) if step.op in SHAPED_OPS else None
        key = (type(node.component).__name__, tuple(sorted(fold.items())), shape)
        if key in seen:
            continue
        seen.add(key)
        cases.append(Case(node.name, step, fold, node.component, node.inputs, node.lanes))
    return cases


def attention_sweep(network: NetworkPlan) -> list[Case]:
    """Each attention stage's kernel rebuilt at P = 1, 2, 4, 16 keys per cycle, lanes = d."""
    steps = {s.name: s for s in network.model.steps}
    cases, seen = [], set()
    for node in network.nodes.values():
        unit = node.component
        if not isinstance(unit, BinaryAttention):
            continue
        shape = (unit.heads, unit.head_dim, unit.query_tokens, unit.key_tokens)
        if shape in seen:
            continue
        seen.add(shape)
        for keys in SWEEP_KEYS_PER_CYCLE:
            if unit.key_tokens % keys:
                continue
            kernel = BinaryAttention(heads=unit.heads, head_dim=unit.head_dim,
                                     query_tokens=unit.query_tokens, key_tokens=unit.key_tokens,
                                     lut=unit.lut, theta=unit.theta, theta_shift=unit.theta_shift,
                                     keys_per_cycle=keys, lanes=unit.head_dim)
            cases.append(Case(node.name, steps[node.name],
                              {"keys_per_cycle": keys, "lanes": unit.head_dim}, kernel,
                              node.inputs, unit.head_dim))
    return cases


def measure(case: Case, network: NetworkPlan, reference: dict[str, torch.Tensor],
            digits: int) -> dict:
    tensors = network.tensors
    out = tensors[case.step.name]
    ideal = step_cycles(case.step, case.fold, tensors)
    fold = "_".join(f"{k}{v}" for k, v in sorted(case.fold.items()))
    name = re.sub(r"\W", "_", f"bench_{case.label}_{fold}")

    def cycles(count: int) -> int:
        picks = torch.arange(count) % digits
        inputs = {port: encode(reference[tensor][picks], tensors[tensor], lanes)
                  for port, tensor, lanes in case.inputs}
        expected = {"o": encode(reference[case.step.name][picks], out, case.out_lanes)}
        return run_throughput(case.component, name, inputs, expected).cycles

    # Two short runs give the steady state and the fill; the long run is then long enough
    # for the fill to be a small part of it.
    runs = {count: cycles(count) for count in (2, 4)}
    fill = runs[2] - (runs[4] - runs[2])
    images = max(MIN_IMAGES, min(MAX_IMAGES, math.ceil(max(TARGET_CYCLES, FILL_SHARE * fill)
                                                         / ideal)))
    measured = runs.get(images) or cycles(images)
    steady = (measured - runs[2]) / (images - 2)
    words_in = "+".join(str(tensors[t].tokens * tensors[t].channels // lanes)
                        for _, t, lanes in case.inputs)
    return dict(label=case.label, kernel=type(case.component).__name__,
                config=describe(case.step, case.fold),
                words=f"{words_in} / {out.tokens * out.channels // case.out_lanes}",
                ideal=ideal, images=images, measured=measured, steady=steady,
                latency=measured - images * steady, eta=images * ideal / measured,
                eta_steady=ideal / steady)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the flow's output folder (intmodel.npz)")
    parser.add_argument("--digits", type=int, default=16, help="test digits (default 16)")
    parser.add_argument("--only", default="", help="measure only steps whose row contains this")
    parser.add_argument("--overrides", type=Path, help="JSON {step: {key: value}} fold overrides")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # Only the measured kernels of the generated network are ever elaborated.
    warnings.filterwarnings("ignore", message=".*created but never used")
    model = load_intmodel(args.out / "intmodel.npz")
    overrides = load_overrides(args.overrides) if args.overrides else None
    network = plan_network(model, fold_network(model, overrides=overrides))
    cases = [c for c in network_cases(network) + attention_sweep(network)
             if args.only in f"{c.label} {describe(c.step, c.fold)}"]
    wanted = {tensor for c in cases for _, tensor, _ in c.inputs} | {c.step.name for c in cases}
    images = torch.as_tensor(load_digits_dataset().test_images[:args.digits]).to(torch.int64)
    reference = run_int_network(model, images, taps=wanted - {"input"}).taps

    print("Kernel cycle efficiency (Verilator via cocotb; no bubbles, no back-pressure; "
          "every output word checked)")
    print(f"| {'step':<45} | {'kernel':<20} | {'op [fold]':<46} | {'words in / out':>15} | "
          f"ideal | images | measured | steady | latency | eta | eta_steady |")
    print("|" + "|".join("---" for _ in range(11)) + "|")
    for case in cases:
        row = measure(case, network, reference, len(images))
        print(f"| {row['label']:<45} | {row['kernel']:<20} | {row['config']:<46} | {row['words']:>15} | "
              f"{row['ideal']:>5} | {row['images']:>6} | {row['measured']:>8} | "
              f"{row['steady']:>6.1f} | {row['latency']:>7.0f} | {row['eta']:.3f} | "
              f"{row['eta_steady']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
