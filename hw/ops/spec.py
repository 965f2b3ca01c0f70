"""``OpSpec``: everything the hardware flow knows about one operation of the integer program.

One subclass per op (``binaryvit.hw.ops.<op>``), found by op name through
``binaryvit.hw.ops.registry.spec_of``. A spec is stateless; every method takes the step
(``golden.intref.intmodel.Step``), its fold (a dict such as ``{"lanes": 4}``) and the
tensors (``TensorInfo`` by name, from ``binaryvit.hw.network.graph.infer_tensors``):

* ``tensor``: the step's output tensor as a stream (shape, kind, width);
* ``fold_keys``, ``candidates``, ``in_lanes``, ``out_lanes``: the folds it may take and the
  elements per word they give;
* ``cycles``: steady-state cycles per image, read from the kernel's own formula;
* ``structure`` and ``calibration``: what the kernel builds, for the resource model;
* ``build``: the kernel component and its input ports with their token demands (FIFO
  sizing); ``timing``: the kernel's word-level timing model;
* ``model``: the integer definition (``golden.intref.int_network.OPS``).

Ops without a kernel (``kernel = False``: constants, attention scores and masks, the
image's patches) keep the defaults that say so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from binaryvit.golden.intref.int_network import OPS as INTEGER_OPS
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.estimate.resource_model import KernelCost
from binaryvit.hw.ops.demand import Demand
from binaryvit.hw.ops.tensor_info import TensorInfo
from binaryvit.hw.ops.word_timing import Times, chain

__all__ = ["OpSpec", "Port", "Built", "array", "pointwise_timing"]

Tensors = dict[str, TensorInfo]
Steps = dict[str, Step]


def array(step: Step, key: str) -> np.ndarray:
    """The step's constant ``key`` as a numpy array."""
    return np.asarray(step.arrays[key])


@dataclass(frozen=True)
class Port:
    """An input port of a kernel: its name, the tensor it reads, the elements per word it
    takes, and its token demand (``binaryvit.hw.ops.demand``)."""

    name: str
    tensor: str
    lanes: int
    demand: Demand


@dataclass
class Built:
    """A step's kernel as ``OpSpec.build`` makes it: the component and its input ports."""

    component: Any
    ports: list[Port]


def pointwise_timing(unit, ready: dict[str, Times],
                     emits: Callable[[int], np.ndarray] | None = None):
    """One word per cycle on all ports together, output ``unit.latency`` cycles after the
    input (only on the input words ``emits`` selects)."""
    take = chain(np.maximum.reduce(list(ready.values())))
    out = take if emits is None else take[emits(len(take))]
    return {port: take for port in ready}, out + unit.latency


class OpSpec:
    """The hardware knowledge of one op (see the module docstring). Defaults describe a
    streaming kernel of ``lanes`` elements per word reading one input."""

    op: ClassVar[str]
    # whether the op has a kernel of its own, and whether its output is a stream in hardware
    kernel: ClassVar[bool] = True
    stream: ClassVar[bool] = True
    fold_keys: ClassVar[tuple[str, ...]] = ("lanes",)
    # Yosys' logic cells and flip-flops over the structural count, measured on the
    # generated tiny-digits kernels (synth_ecp5, one kernel per run; docs/boards.md).
    calibration: ClassVar[tuple[float, float]] = (1.0, 1.0)
    # kernel classes this op builds (their timing model is ``timing``)
    kernels: ClassVar[tuple[type, ...]] = ()
    # How the layer-sequential engine runs the op (``hw/engine/fusion.py``): an "anchor"
    # starts an instruction of class ``engine_instruction``; a "transform" (its output is
    # the chain's new value) or an "emit" (writes bits or group averages, the value passes
    # on) is an epilogue stage; "wiring" becomes an address pattern or payload constant;
    # "mask" is the compare that follows its attention scores in the MASK instruction.
    # None: the engine has no instruction for the op.
    engine_role: ClassVar[str | None] = None
    engine_instruction: ClassVar[str | None] = None

    # -- shapes and folds -------------------------------------------------------------------

    def tensor(self, step: Step, tensors: Tensors, model: IntModel) -> TensorInfo:
        raise NotImplementedError

    def candidates(self, step: Step, tensors: Tensors) -> list[dict[str, int]]:
        """Every legal fold of the step, the folding pass's search space."""
        if not self.kernel:
            return [{}]
        x = tensors[step.inputs[0]] if step.inputs else None
        return [{"lanes": lanes}
                for lanes in divisors(x.channels if x else tensors[step.name].channels)]

    def in_lanes(self, step: Step, fold: dict[str, int]) -> int:
        """Elements per input word the kernel reads (its first input)."""
        return fold.get("lanes", 1)

    def out_lanes(self, step: Step, fold: dict[str, int]) -> int:
        """Elements per output word under ``fold``."""
        return fold.get("lanes", 1)

    def cycles(self, step: Step, fold: dict[str, int], tensors: Tensors) -> int:
        """Steady-state cycles per image of the step's stream under ``fold`` (0: no
        stream). The default: one output word per cycle."""
        if not self.stream:
            return 0
        out = tensors[step.name]
        return out.tokens * out.channels // fold["lanes"]

    def flush_unit(self, step: Step, fold: dict[str, int], tensors: Tensors) -> int:
        """Words of one flush unit at an image boundary (0: the kernel never flushes)."""
        return 0

    # -- resources --------------------------------------------------------------------------

    def structure(self, step: Step, fold: dict[str, int], tensors: Tensors,
                  steps: Steps | None) -> KernelCost:
        """What the kernel's ``elaborate`` builds (``steps``: the model's steps by name)."""
        return KernelCost()

    def cost(self, step: Step, fold: dict[str, int], tensors: Tensors,
             steps: Steps | None = None) -> KernelCost:
        """``structure`` scaled by ``calibration``."""
        cost = self.structure(step, fold, tensors, steps)
        luts, ffs = self.calibration
        cost.luts *= luts
        cost.adder_bits *= luts
        cost.ffs *= ffs
        return cost

    # -- the kernel -------------------------------------------------------------------------

    def build(self, step: Step, fold: dict[str, int], tensors: Tensors, steps: Steps) -> Built:
        """The step's kernel component and its input ports."""
        raise NotImplementedError(f"operation {step.op!r} has no hardware kernel")

    def timing(self, unit, ready: dict[str, Times]) -> tuple[dict[str, Times], Times]:
        """``({port: take cycles}, output valid cycles)`` of ``unit`` when each input word is
        available from ``ready[port][k]`` and its output is never back-pressured (checked
        cycle for cycle against Amaranth's simulator in
        ``tests/hw/network/test_network_timing.py``)."""
        return pointwise_timing(unit, ready)

    def model(self, step: Step, *inputs):
        """The step's integer result from its input tensors (``golden.intref``)."""
        return INTEGER_OPS[step.op](step, *inputs)
