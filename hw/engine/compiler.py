"""The engine compiler: an :class:`IntModel` → a :class:`Program` for one :class:`EngineConfig`.

Passes (each takes a value and returns one; the program is built last):

1. **formats**: the model's stream, constant and accumulator widths must fit the engine's
   (``SB_MAC16`` multiplies 16 × 16); the overflow proof is re-run at the engine's
   accumulator width. Each refusal is one line naming the format and the quantize option.
2. **fusion** (``binaryvit.hw.engine.fusion``): steps → instruction groups with epilogues.
3. **tensors**: every tensor an instruction writes, with its layout (``STREAM`` when its proven
   interval fits 16 bits, else ``WIDE``; bits ``BITS`` or ``BITS_T``), shape and lifetime.
4. **payload**: the encoded program and every constant in group order (weight bits with
   columns reordered for ``PATCHES`` sources), each region in the bank with the least
   payload so far; a bank's regions form its segment at the top of the bank.
5. **placement**: each tensor a bank (greedy, minimising the cycle model of the instructions
   that touch it), then an address (first fit among tensors live at the same time); a tensor
   that fits no bank raises CompileError with the step, the bytes needed and available.
6. **instructions**, their encoding, the payload words and the cycle model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from binaryvit.errors import CompileError, OverflowProofError
from binaryvit.golden.intref.bounds import Interval
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.hw.engine.config import UP5K, WORD_BYTES, EngineConfig
from binaryvit.hw.engine.cycle_model import instruction_cycles
from binaryvit.hw.engine.encoding import encode_program, instruction_words
from binaryvit.hw.engine.fusion import ChainStage, Group, Lowered, Operand, lower
from binaryvit.hw.engine.isa import (
    Access,
    Add,
    Affine,
    GroupAverage,
    Instruction,
    Mac,
    Mask,
    MatMul,
    MatMulMode,
    Pattern,
    RPReLU,
    Store,
    TensorKind,
    TensorRef,
    Threshold,
    Window,
    WindowMode,
)
from binaryvit.hw.engine.program import PayloadRegion, PayloadSegment, Program, TensorPlacement
from binaryvit.hw.engine.tensor_words import bit_words, signed_words, wide_words
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.quantize.overflow import OverflowProof, prove_no_overflow


def check_formats(model: IntModel, config: EngineConfig) -> None:
    """CompileError unless the model's formats fit the engine's datapath."""
    f = model.formats
    checks = (("stream_width", config.stream_bits, "--stream-width"),
              ("const_bits", config.const_bits, "--const-bits"),
              ("acc_width", config.accumulator_bits, "--acc-width"))
    for key, limit, option in checks:
        if f.get(key, 0) > limit:
            raise CompileError(f"format {key}={f[key]} is wider than engine {config.name!r} "
                               f"allows ({limit} bits); quantize with {option} {limit}")
    lo, hi = model.input_range
    if lo < -(1 << 15) or hi >= 1 << 15:
        raise CompileError(f"input pixels span [{lo}, {hi}], which does not fit the engine's "
                           f"16-bit words")


@dataclass
class _Tensor:
    name: str
    kind: TensorKind
    rows: int
    cols: int
    first: int
    last: int

    def words(self, wide: int) -> int:
        return TensorRef(0, self.kind, self.rows, self.cols).words(wide)


def _shapes(model: IntModel) -> dict[str, tuple[int, int]]:
    """``(rows, cols)`` of every step's output, from one forward pass on a blank image."""
    c = model.config
    shapes: dict[str, tuple[int, int]] = {}

    def observe(step: Step, out: torch.Tensor) -> None:
        if step.op in ("attention_mask", "attention_scores"):
            shapes[step.name] = (out.shape[1] * out.shape[2], out.shape[3])
        elif out.dim() == 2:
            shapes[step.name] = (1, out.shape[1])
        elif out.dim() == 3:
            shapes[step.name] = (out.shape[1], out.shape[2])
        else:
            shapes[step.name] = tuple(out.shape[-2:])

    blank = torch.zeros(1, c.in_channels, *c.image_size, dtype=torch.int64)
    run_int_network(model, blank, observer=observe)
    shapes["input"] = (c.image_size[0] * c.image_size[1], c.in_channels)
    return shapes


def _bits(lo: int, hi: int) -> int:
    """Signed bits holding every integer of ``[lo, hi]``."""
    return Interval(int(lo), int(hi)).bits


