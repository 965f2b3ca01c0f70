"""Group ``estimate.json``'s per-step figures into what a reader asks about: resources by op
class, and cycles per block of the network.

``estimate.json`` (``binaryvit generate``) lists each step of the integer program under
``layers`` (name, op, cycles per image) and, per FPGA family, each hardware part's resources
under ``resources.<family>.parts``: kernels by step name, and the stream plumbing the
network adds as ``<tensor>.fifo<k>`` / ``<tensor>.fifo<k>in`` (FIFOs), ``<tensor>.width<k>``
(width converters), ``<tensor>.fork`` and ``argmax`` (see
``binaryvit.hw.estimate.network_estimate.NetworkResources``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OP_CLASSES", "CLASS_ORDER", "FIFOS", "PLUMBING", "OTHER", "RESOURCE_FIELDS",
           "op_class", "part_class", "resources_by_class", "block_of", "name_in_block",
           "BlockCycles", "cycles_per_block"]

# Op of the integer program -> the class the report groups it in.
OP_CLASSES = {
    "xnor_popcount_dot": "binary matmuls (XNOR-popcount)",
    "attention_scores": "attention (scores, mask, context)",
    "attention_mask": "attention (scores, mask, context)",
    "and_popcount_context": "attention (scores, mask, context)",
    "affine": "affines (norms)",
    "rprelu": "RPReLU",
    "residual_add": "residual adds",
    "threshold": "sign thresholds",
    "window_sum2d": "pooling and upsampling",
    "avgpool2d": "pooling and upsampling",
    "channel_group_avgpool": "pooling and upsampling",
    "global_avgpool": "pooling and upsampling",
    "nearest_upsample": "pooling and upsampling",
    "image_patches": "patches and channel tiling",
    "token_patches": "patches and channel tiling",
    "tile_channels": "patches and channel tiling",
    "constant": "patches and channel tiling",
    "fixed_mac": "stem and classifier MACs",
}
FIFOS = "FIFOs"
PLUMBING = "forks, width converters, argmax"
OTHER = "other"
CLASS_ORDER = (*dict.fromkeys(OP_CLASSES.values()), FIFOS, PLUMBING, OTHER)
RESOURCE_FIELDS = ("luts", "ffs", "brams", "dsps")

_FIFO = re.compile(r"\.fifo\d+(in)?$")
_PLUMBING = re.compile(r"(\.width\d+|\.fork)$|^argmax$")


def op_class(op: str) -> str:
    """The class of the integer program's op ``op`` (``OTHER`` for an op not listed)."""
    return OP_CLASSES.get(op, OTHER)


def part_class(part: str, step_ops: dict[str, str]) -> str:
    """The class of the hardware part named ``part``; ``step_ops`` maps step name -> op."""
    if part in step_ops:
        return op_class(step_ops[part])
    if _FIFO.search(part):
        return FIFOS
    if _PLUMBING.search(part):
        return PLUMBING
    return OTHER


def resources_by_class(estimate: dict) -> dict[str, dict[str, dict[str, int]]]:
    """``family -> class -> {luts, ffs, brams, dsps}``, summed over the family's parts, with
    the classes in ``CLASS_ORDER`` and only those that hold any resource."""
    step_ops = {layer["name"]: layer["op"] for layer in estimate.get("layers", [])}
    result = {}
    for family, figures in estimate.get("resources", {}).items():
        sums: dict[str, dict[str, int]] = {}
        for part, resources in figures.get("parts", {}).items():
            total = sums.setdefault(part_class(part, step_ops), dict.fromkeys(RESOURCE_FIELDS, 0))
            for name in RESOURCE_FIELDS:
                total[name] += resources.get(name, 0)
        result[family] = {c: sums[c] for c in CLASS_ORDER
                          if c in sums and any(sums[c].values())}
    return result


_BLOCK = re.compile(r"^stages\.(\d+)\.(blocks\.(\d+)|merge)(\.|$)")


def block_of(step: str) -> str:
    """The block of the network that step ``step`` belongs to, in words: ``stem``, ``stage 0
    block 1``, ``stage 1 merge``, ``head`` (the classifier too); else its first name part."""
    match = _BLOCK.match(step)
    if match:
        stage, _, block, _ = match.groups()
        return f"stage {stage} " + (f"block {block}" if block is not None else "merge")
    first = step.split(".", 1)[0]
    return "head" if first in ("head", "classifier") else first


def name_in_block(step: str) -> str:
    """``step`` without its block's prefix (``stages.0.blocks.1.mlp.fc1`` -> ``mlp.fc1``);
    the whole name for a block's own output step and for steps outside the stages."""
    match = _BLOCK.match(step)
    return step[match.end():] or step if match else step


@dataclass(frozen=True)
class BlockCycles:
    """One block's cycles per image: a dataflow block runs its steps concurrently, so it
    delivers an image every ``estimated`` cycles, its slowest step's (``slowest``).
    ``ties``: how many other steps of the block are estimated as slow. ``ideal``: the
    largest work over lanes of its steps; ``measured``: the slowest measured step's cycles
    when the simulation measured any of the block's steps, else ``None``."""

    block: str
    estimated: int
    ideal: int
    slowest: str
    ties: int
    measured: float | None
    measured_slowest: str | None


def cycles_per_block(estimate: dict, measured: dict[str, float] | None = None) -> list[BlockCycles]:
    """Per block, in network order, from ``estimate.json``'s layers and ``measured`` (step
    name -> measured cycles per image, ``sim.json``'s ``per_layer_cycles``)."""
    measured = measured or {}
    blocks: dict[str, list[dict]] = {}
    for layer in estimate.get("layers", []):
        blocks.setdefault(block_of(layer["name"]), []).append(layer)
    result = []
    for block, layers in blocks.items():
        slowest = max(layers, key=lambda layer: layer["cycles_per_image"])
        ties = sum(layer["cycles_per_image"] == slowest["cycles_per_image"]
                   for layer in layers) - 1
        seen = [(measured[layer["name"]], layer["name"]) for layer in layers
                if isinstance(measured.get(layer["name"]), (int, float))]
        worst = max(seen) if seen else (None, None)
        result.append(BlockCycles(block, slowest["cycles_per_image"],
                                  max(layer.get("ideal_cycles_per_image", 0) for layer in layers),
                                  slowest["name"], ties, *worst))
    return result
