"""Fusion: an integer program's steps → instruction groups with epilogue chains (by name).

The pass walks the :class:`IntModel` in program order (average pools hoisted to just after
their input, see :meth:`_Lowering.order`). Each *anchor* step starts a group:
``xnor_popcount_dot`` (MATMUL), ``and_popcount_context`` (MATMUL, context mode),
``attention_scores`` + its ``attention_mask`` (MASK), ``window_sum2d`` / ``avgpool2d`` /
``global_avgpool`` (WINDOW), ``fixed_mac`` (MAC). From the anchor's output the chain grows
greedily along the value's consumers:

* every ``threshold`` / ``channel_group_avgpool`` of the value is an emitting stage (bits or
  channel-group averages go to memory, the value passes on);
* the first ``affine`` / ``rprelu`` / ``residual_add`` consumer whose other operand is
  already in memory (written by an *earlier* group, or a constant) becomes the next stage,
  and its output the chain's value;
* a value that some other step still reads later is stored first;
* a stage that would take the epilogue past its per-value constant budget (the RTL's
  constant-buffer width, ``EngineConfig.epilogue_constant_bits``) or past 15 stages is left
  for a later instruction.

Wiring steps never run: ``tile_channels`` and ``nearest_upsample`` become address patterns of
the ``Add`` operand that reads them, ``image_patches`` / ``token_patches`` the ``PATCHES``
pattern of a MAC or MATMUL source, ``constant`` a tensor in the parameter payload. A
pointwise step no chain reached (never in BinaryViT) runs as a 1 × 1 window over its input.
Every stage applies its own step's rounding and saturation, so the result is the integer
program's, integer for integer. Steps the engine has no instruction for raise CompileError.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from binaryvit.errors import CompileError
from binaryvit.hw.engine.isa import Pattern
from binaryvit.hw.ops.registry import SPECS
from binaryvit.golden.intref.intmodel import IntModel, Step

ANCHORS = {op: spec.engine_instruction for op, spec in SPECS.items()
           if spec.engine_role == "anchor"}
TRANSFORMS = tuple(op for op, spec in SPECS.items() if spec.engine_role == "transform")
EMITS = tuple(op for op, spec in SPECS.items() if spec.engine_role == "emit")
WIRING = tuple(op for op, spec in SPECS.items() if spec.engine_role == "wiring")
SUPPORTED = tuple(op for op, spec in SPECS.items() if spec.engine_role is not None)
MAX_STAGES = 15  # the encoding's 4-bit stage count


@dataclass(frozen=True)
class Operand:
    """A tensor (by name) read through an address pattern."""

    tensor: str
    pattern: Pattern = Pattern.IDENTITY
    factor: int = 1
    grid_h: int = 0
    grid_w: int = 0


@dataclass
class ChainStage:
    """One epilogue stage: ``kind`` in ``affine``, ``rprelu``, ``add``, ``threshold``,
    ``group``, ``store``; ``step`` the integer-program step it executes (None for a store);
    ``value`` the tensor it produces, emits or stores; ``operand`` an add's other input."""

    kind: str
    step: Step | None
    value: str
    operand: Operand | None = None


@dataclass
class Group:
    """One future instruction: ``kind`` (``matmul``, ``context``, ``mask``, ``window``,
    ``mac``), its anchor steps, its source operand(s) and its epilogue chain."""

    kind: str
    anchor: Step
    sources: list[Operand]
    stages: list[ChainStage] = field(default_factory=list)
    mask_step: Step | None = None

    @property
    def name(self) -> str:
        return self.anchor.name

    def reads(self) -> list[str]:
        names = [s.tensor for s in self.sources]
        names += [st.operand.tensor for st in self.stages if st.operand is not None]
        return names

    def writes(self) -> list[str]:
        if self.kind == "mask":
            return [self.mask_step.name]
        return [st.value for st in self.stages if st.kind in ("store", "threshold", "group")]


@dataclass
class Lowered:
    """The groups in execution order and what the memory plan needs to know."""

    groups: list[Group]
    constants: dict[str, Step]          # constant tensors (the payload holds them)
    transposed_bits: set[str]           # bit tensors stored BITS_T (context values)
    output: str                         # the logits tensor