class _Compiler:
    def __init__(self, model: IntModel, config: EngineConfig, proof: OverflowProof | None):
        self.model, self.config = model, config
        self.wide = config.wide_words
        check_formats(model, config)
        self.lowered: Lowered = lower(model, config.epilogue_constant_bits, config.wide_bits)
        if proof is None or proof.acc_width > config.accumulator_bits:
            try:
                proof = prove_no_overflow(model, acc_width=config.accumulator_bits)
            except OverflowProofError as exc:
                raise CompileError(f"engine {config.name!r}: {exc}") from None
        self.proof = proof
        self.groups: list[Group] = self.lowered.groups
        self.shapes = _shapes(model)
        self.tensors = self._tensors()

    # ---- pass 3: tensors -----------------------------------------------------------------
    def _value_kind(self, name: str) -> TensorKind:
        interval = self.proof.outputs.get(name)
        lo, hi = interval if interval is not None else (0, 0)
        bits = _bits(lo, hi)
        if bits <= 16:
            return TensorKind.STREAM
        if bits <= self.config.wide_bits:
            return TensorKind.WIDE
        raise CompileError(f"step {name!r}: its values span [{lo}, {hi}] ({bits} bits), wider "
                           f"than the engine's {self.config.wide_bits}-bit wide words")

    def _tensors(self) -> dict[str, _Tensor]:
        tensors: dict[str, _Tensor] = {}
        rows, cols = self.shapes["input"]
        tensors["input"] = _Tensor("input", TensorKind.STREAM, rows, cols, -1, -1)
        for i, g in enumerate(self.groups):
            for name in g.writes():
                if g.kind == "mask" or self.model.step(name).op == "threshold":
                    kind = TensorKind.BITS_T if name in self.lowered.transposed_bits \
                        else TensorKind.BITS
                else:
                    kind = self._value_kind(name)
                r, c = self.shapes[name]
                tensors[name] = _Tensor(name, kind, r, c, i, i)
        for i, g in enumerate(self.groups):
            for name in g.reads():
                if name in tensors:
                    tensors[name].last = max(tensors[name].last, i)
        tensors[self.lowered.output].last = len(self.groups)
        if tensors[self.lowered.output].kind == TensorKind.STREAM:
            tensors[self.lowered.output].kind = TensorKind.WIDE
        return tensors

    # ---- pass 4: payload ------------------------------------------------------------------
    def _constant_blocks(self) -> list[tuple[str, np.ndarray]]:
        """``(region name, words)`` of every constant, in group order."""
        blocks: list[tuple[str, np.ndarray]] = []
        seen: set[str] = set()

        def add(name: str, words: np.ndarray) -> None:
            if name not in seen:
                seen.add(name)
                blocks.append((name, np.asarray(words, dtype=np.uint16).reshape(-1)))

        for g in self.groups:
            a = g.anchor
            if g.kind == "matmul":
                add(f"{a.name}/weight_bits", bit_words(self._weight_bits(g)))
            elif g.kind == "mask":
                m = g.mask_step
                add(f"{m.name}/lut", wide_words(m.arrays["lut"], self.wide, f"step {m.name!r} lut"))
            elif g.kind == "mac":
                w = self._mac_weights(g)
                self._check_const(a, "weight", w)
                add(f"{a.name}/weight", signed_words(w, f"step {a.name!r} weight").reshape(-1))
                add(f"{a.name}/bias", wide_words(a.arrays["bias"], self.wide, f"step {a.name!r} bias"))
            for st in g.stages:
                if st.kind in ("affine", "rprelu", "threshold"):
                    add(f"{st.step.name}/{st.kind}", self._stage_words(st.step, st.kind))
                if st.operand is not None and st.operand.tensor in self.lowered.constants:
                    const = self.lowered.constants[st.operand.tensor]
                    add(const.name, signed_words(const.arrays["value"], f"step {const.name!r}"))
        return blocks

    def _check_const(self, step: Step, key: str, values: np.ndarray) -> None:
        v = np.asarray(values)
        if v.size == 0:
            return
        bits = _bits(int(v.min()), int(v.max()))
        if bits > self.config.const_bits:
            raise CompileError(f"step {step.name!r}: {key} constants need {bits} bits; engine "
                               f"{self.config.name!r} multiplies {self.config.const_bits}-bit "
                               f"constants (quantize with --const-bits {self.config.const_bits})")

    def _stage_words(self, step: Step, kind: str) -> np.ndarray:
        a, w, name = step.arrays, self.wide, f"step {step.name!r}"
        if kind == "affine":
            self._check_const(step, "mul", a["mul"])
            return np.concatenate([signed_words(a["mul"], name), wide_words(a["bias"], w, name)])
        if kind == "rprelu":
            self._check_const(step, "mul_pos", a["mul_pos"])
            self._check_const(step, "mul_neg", a["mul_neg"])
            return np.concatenate([wide_words(a["pre_bias"], w, name),
                                   signed_words(a["mul_pos"], name),
                                   signed_words(a["mul_neg"], name),
                                   wide_words(a["post_bias"], w, name)])
        return np.concatenate([wide_words(a["thresh"], w, name),
                               bit_words(a["flip"].reshape(1, -1))])

    @staticmethod
    def _patch_order(k: int, size: int) -> np.ndarray:
        """Column permutation from the integer program's ``(c, i, j)`` patch order to the
        ``PATCHES`` pattern's ``(i, j, c)``: engine column ``(i·size + j)·C + c`` takes
        program column ``c·size² + i·size + j``."""
        channels = k // (size * size)
        i, j, c = np.meshgrid(np.arange(size), np.arange(size), np.arange(channels),
                              indexing="ij")
        return (c * size * size + i * size + j).reshape(-1)

    def _weight_bits(self, g: Group) -> np.ndarray:
        w = g.anchor.arrays["weight_bits"]
        src = g.sources[0]
        return w[:, self._patch_order(w.shape[1], src.factor)] \
            if src.pattern == Pattern.PATCHES else w

    def _mac_weights(self, g: Group) -> np.ndarray:
        w = g.anchor.arrays["weight"]
        src = g.sources[0]
        return w[:, self._patch_order(w.shape[1], src.factor)] \
            if src.pattern == Pattern.PATCHES else w

    # ---- pass 6: instructions -------------------------------------------------------------
    def _ref(self, name: str, refs: dict[str, TensorRef], params: dict[str, int]) -> TensorRef:
        if name in self.lowered.constants:
            rows, cols = self.lowered.constants[name].arrays["value"].shape
            return TensorRef(params[name], TensorKind.STREAM, rows, cols)
        return refs[name]

    def _access(self, op: Operand, refs, params) -> Access:
        return Access(self._ref(op.tensor, refs, params), op.pattern, op.factor, op.grid_h, op.grid_w)

    @staticmethod
    def _width(step: Step) -> int:
        return step.params.get("width", 0) or 0

    def _stage(self, st: ChainStage, refs, params):
        s = st.step
        if st.kind == "affine":
            return Affine(params[f"{s.name}/affine"], s.params["shift"], self._width(s))
        if st.kind == "rprelu":
            return RPReLU(params[f"{s.name}/rprelu"], s.params["shift"], self._width(s))
        if st.kind == "add":
            return Add(self._access(st.operand, refs, params), self._width(s))
        if st.kind == "threshold":
            return Threshold(params[f"{s.name}/threshold"], refs[s.name])
        if st.kind == "group":
            p = s.params
            return GroupAverage(p["group"], p["mul"], p["shift"], self._width(s), refs[s.name])
        return Store(refs[st.value])

    def build(self, g: Group, refs: dict[str, TensorRef], params: dict[str, int]) -> Instruction:
        a = g.anchor
        stages = tuple(self._stage(st, refs, params) for st in g.stages)
        if g.kind == "matmul":
            w = a.arrays["weight_bits"]
            weights = TensorRef(params[f"{a.name}/weight_bits"], TensorKind.BITS, *w.shape)
            return MatMul(MatMulMode.XNOR, self._access(g.sources[0], refs, params), weights, 1,
                          stages)
        if g.kind == "context":
            return MatMul(MatMulMode.CONTEXT, self._access(g.sources[0], refs, params),
                          refs[g.sources[1].tensor], a.params["heads"], stages)
        if g.kind == "mask":
            m = g.mask_step
            q, k = (refs[s.tensor] for s in g.sources)
            return Mask(q, k, a.params["heads"], params[f"{m.name}/lut"], m.params["theta"],
                        m.params["theta_shift"], refs[m.name])
        if g.kind == "mac":
            return Mac(self._access(g.sources[0], refs, params), params[f"{a.name}/weight"],
                       params[f"{a.name}/bias"], a.arrays["weight"].shape[0], a.params["shift"],
                       self._width(a), stages)
        source = refs[g.sources[0].tensor]
        if g.kind == "pointwise":
            return Window(WindowMode.SUM, source, source.rows, 1, 1, 1, 1, 0, 0, 1, 0, 0, stages)
        p = a.params
        if a.op == "global_avgpool":
            return Window(WindowMode.GLOBAL, source, source.rows, 1, 1, 1, 1, 0, 0, p["mul"],
                          p["shift"], self._width(a), stages)
        mode = WindowMode.SUM if a.op == "window_sum2d" else WindowMode.AVERAGE
        return Window(mode, source, p["grid_h"], p["grid_w"], p["kh"], p["kw"], p["stride"],
                      p["pad_h"], p["pad_w"], p.get("mul", 1), p.get("shift", 0),
                      self._width(a), stages)

    # ---- pass 5: placement ----------------------------------------------------------------
    def _users(self) -> dict[str, list[int]]:
        users: dict[str, list[int]] = {}
        for i, g in enumerate(self.groups):
            for name in set(g.reads()) | set(g.writes()):
                if name in self.tensors:
                    users.setdefault(name, []).append(i)
        return users

    def _choose_banks(self, params: dict[str, int], fetch: list[int], usable: list[int]) \
            -> dict[str, int]:
        """Bank per tensor: round robin, then three greedy passes that move each tensor to the
        bank minimising the cycles of the instructions touching it (measured on tiny-digits:
        one pass 113.6 k cycles, three 110.0 k, five 109.9 k)."""
        c = self.config
        banks = [i for i, words in enumerate(usable) if words > 0]
        if not banks:
            raise CompileError(f"the parameter payload fills all {c.total_words * WORD_BYTES} "
                               f"bytes of engine {c.name!r}; no room is left for activations")
        names = sorted(self.tensors, key=lambda n: self.tensors[n].first)
        choice = {n: banks[i % len(banks)] for i, n in enumerate(names)}
        users = self._users()

        def ref(name: str, bank: int) -> TensorRef:
            t = self.tensors[name]
            return TensorRef(c.bank_start(bank), t.kind, t.rows, t.cols)

        refs = {n: ref(n, choice[n]) for n in self.tensors}

        def cost(name: str) -> int:
            return sum(instruction_cycles(self.build(self.groups[i], refs, params), c,
                                          fetch[i]).cycles for i in users.get(name, []))

        for _ in range(3):
            for name in names:
                if not users.get(name):
                    continue
                best, best_cost = choice[name], None
                for bank in banks:
                    refs[name] = ref(name, bank)
                    value = cost(name)
                    if best_cost is None or value < best_cost:
                        best, best_cost = bank, value
                choice[name] = best
                refs[name] = ref(name, best)
        return choice

    def _place(self, choice: dict[str, int], usable: list[int]) -> dict[str, TensorPlacement]:
        """First-fit addresses per bank among tensors live at the same time."""
        c = self.config
        placed: dict[int, list[tuple[int, int, _Tensor]]] = {i: [] for i in range(len(c.banks))}
        out: dict[str, TensorPlacement] = {}
        order = sorted(self.tensors.values(), key=lambda t: (t.first, -t.words(self.wide)))
        for t in order:
            size = t.words(self.wide)
            banks = [choice[t.name]] + [b for b in range(len(c.banks)) if b != choice[t.name]]
            best_free = 0
            for bank in banks:
                live = sorted((start, end) for start, end, o in placed[bank]
                              if o.first <= t.last and t.first <= o.last)
                address, free = 0, 0
                for start, end in live:
                    if start - address >= size:
                        break
                    free = max(free, start - address)
                    address = max(address, end)
                free = max(free, usable[bank] - address)
                best_free = max(best_free, free)
                if address + size <= usable[bank]:
                    placed[bank].append((address, address + size, t))
                    ref = TensorRef(c.bank_start(bank) + address, t.kind, t.rows, t.cols)
                    out[t.name] = TensorPlacement(t.name, ref, bank, t.first, t.last)
                    break
            else:
                raise CompileError(
                    f"step {t.name!r}: its {t.kind.name} tensor [{t.rows}, {t.cols}] needs "
                    f"{size * WORD_BYTES} bytes but at most {best_free * WORD_BYTES} bytes are "
                    f"free in any bank while it is live (engine {c.name!r}: "
                    f"{c.total_words * WORD_BYTES} bytes, parameter payload "
                    f"{self.payload_words * WORD_BYTES})")
        return out

    # ---- driver ---------------------------------------------------------------------------
    def _payload_banks(self, sizes: list[tuple[str, int]]) -> tuple[dict[str, int], list[int]]:
        """Bank per payload region: each region to the bank with the fewest payload words so
        far (consecutive instructions' constants land in different banks)."""
        c = self.config
        filled = [0] * len(c.banks)
        bank_of: dict[str, int] = {}
        for name, words in sizes:
            room = [i for i, b in enumerate(c.banks) if b.words - filled[i] >= words]
            if not room:
                raise CompileError(f"parameter payload region {name!r} needs "
                                   f"{words * WORD_BYTES} bytes but at most "
                                   f"{max(b.words - f for b, f in zip(c.banks, filled)) * WORD_BYTES}"
                                   f" bytes are left in any bank of engine {c.name!r} (payload "
                                   f"{sum(w for _, w in sizes) * WORD_BYTES} bytes, memories "
                                   f"{c.total_words * WORD_BYTES} bytes)")
            bank = min(room, key=lambda i: (filled[i], i))
            bank_of[name] = bank
            filled[bank] += words
        return bank_of, filled

    def compile(self) -> Program:
        c = self.config
        blocks = self._constant_blocks()
        dummy_params = {name: 0 for name, _ in blocks}
        dummy_refs = {n: TensorRef(0, t.kind, t.rows, t.cols) for n, t in self.tensors.items()}
        lengths = [instruction_words(self.build(g, dummy_refs, dummy_params)) for g in self.groups]
        program_words = 2 * (sum(lengths) + 1)
        sizes = [("program", program_words)] + [(name, len(w)) for name, w in blocks]
        self.payload_words = sum(w for _, w in sizes)
        if self.payload_words > c.total_words:
            raise CompileError(f"parameter payload needs {self.payload_words * WORD_BYTES} bytes "
                               f"but engine {c.name!r} has {c.total_words * WORD_BYTES} bytes "
                               f"of memory")
        bank_of, filled = self._payload_banks(sizes)
        segments = [PayloadSegment(i, c.bank_start(i) + b.words - filled[i], filled[i])
                    for i, b in enumerate(c.banks)]
        at = [s.address for s in segments]
        regions, params = [], {}
        for name, words in sizes:
            bank = bank_of[name]
            regions.append(PayloadRegion(name, at[bank], words))
            params[name] = at[bank]
            at[bank] += words
        fetch, pc = [], params["program"]
        for n in lengths:
            fetch.append(pc)
            pc += 2 * n
        usable = [b.words - filled[i] for i, b in enumerate(c.banks)]
        placements = self._place(self._choose_banks(params, fetch, usable), usable)
        refs = {n: p.ref for n, p in placements.items()}
        instructions = [self.build(g, refs, params) for g in self.groups]
        words = encode_program(instructions, self.wide)
        memory = {"program": np.stack([np.asarray(words) & 0xFFFF, np.asarray(words) >> 16],
                                      axis=1).reshape(-1).astype(np.uint16)}
        memory.update(blocks)
        payload = np.zeros(self.payload_words, dtype=np.uint16)
        offset = {s.bank: sum(t.words for t in segments[:s.bank]) for s in segments}
        for region in regions:
            bank = bank_of[region.name]
            start = offset[bank] + region.address - segments[bank].address
            payload[start:start + region.words] = memory[region.name]
        cycles = [instruction_cycles(ins, c, f) for ins, f in zip(instructions, fetch)]
        return Program(c, instructions, [g.name for g in self.groups], words, payload,
                       [s for s in segments if s.words], regions,
                       sorted(placements.values(), key=lambda p: (p.first, p.name)),
                       refs["input"], refs[self.lowered.output], cycles)


def compile_intmodel(model: IntModel, config: EngineConfig = UP5K,
                     proof: OverflowProof | None = None) -> Program:
    """Compile ``model`` for ``config`` (see the module docstring); CompileError on a model
    the engine cannot run or that does not fit its memories. ``proof`` (the quantizer's
    overflow proof of ``model``) saves proving it again when its accumulator width is
    within the engine's."""
    return _Compiler(model, config, proof).compile()


__all__ = ["compile_intmodel", "check_formats"]
