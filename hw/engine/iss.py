"""The engine's instruction-set simulator: a compiled program run on its memory image.

Each image gets its own copy of the engine's memory (``uint16 [B, words]``, vectorised over
images): the parameter payload at its address, the image's pixels at the program's input
tensor. The simulator fetches the encoded instructions from the payload, decodes them and
executes each one by reading its operands from memory through their address patterns,
applying the ``binaryvit.golden.intref`` operation of its source and of every epilogue stage,
and writing the results back as 16-bit words. Nothing is taken from the integer model: the
constants come from the payload, the tensors from where the memory plan put them, so a
compiler bug in fusion, layouts, patterns, addresses or widths shows as a wrong logit.
"""
from __future__ import annotations

import numpy as np
import torch

from binaryvit.errors import DataError, SimulationError
from binaryvit.golden import intref
from binaryvit.hw.engine.encoding import decode_instructions
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
    Stage,
    Store,
    TensorKind,
    TensorRef,
    Threshold,
    Window,
    WindowMode,
)
from binaryvit.hw.engine.program import Program
from binaryvit.hw.engine.tensor_words import read_tensor, write_tensor


def _width(value: int) -> int | None:
    return value or None


class EngineSimulator:
    """Runs one :class:`Program` on a batch of images (raw pixels ``[B, C, H, W]``)."""

    def __init__(self, program: Program):
        self.program = program
        self.config = program.config
        self.wide = program.config.wide_words

    # ---- memory --------------------------------------------------------------------------
    def load(self, images) -> np.ndarray:
        """A memory image per picture: the payload, then the pixels at the input tensor."""
        p = self.program
        x = torch.as_tensor(np.asarray(images)).to(torch.int64)
        ref = p.input
        if x.dim() != 4 or x.shape[1] * x.shape[2] * x.shape[3] != ref.rows * ref.cols \
                or x.shape[1] != ref.cols:
            raise DataError(f"images must be [batch, {ref.cols}, H, W] with {ref.rows} pixels "
                            f"each, got {list(x.shape)}")
        memory = np.zeros((x.shape[0], self.config.total_words), dtype=np.uint16)
        for address, words in p.segment_words():
            memory[:, address:address + len(words)] = words
        pixels = x.permute(0, 2, 3, 1).reshape(x.shape[0], ref.rows, ref.cols)
        write_tensor(memory, ref, pixels, self.wide)
        return memory

    def read(self, memory: np.ndarray, ref: TensorRef) -> torch.Tensor:
        return read_tensor(memory, ref, self.wide)

    def constants(self, memory: np.ndarray, address: int, kind: TensorKind, count: int) \
            -> torch.Tensor:
        """``count`` constants at ``address`` (the same in every image's memory: image 0's)."""
        return read_tensor(memory[:1], TensorRef(address, kind, 1, count), self.wide)[0, 0]

    def operand(self, memory: np.ndarray, access: Access) -> torch.Tensor:
        """``[B, rows, cols]`` through the access's address pattern."""
        x = self.read(memory, access.tensor)
        f = access.factor
        if access.pattern == Pattern.TILE:
            return x.repeat(1, 1, f)
        if access.pattern == Pattern.UPSAMPLE:
            return intref.nearest_upsample(x, access.grid_h, access.grid_w, f)
        if access.pattern == Pattern.PATCHES:
            b, _, c = x.shape
            gh, gw = access.grid_h, access.grid_w
            grid = x.reshape(b, gh // f, f, gw // f, f, c).permute(0, 1, 3, 2, 4, 5)
            return grid.reshape(b, (gh // f) * (gw // f), f * f * c)
        return x

    # ---- instructions --------------------------------------------------------------------
    def source(self, memory: np.ndarray, ins: Instruction) -> torch.Tensor:
        """The value an instruction's epilogue starts from, ``[B, T, N]``."""
        if isinstance(ins, MatMul):
            a = self.operand(memory, ins.source)
            if ins.mode == MatMulMode.XNOR:
                w = self.read(memory[:1], ins.weights)[0]
                return intref.xnor_popcount_dot(a, w)
            b, rows, keys = a.shape
            mask = a.reshape(b, ins.heads, rows // ins.heads, keys)
            v = self.read(memory, ins.weights)                       # [B, Tk, N]
            d = v.shape[2] // ins.heads
            v = v.reshape(b, keys, ins.heads, d).transpose(1, 2)     # [B, heads, Tk, d]
            ctx = intref.and_popcount_context(mask, v)               # [B, heads, T, d]
            return ctx.transpose(1, 2).reshape(b, rows // ins.heads, ins.heads * d)
        if isinstance(ins, Window):
            x = self.read(memory, ins.source)
            if ins.mode == WindowMode.GLOBAL:
                return intref.global_avgpool(x, ins.mul, ins.shift, _width(ins.width)).unsqueeze(1)
            grid = intref.tokens_to_grid(x, ins.grid_h, ins.grid_w)
            args = (ins.kh, ins.kw, ins.stride, ins.pad_h, ins.pad_w)
            out = intref.window_sum2d(grid, *args) if ins.mode == WindowMode.SUM else \
                intref.avgpool2d(grid, *args, ins.mul, ins.shift, _width(ins.width))
            return intref.grid_to_tokens(out)
        if isinstance(ins, Mac):
            x = self.operand(memory, ins.source)
            k = x.shape[2]
            w = self.constants(memory, ins.weights, TensorKind.STREAM, ins.outputs * k)
            bias = self.constants(memory, ins.bias, TensorKind.WIDE, ins.outputs)
            return intref.fixed_mac(x, w.reshape(ins.outputs, k), bias, ins.shift,
                                    _width(ins.width))
        raise SimulationError(f"no source for {type(ins).__name__}")

    def mask(self, memory: np.ndarray, ins: Mask) -> None:
        q, k = self.read(memory, ins.queries), self.read(memory, ins.keys)
        b, heads = q.shape[0], ins.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(b, x.shape[1], heads, x.shape[2] // heads).transpose(1, 2)

        d = q.shape[2] // heads
        lut = self.constants(memory, ins.lut, TensorKind.WIDE, d + 1)
        scores = intref.attention_scores(split(q), split(k))
        bits = intref.attention_mask(scores, lut, ins.theta, ins.theta_shift)
        write_tensor(memory, ins.out, bits.reshape(b, heads * q.shape[1], k.shape[1]), self.wide)

    def stage(self, memory: np.ndarray, s: Stage, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[2]
        wide, stream = TensorKind.WIDE, TensorKind.STREAM
        if isinstance(s, Affine):
            mul = self.constants(memory, s.params, stream, n)
            bias = self.constants(memory, s.params + n, wide, n)
            return intref.affine(x, mul, bias, s.shift, _width(s.width))
        if isinstance(s, RPReLU):
            at = s.params
            pre = self.constants(memory, at, wide, n)
            at += n * self.wide
            mul_pos = self.constants(memory, at, stream, n)
            mul_neg = self.constants(memory, at + n, stream, n)
            post = self.constants(memory, at + 2 * n, wide, n)
            return intref.rprelu(x, pre, mul_pos, mul_neg, post, s.shift, _width(s.width))
        if isinstance(s, Add):
            return intref.residual_add(x, self.operand(memory, s.operand), _width(s.width))
        if isinstance(s, Threshold):
            thresh = self.constants(memory, s.params, wide, n)
            flip = self.constants(memory, s.params + n * self.wide, TensorKind.BITS, n)
            write_tensor(memory, s.out, intref.threshold(x, thresh, flip), self.wide)
            return x
        if isinstance(s, GroupAverage):
            out = intref.channel_group_avgpool(x, s.group, s.mul, s.shift, _width(s.width))
            write_tensor(memory, s.out, out, self.wide)
            return x
        if isinstance(s, Store):
            write_tensor(memory, s.out, x, self.wide)
            return x
        raise SimulationError(f"unknown stage {type(s).__name__}")

    def execute(self, memory: np.ndarray, ins: Instruction) -> None:
        if isinstance(ins, Mask):
            self.mask(memory, ins)
            return
        x = self.source(memory, ins)
        for s in ins.stages:
            x = self.stage(memory, s, x)

    def fetch(self, memory: np.ndarray) -> list[int]:
        """The payload's program words (32-bit, from pairs of 16-bit words)."""
        p = self.program
        region = next(r for r in p.regions if r.name == "program")
        raw = memory[0, region.address:region.address + region.words].astype(np.int64)
        pairs = raw[: len(raw) // 2 * 2].reshape(-1, 2)
        return (pairs[:, 0] | (pairs[:, 1] << 16)).tolist()

    def run(self, images, trace: list[str] | None = None) -> torch.Tensor:
        """Logits ``int64 [B, classes]`` read from the program's output tensor."""
        memory = self.load(images)
        words = self.fetch(memory)
        for _, ins in decode_instructions(words, self.wide):
            if trace is not None:
                trace.append(type(ins).__name__)
            self.execute(memory, ins)
        out = self.read(memory, self.program.output)
        return out.reshape(out.shape[0], -1)


def run_program(program: Program, images, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``program`` on raw pixels ``[B, C, H, W]``, in batches of ``batch_size``."""
    sim = EngineSimulator(program)
    x = torch.as_tensor(np.asarray(images))
    return torch.cat([sim.run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


__all__ = ["EngineSimulator", "run_program"]
