"""FIFO depths of the dataflow network: free of deadlock (token demands), then fast
(the timing model).

A *demand* of a kernel port (``binaryvit.hw.ops.demand``; each op's spec gives its ports'
demands) is an integer array over the kernel's output tokens of one image: entry ``t`` is
the last input token (on that port) the kernel must have taken before it can emit output
token ``t``. Composing demands along a path gives how far a tensor ``x``
must have advanced for a kernel deep downstream to emit a token.

Deadlock arises only at a *join* (a kernel with several input ports: ``ResidualAdd``,
``BinaryAttention``) whose ports trace back to one forked tensor ``x``. While the join waits
for token ``t`` on port ``p``, ``x`` must advance to ``hi_p(t)`` (the largest demand over
paths to ``p``); the branch towards port ``q`` through fork output ``e`` is then stalled
holding token ``t``, having absorbed at least ``lo_{q,e}(t)`` tokens of ``x`` (the smallest
demand over its paths). So the FIFO on fork output ``e`` must hold
``max_t (hi_p(t) − lo_{q,e}(t))`` tokens of ``x``, over every join and every other port.
The pattern repeats per image (kernels count positions), so one image's skew is the bound.
Kernel internals only add capacity, so ignoring them is conservative.

Skews make the network deadlock-free, not fast: at the default folding every stage takes
its whole period, and a kernel that stalls its input part of the time (a tile replaying,
a join waiting for its other branch, a whole-image load) loses cycles for good unless the
words its producer keeps emitting have somewhere to wait. ``hw/network/timing.py`` runs every
kernel's timing model with one image entering every bottleneck period and unbounded
FIFOs; each FIFO then gets the depth it needed there (and a wire that would hold its
producer gets a FIFO). With those depths the paced network never fills a FIFO, so it
behaves as the model: one image per period. The real source is not paced but offers
words earlier; every transfer of this network happens as soon as its valid/ready
conditions hold (max-plus), so earlier offers never make any transfer later, and the
unpaced network is at least as fast.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.network.timing import EdgePath, NetworkSchedule, network_schedule

__all__ = ["FifoSizing", "size_fifos", "MIN_DEPTH", "READY_CHAIN"]

# A StreamFIFO of depth 2 keeps a one-word memory whose address is zero bits wide (Verilator
# ASCRANGE and unused-signal warnings); depth 3 costs one word more and lints clean.
MIN_DEPTH = 3
# Stages (kernels, width converters) a combinational ``ready`` path may cross before a FIFO
# cuts it (``_ready_chain_cuts``).
READY_CHAIN = 3


@dataclass(frozen=True)
class FifoSizing:
    """What ``size_fifos`` decided: per edge of the plan (same order) its
    ``(input_fifo_depth, fifo_depth)`` in words, the skew in tokens per forked edge
    (``"tensor->consumer.port"``), and the timing model's schedule at the bottleneck."""

    depths: list[tuple[int, int]]
    skews: dict[str, int]
    schedule: NetworkSchedule


def size_fifos(network: NetworkPlan, slack_tokens: int = 2) -> FifoSizing:
    """Place and size the FIFOs of the edges of ``network`` (a plan whose depths are not
    set yet): per edge the depth before the width converter and after it, in words, the
    skew in tokens per forked edge, and the schedule they come from.

    Deadlock freedom: the branch behind every output of a fork holds its skew plus
    ``slack_tokens`` tokens before it reaches a join or another fork: in the FIFO of the
    branch's edge whose tokens are fewest bits (``_cheapest_on_branch``; e.g. after a
    threshold rather than before it), on the wide side of that edge's converter (before a
    splitter, after a gatherer); every fork output keeps a FIFO of its own.
    Throughput: the timing model (``timing.network_schedule``) runs the network
    at its bottleneck's pace; every FIFO grows to the depth it needed there, and a plain
    wire on which a producer would wait gets a FIFO of its own. Depths only grow past the
    skew rule, so the deadlock argument stands.
    """
    order = [s.name for s in network.model.steps if s.name in network.nodes]
    by_tensor = network.edges_by_tensor()
    skews, floors = {}, {}
    for tensor, edges in by_tensor.items():
        if len(edges) < 2:
            continue
        need = _skews(network, order, tensor, edges)
        for edge, tokens in zip(edges, need):
            floors[id(edge)] = MIN_DEPTH
            home = _cheapest_on_branch(network, edge, by_tensor)
            words_per_token = network.tensors[home.tensor].channels // _fifo_lanes(network, home)
            floors[id(home)] = max(floors.get(id(home), MIN_DEPTH),
                                   (tokens + slack_tokens) * words_per_token + 2)
            skews[f"{tensor}->{edge.consumer or 'output'}.{edge.port}"] = tokens
    fixed = {id(e) for e in network.edges
             if id(e) in floors or _converter_kind(network, e) == "gcd"}
    fixed |= _ready_chain_cuts(network, order, by_tensor, fixed)
    paths = []
    for edge in network.edges:
        before = _fifo_before_converter(network, edge)
        primary = id(edge) in fixed
        paths.append(EdgePath(network.produced_lanes[edge.tensor], edge.lanes,
                              input_fifo=primary and before, output_fifo=primary and not before))
    schedule = network_schedule(network, network.folding.bottleneck, paths)
    depths = []
    for edge, path in zip(network.edges, paths):
        floor = floors.get(id(edge), MIN_DEPTH)
        depths.append((max(floor, path.input_need) if path.input_fifo else 0,
                       max(floor, path.output_need) if path.output_fifo else 0))
    return FifoSizing(depths, skews, schedule)


