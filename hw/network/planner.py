"""``plan_network``: an integer model and its folding become a :class:`NetworkPlan`.

One kernel per step that has one (each op's spec builds it, ``binaryvit.hw.ops``), a
width converter wherever a producer's words hold a different number of elements than its
consumer reads, a fork with one FIFO per consumer wherever several steps read one tensor,
FIFO depths from ``binaryvit.hw.network.fifo_sizing`` (see ``docs/network.md``). The
result is a value; the Amaranth top only elaborates it.
"""
from __future__ import annotations

import dataclasses

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.hw.network.fifo_sizing import size_fifos
from binaryvit.hw.network.folding import Folding
from binaryvit.hw.network.graph import attention_groups, infer_tensors
from binaryvit.hw.network.plan import Edge, NetworkPlan, PlanNode
from binaryvit.hw.ops.registry import spec_of

__all__ = ["plan_network"]


def plan_network(model: IntModel, folding: Folding, *, fifo_slack_tokens: int = 2) -> NetworkPlan:
    """The plan of ``model`` under ``folding`` (from ``folding.fold_network``).

    ``fifo_slack_tokens``: extra tokens every fork FIFO holds beyond the analysed skew.
    ConfigError when the model's first step is not the image unfolding, its last not the
    classifier, or a step reads a tensor that has no stream in hardware.
    """
    tensors = infer_tensors(model)
    attention_groups(model)
    steps = {s.name: s for s in model.steps}
    nodes: dict[str, PlanNode] = {}
    produced: dict[str, int] = {}
    for s in model.steps:
        spec = spec_of(s.op)
        fold = folding.folds[s.name]
        if s.op == "image_patches":
            # The pixel port carries what its reader (the stem) takes per word: a
            # gatherer in between would hold the host while the stem re-reads its
            # vector, and cost the stem a cycle per word after.
            readers = [r for r in model.steps if s.name in r.inputs]
            produced[s.name] = (spec_of(readers[0].op).in_lanes(readers[0],
                                                                folding.folds[readers[0].name])
                                if len(readers) == 1 else fold["lanes"])
            continue
        if not spec.kernel:
            continue
        built = spec.build(s, fold, tensors, steps)
        built.component._MustUse__silence = True   # elaborated by the top, or only estimated
        lanes = spec.out_lanes(s, fold)
        nodes[s.name] = PlanNode(s.name, s.op, built.component,
                                 [(p.name, p.tensor, p.lanes) for p in built.ports], lanes,
                                 [p.demand for p in built.ports])
        produced[s.name] = lanes
    last = model.steps[-1]
    if last.op != "fixed_mac" or tensors[last.name].tokens != 1:
        raise ConfigError(f"the final step {last.name!r} must be the classifier "
                          f"(a fixed_mac on one pooled token), got {last.op}")
    stem = model.steps[0]
    if stem.op != "image_patches":
        raise ConfigError(f"the first step must unfold the image (image_patches), got "
                          f"{stem.op!r} in {stem.name!r}")
    edges = []
    for node in nodes.values():
        for port, tensor, lanes in node.inputs:
            if tensor not in produced or (tensor not in nodes and tensor != stem.name):
                raise ConfigError(f"step {node.name!r} reads {tensor!r}, which has no "
                                  f"stream in hardware")
            edges.append(Edge(tensor, node.name, port, lanes))
    edges.append(Edge(last.name, None, "o", produced[last.name]))
    draft = NetworkPlan(model, folding, tensors, nodes, edges, produced, produced[stem.name],
                        last.name)
    sizing = size_fifos(draft, slack_tokens=fifo_slack_tokens)
    sized = [dataclasses.replace(edge, input_fifo_depth=before, fifo_depth=after)
             for edge, (before, after) in zip(edges, sizing.depths)]
    return dataclasses.replace(draft, edges=sized, skews=sizing.skews, schedule=sizing.schedule)
