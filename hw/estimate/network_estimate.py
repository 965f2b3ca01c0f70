"""What a planned network costs on an FPGA family: every kernel (its op's calibrated
structure, ``binaryvit.hw.ops``), fork, width converter and FIFO as the top wires them."""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape

from binaryvit.golden.intref.intmodel import Step
from binaryvit.hw.estimate.resource_model import (Family, KernelCost, MemoryMapping, MemoryShape,
                                                  Resources, argmax_resources,
                                                  converter_resources, fork_resources,
                                                  fifo_resources, map_memory, sum_resources)
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.ops.registry import spec_of
from binaryvit.hw.ops.tensor_info import TensorInfo
from binaryvit.hw.streams.stream_width import element_layout

__all__ = ["kernel_cost", "step_resources", "NetworkResources", "network_resources"]


def kernel_cost(step: Step, fold: dict[str, int], tensors: dict[str, TensorInfo],
                steps: dict[str, Step] | None = None) -> KernelCost:
    """What ``step``'s kernel builds under ``fold`` (``steps``: the model's steps by name,
    for constants a step reads, e.g. the position embedding), calibrated."""
    return spec_of(step.op).cost(step, fold, tensors, steps)


def step_resources(step: Step, fold: dict[str, int], tensors: dict[str, TensorInfo],
                   family: Family, steps: dict[str, Step] | None = None) -> Resources:
    """The estimate of ``step``'s kernel on ``family`` (logic, memories, multipliers)."""
    return kernel_cost(step, fold, tensors, steps).price(family)


@dataclass
class NetworkResources:
    """A network's estimate on one family: per kernel, per FIFO, and the total.

    parts : name → Resources (kernels by step name; ``<tensor>.fifo<k>``,
        ``<tensor>.width<k>``, ``<tensor>.fork`` for the plumbing; ``argmax``).
    memories : name → the kernel's or FIFO's memory mappings.
    """

    family: str
    parts: dict[str, Resources]
    memories: dict[str, list[MemoryMapping]]

    @property
    def total(self) -> Resources:
        return sum_resources(self.parts.values())

    def by_kind(self, kinds: dict[str, str]) -> dict[str, Resources]:
        """Totals grouped by ``kinds[part name]`` (op name, ``fifo``, …)."""
        groups: dict[str, Resources] = {}
        for name, res in self.parts.items():
            kind = kinds.get(name, name)
            groups[kind] = groups.get(kind, Resources()) + res
        return groups


def network_resources(plan: NetworkPlan, family: Family) -> NetworkResources:
    """Estimate a planned network (its kernels, forks, width converters and FIFOs as the
    top wires them) on ``family``."""
    model, folding, tensors = plan.model, plan.folding, plan.tensors
    steps = {s.name: s for s in model.steps}
    parts: dict[str, Resources] = {}
    memories: dict[str, list[MemoryMapping]] = {}
    for name in plan.nodes:
        cost = kernel_cost(steps[name], folding.folds[name], tensors, steps)
        parts[name] = cost.price(family)
        memories[name] = [map_memory(mem, family) for mem in cost.memories]
    by_tensor = plan.edges_by_tensor()

    def word_bits(tensor: str, lanes: int) -> int:
        info = tensors[tensor]
        return Shape.cast(element_layout(info.kind, info.width, lanes)).width

    for tensor, edges in by_tensor.items():
        produced = plan.produced_lanes[tensor]
        if len(edges) > 1:
            parts[f"{tensor}.fork"] = fork_resources(len(edges), family)
        for k, edge in enumerate(edges):
            if edge.lanes != produced:
                parts[f"{tensor}.width{k}"] = converter_resources(
                    word_bits(tensor, produced), word_bits(tensor, edge.lanes), family)
    index = {id(edge): k for edges in by_tensor.values() for k, edge in enumerate(edges)}
    for edge, side, lanes, depth in plan.fifos():
        bits = word_bits(edge.tensor, lanes)
        name = f"{edge.tensor}.fifo{index[id(edge)]}" + ("" if side == "after converter" else "in")
        parts[name] = fifo_resources(bits, depth, family)
        if depth > 2:
            memories[name] = [map_memory(
                MemoryShape("storage", bits, depth - 1, writable=True), family)]
    logits = tensors[plan.logits]
    parts["logits.fork"] = fork_resources(2, family)
    parts["argmax"] = argmax_resources(logits.width, plan.produced_lanes[plan.logits],
                                       plan.class_bits, family)
    return NetworkResources(family.name, parts, memories)
