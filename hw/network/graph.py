"""The tensors of an integer model as hardware sees them: element kind, width, shape.

``infer_tensors`` walks an :class:`~binaryvit.golden.intref.intmodel.IntModel` once and gives
every step's output a :class:`TensorInfo` (what a stream of it carries; each op's spec says
how, ``binaryvit.hw.ops``), without choosing any folding. The folding pass and the network
planner both start from it.
"""
from __future__ import annotations

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.hw.ops.registry import has_spec, spec_of
from binaryvit.hw.ops.tensor_info import TensorInfo, pixel_width

__all__ = ["TensorInfo", "infer_tensors", "pixel_width", "attention_groups"]


def attention_groups(model: IntModel) -> dict[str, tuple[Step, Step, Step]]:
    """Context step name → its (scores, mask, context) steps; ConfigError if the three are
    not chained as ``fold`` writes them."""
    by_name = {s.name: s for s in model.steps}
    groups = {}
    for s in model.steps:
        if s.op != "and_popcount_context":
            continue
        mask = by_name.get(s.inputs[0])
        scores = by_name.get(mask.inputs[0]) if mask is not None else None
        if mask is None or mask.op != "attention_mask" or scores is None \
                or scores.op != "attention_scores":
            raise ConfigError(f"step {s.name!r}: an and_popcount_context must read an "
                              f"attention_mask of attention_scores (one BinaryAttention)")
        groups[s.name] = (scores, mask, s)
    return groups


def infer_tensors(model: IntModel) -> dict[str, TensorInfo]:
    """TensorInfo of ``"input"`` and of every step's output; ConfigError names a step the
    hardware cannot express."""
    c = model.config
    t: dict[str, TensorInfo] = {
        "input": TensorInfo("pixel", pixel_width(model), c.in_channels,
                            c.image_size[0] * c.image_size[1], tuple(c.image_size))}
    for s in model.steps:
        if not has_spec(s.op):
            raise ConfigError(f"step {s.name!r}: operation {s.op!r} has no hardware kernel")
        t[s.name] = spec_of(s.op).tensor(s, t, model)
    return t
