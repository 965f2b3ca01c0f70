"""The op specs by op name: ``spec_of(op)`` is the one place the hardware flow asks what an
op is (shapes, folds, cycles, cost, kernel, timing)."""
from __future__ import annotations

import numpy as np

from binaryvit.errors import ConfigError
from binaryvit.hw.ops.attention import AndPopcountContextSpec
from binaryvit.hw.ops.matmul import FixedMACSpec, XnorPopcountDotSpec
from binaryvit.hw.ops.no_kernel import (AttentionMaskSpec, AttentionScoresSpec, ConstantSpec,
                                        ImagePatchesSpec)
from binaryvit.hw.ops.pointwise import AffineSpec, ResidualAddSpec, RPReLUSpec, ThresholdSpec
from binaryvit.hw.ops.pooling import (AvgPool2dSpec, ChannelGroupAvgPoolSpec, GlobalAvgPoolSpec,
                                      WindowSum2dSpec)
from binaryvit.hw.ops.reshape import NearestUpsampleSpec, TileChannelsSpec, TokenPatchesSpec
from binaryvit.hw.ops.spec import OpSpec
from binaryvit.hw.ops.word_timing import Times

__all__ = ["SPECS", "spec_of", "has_spec", "kernel_timing", "stream_ops"]

SPECS: dict[str, OpSpec] = {spec.op: spec for spec in (
    ImagePatchesSpec(), TokenPatchesSpec(), ConstantSpec(), FixedMACSpec(), AffineSpec(),
    RPReLUSpec(), ResidualAddSpec(), ThresholdSpec(), XnorPopcountDotSpec(), WindowSum2dSpec(),
    AvgPool2dSpec(), ChannelGroupAvgPoolSpec(), TileChannelsSpec(), NearestUpsampleSpec(),
    GlobalAvgPoolSpec(), AttentionScoresSpec(), AttentionMaskSpec(), AndPopcountContextSpec(),
)}


def has_spec(op: str) -> bool:
    """Whether the hardware knows ``op``."""
    return op in SPECS


def spec_of(op: str) -> OpSpec:
    """The spec of ``op``; ConfigError when the hardware has no kernel for it."""
    spec = SPECS.get(op)
    if spec is None:
        raise ConfigError(f"operation {op!r} has no hardware kernel")
    return spec


def stream_ops() -> tuple[str, ...]:
    """The ops whose steps have an output stream of their own kernel (tappable, timed)."""
    return tuple(op for op, spec in SPECS.items() if spec.kernel)


def kernel_timing(unit, ready: dict[str, Times]) -> tuple[dict[str, Times], Times]:
    """``({port: take cycles}, output valid cycles)`` of kernel ``unit`` (its op's timing
    model) when each input word is available from ``ready[port][k]`` (and not before the
    port took word ``k − 1``) and its output is never back-pressured."""
    for spec in SPECS.values():
        if isinstance(unit, spec.kernels):
            return spec.timing(unit, {port: np.asarray(r, dtype=np.int64)
                                      for port, r in ready.items()})
    raise ConfigError(f"no timing model for kernel {type(unit).__name__}")
