"""The network plan: what the generated accelerator is, as a value.

A :class:`NetworkPlan` (made by ``binaryvit.hw.network.planner.plan_network``) holds the
integer model and its folding, every tensor as a stream (``TensorInfo``), one
:class:`PlanNode` per kernel (its component, constructed but not elaborated, and the
ports it reads), one :class:`Edge` per consumer port of a tensor with its FIFO depths, the
fork skews and the timing model's schedule those depths come from. The timing model, FIFO
sizing, the resource estimate, the reports and the Amaranth top
(``binaryvit.hw.network.accelerator.BinaryViTAccelerator``) all read it; nothing writes
to it after ``plan_network`` returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.hw.kernels.argmax import ArgMax
from binaryvit.hw.ops.demand import Demand
from binaryvit.hw.ops.tensor_info import TensorInfo

__all__ = ["PlanNode", "Edge", "NetworkPlan"]


@dataclass(frozen=True)
class PlanNode:
    """One kernel of the network: the step it computes and how its ports read tensors.

    component : the kernel (an Amaranth component, not elaborated).
    inputs : (port name, tensor name, elements per word the port reads) per input port.
    lanes : elements per output word. demands : per input port, its token demand.
    """

    name: str
    op: str
    component: Any
    inputs: list[tuple[str, str, int]]
    lanes: int
    demands: list[Demand] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    """A consumer port reading a tensor (``consumer`` None: the top's ``o`` output), built
    as a ``StreamEdge``: ``input_fifo_depth`` words of the producer's ``lanes`` before the
    width converter, ``fifo_depth`` words of the consumer's ``lanes`` after it (0: none)."""

    tensor: str
    consumer: str | None
    port: str
    lanes: int
    fifo_depth: int = 0
    input_fifo_depth: int = 0


@dataclass(frozen=True)
class NetworkPlan:
    """The whole network (see the module docstring).

    produced_lanes : tensor → elements per word its producer emits (the pixel input: the
        top's ``i`` port). input_lanes : the pixel port's lanes. logits : the classifier
        step. skews : ``"tensor->consumer.port"`` → tokens a fork output must absorb.
    schedule : the timing model's ``NetworkSchedule`` at the bottleneck's pace (None only in
        the draft FIFO sizing starts from).
    """

    model: IntModel
    folding: Any
    tensors: dict[str, TensorInfo]
    nodes: dict[str, PlanNode]
    edges: list[Edge]
    produced_lanes: dict[str, int]
    input_lanes: int
    logits: str
    skews: dict[str, int] = field(default_factory=dict)
    schedule: Any = None

    @property
    def class_bits(self) -> int:
        """Bits of the class index the top's ``cls`` port carries."""
        return ArgMax.index_bits_for(self.tensors[self.logits].channels)

    def fifos(self) -> list[tuple[Edge, str, int, int]]:
        """Every FIFO as the top builds it: ``(edge, side, lanes, depth)``, ``side``
        ``"before converter"`` (words of the producer's lanes) or ``"after converter"``
        (the consumer's lanes), ``depth`` in words."""
        built = []
        for edge in self.edges:
            for side, depth, lanes in (("before converter", edge.input_fifo_depth,
                                        self.produced_lanes[edge.tensor]),
                                       ("after converter", edge.fifo_depth, edge.lanes)):
                if depth:
                    built.append((edge, side, lanes, depth))
        return built

    def edges_by_tensor(self) -> dict[str, list[Edge]]:
        """The edges grouped by the tensor they read, in edge order."""
        groups: dict[str, list[Edge]] = {}
        for edge in self.edges:
            groups.setdefault(edge.tensor, []).append(edge)
        return groups