def _ready_chain_cuts(network, order: list[str], by_tensor: dict, fifos: set[int]) -> set[int]:
    """Edges that get a FIFO to bound the combinational ``ready`` chain.

    A kernel's ``i.ready`` may follow its ``o.ready`` in the same cycle (``advance = ~b_valid
    | b_fires``), and so may a width converter's: a run of kernels joined by plain wires is
    one combinational path from the last one's consumer back to the first one's producer
    (measured on the ECP5: seven kernels in a row, 20 ns, the whole network's critical
    path). A ``StreamFIFO``'s ``i.ready`` depends on its level only, so a FIFO cuts it.
    Walking the kernels from the outputs back, an edge gets a FIFO where the chain behind
    it would pass ``READY_CHAIN`` stages (kernels and converters); ``fifos`` are the edges
    that have one already (every fork output among them)."""
    cuts: set[int] = set()
    chain: dict[str, int] = {}
    for name in reversed(order):
        edges = by_tensor.get(name, [])
        behind = 0
        if len(edges) == 1 and id(edges[0]) not in fifos and edges[0].consumer is not None:
            edge = edges[0]
            behind = chain[edge.consumer] + (edge.lanes != network.produced_lanes[name])
            if behind + 1 > READY_CHAIN:
                cuts.add(id(edge))
                behind = 0
        chain[name] = behind + 1
    return cuts


def _cheapest_on_branch(network, edge, by_tensor: dict):
    """The edge whose FIFO holds a token in the fewest bits, among ``edge`` and the edges
    after it while each consumer is a single-input kernel that maps token ``t`` to token
    ``t`` and feeds one consumer: until a join or a fork, a stalled end backs up through
    every FIFO of that chain before ``edge``'s producer feels it, so its capacity counts."""
    best, cost = edge, _token_bits(network, edge)
    while edge.consumer is not None:
        node = network.nodes[edge.consumer]
        after = by_tensor.get(node.name, [])
        pointwise = len(node.inputs) == 1 and np.array_equal(
            node.demands[0], np.arange(network.tensors[node.name].tokens)) \
            and network.tensors[node.name].tokens == network.tensors[edge.tensor].tokens
        if not pointwise or len(after) != 1 or after[0].consumer is None:
            break
        edge = after[0]
        if _token_bits(network, edge) < cost:
            best, cost = edge, _token_bits(network, edge)
    return best


def _token_bits(network, edge) -> int:
    """Bits a FIFO on ``edge`` spends per token (elements and the words' ``last`` flags)."""
    info = network.tensors[edge.tensor]
    lanes = _fifo_lanes(network, edge)
    return info.channels * (1 if info.kind == "binary" else info.width) + info.channels // lanes


def _converter_kind(network, edge) -> str:
    a, b = network.produced_lanes[edge.tensor], edge.lanes
    if a == b:
        return "none"
    if a % b == 0:
        return "split"
    return "gather" if b % a == 0 else "gcd"


def _fifo_before_converter(network, edge) -> bool:
    """The FIFO sits on the converter's wide side: before a splitter, so its producer is
    never held while the pieces leave; after a gatherer (and a split-then-gather), so
    the consumer finds whole words waiting."""
    return _converter_kind(network, edge) == "split"


def _fifo_lanes(network, edge) -> int:
    return network.produced_lanes[edge.tensor] if _fifo_before_converter(network, edge) \
        else edge.lanes


def _skews(network, order: list[str], tensor: str, edges) -> list[int]:
    # Per node: (fork outputs it depends on, hi demand, lo demand) on ``tensor``. Once a
    # node depends on several fork outputs they have merged: skews further down belong
    # to the forks after the merge, so only joins of disjoint fork outputs count.
    reach: dict[str, tuple[frozenset, np.ndarray, np.ndarray]] = {}
    need = [0] * len(edges)
    for name in order:
        node = network.nodes[name]
        per_port = {}
        for (port, source, _), demand in zip(node.inputs, node.demands):
            if source == tensor:
                for j, edge in enumerate(edges):
                    if edge.consumer == name and edge.port == port:
                        per_port[port] = (frozenset([j]), demand, demand)
            elif source in reach:
                keys, h, low = reach[source]
                per_port[port] = (keys, h[demand], low[demand])
        if not per_port:
            continue
        for q, (keys_q, _, lo_q) in per_port.items():
            for p, (keys_p, hi_p, _) in per_port.items():
                if p != q:
                    for j in keys_q - keys_p:
                        need[j] = max(need[j], int(np.max(hi_p - lo_q)))
        entries = list(per_port.values())
        keys = frozenset().union(*(e[0] for e in entries))
        reach[name] = (keys, np.maximum.reduce([e[1] for e in entries]),
                       np.minimum.reduce([e[2] for e in entries]))
    return need