class _Lowering:
    def __init__(self, model: IntModel, constant_bits: int | None, wide_bits: int):
        self.model = model
        self.budget = constant_bits
        self.wide_bits = wide_bits
        self.by_name = {s.name: s for s in model.steps}
        self.index = {s.name: i for i, s in enumerate(model.steps)}
        for s in model.steps:
            if s.op not in SUPPORTED:
                raise CompileError(f"step {s.name!r}: the engine has no instruction for "
                                   f"operation {s.op!r}")
        self.consumers: dict[str, list[Step]] = {}
        for s in model.steps:
            if s.op in WIRING:
                continue
            for name in s.inputs:
                self.consumers.setdefault(self.resolve(name).tensor, []).append(s)
        self.done: set[str] = set()
        self.stored: set[str] = {"input"} | {s.name for s in model.steps if s.op == "constant"}
        self.output = model.steps[-1].name

    def resolve(self, name: str) -> Operand:
        """The stored tensor behind ``name`` and the pattern that reads it."""
        step = self.by_name.get(name)
        if step is None or step.op not in WIRING or step.op == "constant":
            return Operand(name)
        inner = self.resolve(step.inputs[0])
        if inner.pattern != Pattern.IDENTITY:
            raise CompileError(f"step {name!r}: {step.op} of a tensor that is already "
                               f"{inner.pattern.name.lower()}d has no single address pattern")
        p = step.params
        if step.op == "tile_channels":
            return Operand(inner.tensor, Pattern.TILE, p["copies"])
        if step.op == "nearest_upsample":
            return Operand(inner.tensor, Pattern.UPSAMPLE, p["factor"], p["grid_h"], p["grid_w"])
        if step.op == "token_patches":
            return Operand(inner.tensor, Pattern.PATCHES, p["size"], p["grid_h"], p["grid_w"])
        h, w = self.model.config.image_size
        return Operand(inner.tensor, Pattern.PATCHES, p["size"], h, w)

    def pending(self, name: str) -> list[Step]:
        return [c for c in self.consumers.get(name, []) if c.name not in self.done]

    def fusable(self, step: Step, value: str) -> Operand | None | bool:
        """For a transforming consumer of ``value``: False if it cannot join the chain now,
        else its other operand (None for a unary step)."""
        if step.op != "residual_add":
            return None if step.inputs[0] == value else False
        a, b = step.inputs
        if a == value:
            other = b
        elif b == value:
            other = a
        else:
            return False
        operand = self.resolve(other)
        return operand if operand.tensor in self.stored and operand.tensor != value else False

    def constant_bits(self, kind: str) -> int:
        """Bits of per-channel constants a stage reads per value."""
        return {"affine": 16 + self.wide_bits, "rprelu": 32 + 2 * self.wide_bits,
                "threshold": self.wide_bits + 1}.get(kind, 0)

    def fits(self, group: Group, kind: str) -> bool:
        """Whether one more ``kind`` stage keeps the epilogue within its constant budget and
        leaves room in the encoding for a final store."""
        if len(group.stages) >= MAX_STAGES - 1:
            return False
        if self.budget is None:
            return True
        used = sum(self.constant_bits(st.kind) for st in group.stages)
        return used + self.constant_bits(kind) <= self.budget

    def grow(self, group: Group, value: str) -> None:
        """Extend ``group``'s chain from the tensor ``value``."""
        while True:
            for c in self.pending(value):
                kind = "threshold" if c.op == "threshold" else "group"
                if c.op in EMITS and c.inputs[0] == value and self.fits(group, kind):
                    group.stages.append(ChainStage(kind, c, c.name))
                    self.done.add(c.name)
            nxt, operand = None, None
            for c in self.pending(value):
                if c.op in TRANSFORMS:
                    result = self.fusable(c, value)
                    if result is not False and self.fits(group, c.op):
                        nxt, operand = c, result
                        break
            later = [c for c in self.pending(value) if c is not nxt]
            if (later or value == self.output) and value not in self.stored:
                group.stages.append(ChainStage("store", None, value))
            if nxt is None:
                return
            kind = "add" if nxt.op == "residual_add" else nxt.op
            group.stages.append(ChainStage(kind, nxt, nxt.name, operand))
            self.done.add(nxt.name)
            value = nxt.name

    def anchor_group(self, step: Step) -> Group:
        kind = ANCHORS[step.op]
        sources = [self.resolve(name) for name in step.inputs]
        group = Group(kind, step, sources)
        self.done.add(step.name)
        if kind == "mask":
            users = self.pending(step.name)
            if len(users) != 1 or users[0].op != "attention_mask":
                raise CompileError(f"step {step.name!r}: attention scores must feed exactly one "
                                   f"attention_mask (the engine never stores scores)")
            group.mask_step = users[0]
            self.done.add(users[0].name)
            return group
        self.grow(group, step.name)
        return group

    def order(self) -> list[Step]:
        """Program order, with every average pool hoisted to just after the step producing
        its input: a pool that feeds a shortcut then runs before the matmul whose epilogue
        adds it (the patch merge), so that epilogue fuses the add instead of storing."""
        order = [s for s in self.model.steps if s.op != "avgpool2d"]
        for pool in (s for s in self.model.steps if s.op == "avgpool2d"):
            source = self.resolve(pool.inputs[0]).tensor
            at = next((i + 1 for i, s in enumerate(order) if s.name == source), 0)
            order.insert(at, pool)
        return order

    def lower(self) -> Lowered:
        groups: list[Group] = []
        for step in self.order():
            if step.name in self.done or step.op in WIRING:
                continue
            if step.op in ANCHORS:
                group = self.anchor_group(step)
            elif step.op == "attention_mask":
                raise CompileError(f"step {step.name!r}: an attention mask must read attention "
                                   f"scores directly")
            else:
                source = self.resolve(step.inputs[0])
                if source.tensor not in self.stored or source.pattern != Pattern.IDENTITY:
                    raise CompileError(f"step {step.name!r} ({step.op}) reads {step.inputs[0]!r}, "
                                       f"which no instruction leaves in memory")
                group = Group("pointwise", step, [source])
                self.grow(group, source.tensor)
                if step.name not in self.done:
                    raise CompileError(f"step {step.name!r} ({step.op}): its operands are not "
                                       f"in memory when it runs")
            for name in group.writes():
                self.stored.add(name)
            for name in group.reads():
                if name not in self.stored:
                    raise CompileError(f"group {group.name!r} reads {name!r} before any "
                                       f"instruction writes it")
            groups.append(group)
        missing = [s.name for s in self.model.steps
                   if s.op not in WIRING and s.name not in self.done]
        if missing:
            raise CompileError(f"step {missing[0]!r} is not reached by any instruction")
        transposed = {g.sources[1].tensor for g in groups if g.kind == "context"}
        for g in groups:
            row_major = g.sources[:1] if g.kind == "context" else g.sources
            clash = transposed.intersection(s.tensor for s in row_major)
            if clash:
                raise CompileError(f"bits {sorted(clash)[0]!r} are read both as attention values "
                                   f"and row by row; the engine stores one layout per tensor")
        constants = {s.name: s for s in self.model.steps if s.op == "constant"}
        return Lowered(groups, constants, transposed, self.output)


def lower(model: IntModel, constant_bits: int | None = None, wide_bits: int = 32) -> Lowered:
    """Fuse ``model``'s steps into instruction groups (see the module docstring).

    ``constant_bits`` caps the per-channel constant bits one epilogue reads per value (an
    ``Affine`` reads ``16 + wide_bits``, an ``RPReLU`` ``32 + 2·wide_bits``, a ``Threshold``
    ``wide_bits + 1``): a chain that would exceed it stores its value and the rest runs as a
    1 × 1 window. None: no cap."""
    if not model.steps:
        raise CompileError("the integer model has no steps")
    return _Lowering(model, constant_bits, wide_bits).lower()


__all__ = ["Operand", "ChainStage", "Group", "Lowered", "lower", "ANCHORS", "SUPPORTED"]
