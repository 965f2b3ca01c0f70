"""FIFO depths that keep the dataflow network free of deadlock, from token demands.

A *demand* of a kernel port is an integer array over the kernel's output tokens of one
image: entry ``t`` is the last input token (on that port) the kernel must have taken before
it can emit output token ``t``. Composing demands along a path gives how far a tensor ``x``
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
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from binaryvit.errors import ConfigError
from binaryvit.hw.network_graph import TensorInfo

if TYPE_CHECKING:
    from binaryvit.hw.network import BinaryViTAccelerator

__all__ = ["Demand", "token_demand", "fifo_depths"]

Demand = np.ndarray


def token_demand(kind: str, x: TensorInfo, out: TensorInfo, *, factor: int = 1,
                 reach: tuple[int, int] = (0, 0)) -> Demand:
    """Demand of one kernel port reading ``x`` for output ``out``.

    kind : ``pointwise`` (token ``t`` from token ``t``), ``spatial_pool`` (``factor × factor``
        windows, emitted on their last token), ``strip_pool`` (a window reaching ``reach``
        tokens down and right, clipped at the grid), ``whole_image`` (nothing before the
        image's last token).
    """
    if kind == "pointwise":
        return np.arange(out.tokens, dtype=np.int64)
    if kind == "whole_image":
        return np.full(out.tokens, x.tokens - 1, dtype=np.int64)
    h, w = x.grid
    if kind == "spatial_pool":
        i, j = np.divmod(np.arange(out.tokens, dtype=np.int64), w // factor)
        return ((i + 1) * factor - 1) * w + (j + 1) * factor - 1
    if kind == "strip_pool":
        i, j = np.divmod(np.arange(out.tokens, dtype=np.int64), w)
        return np.minimum(i + reach[0], h - 1) * w + np.minimum(j + reach[1], w - 1)
    raise ConfigError(f"unknown demand kind {kind!r}")


def fifo_depths(network: "BinaryViTAccelerator", slack_tokens: int = 2) -> dict[str, int]:
    """Set ``fifo_depth`` (words) on the edges that need a FIFO; returns the skew in tokens
    per forked edge as ``{"tensor->consumer.port": tokens}`` for reports.

    Deadlock freedom: every output of a fork holds its skew plus ``slack_tokens``.
    Throughput: ``_image_buffers`` adds one image in front of each port of a kernel that
    takes whole images (attention), and on the forks feeding those ports.
    """
    order = [s.name for s in network.model.steps if s.name in network.nodes]
    by_tensor: dict[str, list] = {}
    for edge in network.edges:
        by_tensor.setdefault(edge.tensor, []).append(edge)
    skews = {}
    for tensor, edges in by_tensor.items():
        if len(edges) < 2:
            continue
        need = _skews(network, order, tensor, edges)
        for edge, tokens in zip(edges, need):  # words at the consumer's lanes
            words_per_token = network.tensors[tensor].channels // edge.lanes
            edge.fifo_depth = max(2, (tokens + slack_tokens) * words_per_token + 2)
            skews[f"{tensor}->{edge.consumer or 'output'}.{edge.port}"] = tokens
    _image_buffers(network, by_tensor, slack_tokens)
    return skews


def _image_buffers(network, by_tensor: dict, slack_tokens: int) -> None:
    """A kernel that loads whole images (attention takes all keys and values before the
    first query, single-buffered) idles the branches feeding it unless the next image can
    wait in front of it: give each of its ports a FIFO of one image, and each fork that
    feeds such a port through pointwise kernels (same tokens) one image on every output,
    so the sibling branches let that branch run an image ahead."""
    for node in network.nodes.values():
        if node.op != "and_popcount_context":
            continue
        for port, source, lanes in node.inputs:
            info = network.tensors[source]
            image = (info.tokens + slack_tokens) * info.channels // lanes + 2
            for edge in by_tensor[source]:
                if edge.consumer == node.name and edge.port == port:
                    edge.fifo_depth = max(edge.fifo_depth, image)
            tensor = source
            while tensor in network.nodes and len(by_tensor.get(tensor, ())) < 2:
                feeder = network.nodes[tensor]
                if len(feeder.inputs) != 1 \
                        or network.tensors[feeder.inputs[0][1]].tokens != info.tokens:
                    break
                tensor = feeder.inputs[0][1]
            if len(by_tensor.get(tensor, ())) >= 2:
                t = network.tensors[tensor]
                for edge in by_tensor[tensor]:
                    words = t.channels // edge.lanes
                    edge.fifo_depth = max(edge.fifo_depth, (t.tokens + slack_tokens) * words + 2)


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
