"""The engine's instruction set: four instruction classes with fused epilogues, and the
operand descriptors (tensors in memory, address patterns) they read and write.

Every tensor is a matrix ``[rows, cols]`` (tokens × channels, or keys × bits) at a word
address of the engine's one address space (``docs/engine.md`` has the memory layouts):

* ``STREAM``: one signed 16-bit word per value, row-major.
* ``WIDE``: one signed value in ``wide_words`` words (least significant word first), row-major.
* ``BITS``: each row packed LSB-first into ``ceil(cols / 16)`` words (bit 1 ↔ +1).
* ``BITS_T``: the same bits stored transposed: row ``c`` holds column ``c`` over all rows
  (a value tensor written so a context MATMUL reads it as its weight rows).

Instruction classes (each the *source* of a value per output element, followed by a chain
of epilogue :data:`Stage` s applied in order to every element):

* :class:`MatMul`: XNOR-popcount ``[T, K] × [N, K]ᵀ`` (weights in the parameter payload), or
  attention's context ``Σ_k b_ik·v_kc`` over a mask and a value tensor (``CONTEXT``).
* :class:`Mask`: attention scores (XNOR-popcount of queries and keys per head), the exp
  table, the row sum and the ``e·2^s > θ·Σe`` compare; writes the mask bits.
* :class:`Window`: zero-padded window sums with stride (``SUM``), average pooling
  (``AVERAGE``: the sum's multiply-round-shift) or the sum over all tokens (``GLOBAL``).
  A 1 × 1 ``SUM`` window is a plain pointwise pass.
* :class:`Mac`: fixed-point multiply-accumulate (stem, classifier).

Epilogue stages: :class:`Affine`, :class:`RPReLU`, :class:`Add` (a tensor or a constant,
read through an address pattern), :class:`Threshold` (writes bits, the value passes on),
:class:`GroupAverage` (writes channel-group averages, the value passes on), :class:`Store`.
Each stage saturates and rounds exactly like the integer-program step it stands for.

Each class lists its binary fields in ``FIELDS`` (in encoding order, unless its ``LAYOUT``
orders them with its derived fields): ``(name, bits)`` for an unsigned integer,
``(name, -bits)`` for a signed one, or ``(name, RecordClass)`` for a nested record;
``binaryvit.hw.engine.encoding`` packs them. A record the engine's core walks also lists
``DERIVED`` fields (``(name, bits)``, unsigned) and computes them in ``derived(wide_words)``
(a stage: ``derived(wide_words, channels)``, its instruction's ``channels``): the products,
quotients, addresses and word counts of its fields that the core's address pointers and loop
ends step by (``docs/engine.md``, "Derived fields"). The compiler's encoding carries
them after the record's fields, so the core reads them instead of computing them; decoding
checks them against the fields (a record whose derived fields disagree is refused).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Union

from binaryvit.errors import CompileError

ADDRESS_BITS = 24
DIM_BITS = 16
SHIFT_BITS = 6
WIDTH_BITS = 6


class TensorKind(IntEnum):
    STREAM = 0
    WIDE = 1
    BITS = 2
    BITS_T = 3


class Pattern(IntEnum):
    """How an operand's elements are addressed (``docs/engine.md``, "address patterns")."""

    IDENTITY = 0
    TILE = 1        # [T, C] read as [T, C·factor]: channel c reads c mod C
    UPSAMPLE = 2    # grid (gh, gw) read as (gh·f, gw·f): token (i, j) reads (i // f, j // f)
    PATCHES = 3     # grid (gh, gw) read as (gh/f)·(gw/f) patches of f·f tokens, (i, j, c) order


class MatMulMode(IntEnum):
    XNOR = 0     # Σ_k (2·a_k·w_k − 1)-style ±1 dot: 2·popcount(XNOR(a, w)) − K
    CONTEXT = 1  # Σ_k b_k·v_k, b ∈ {0, 1}: popcount(XNOR(b, v)) + popcount(v) − K


class WindowMode(IntEnum):
    SUM = 0
    AVERAGE = 1
    GLOBAL = 2


@dataclass(frozen=True)
class TensorRef:
    """A ``[rows, cols]`` tensor of ``kind`` at word ``address``."""

    address: int
    kind: TensorKind
    rows: int
    cols: int

    FIELDS = (("address", ADDRESS_BITS), ("kind", 2), ("rows", DIM_BITS), ("cols", DIM_BITS))

    def row_words(self, wide_words: int) -> int:
        """Words from one stored row to the next."""
        if self.kind == TensorKind.STREAM:
            return self.cols
        if self.kind == TensorKind.WIDE:
            return self.cols * wide_words
        if self.kind == TensorKind.BITS:
            return -(-self.cols // 16)
        return -(-self.rows // 16)

    def words(self, wide_words: int) -> int:
        stored_rows = self.cols if self.kind == TensorKind.BITS_T else self.rows
        return stored_rows * self.row_words(wide_words)


@dataclass(frozen=True)
class Access:
    """An operand read through an address pattern; ``factor`` is the tile copies, the
    upsampling factor or the patch size, ``grid_h`` × ``grid_w`` the source token grid."""

    tensor: TensorRef
    pattern: Pattern = Pattern.IDENTITY
    factor: int = 1
    grid_h: int = 0
    grid_w: int = 0

    FIELDS = (("tensor", TensorRef), ("pattern", 2), ("factor", 8), ("grid_h", DIM_BITS),
              ("grid_w", DIM_BITS))

    @property
    def shape(self) -> tuple[int, int]:
        """The logical ``(rows, cols)`` the pattern presents."""
        t = self.tensor
        if self.pattern == Pattern.TILE:
            return t.rows, t.cols * self.factor
        if self.pattern == Pattern.UPSAMPLE:
            return t.rows * self.factor ** 2, t.cols
        if self.pattern == Pattern.PATCHES:
            return t.rows // self.factor ** 2, t.cols * self.factor ** 2
        return t.rows, t.cols

    def walk(self, wide_words: int) -> dict[str, int]:
        """The steps of a source walk in words (``MatMul``'s and ``Mac``'s derived fields):
        ``pitch`` one source token's words; ``token_step`` from one output token's first
        source token to the next along a row (``PATCHES``: ``f`` tokens); ``line_step`` one
        grid row (``grid_w`` tokens) and ``patch_line_step`` one row of patches (``f`` grid
        rows, ``PATCHES`` only); ``row_patches`` patches per grid row (0: not ``PATCHES``)."""
        pitch = self.tensor.row_words(wide_words)
        if self.pattern != Pattern.PATCHES:
            return {"pitch": pitch, "token_step": pitch, "line_step": 0, "patch_line_step": 0,
                    "row_patches": 0}
        f = self.factor
        if f == 0:
            raise CompileError("a PATCHES source with factor 0")
        return {"pitch": pitch, "token_step": f * pitch, "line_step": self.grid_w * pitch,
                "patch_line_step": f * self.grid_w * pitch, "row_patches": self.grid_w // f}


# ---- epilogue stages ------------------------------------------------------------------------

@dataclass(frozen=True)
class Affine:
    """``saturate(round_shift(mul_c·x + bias_c, shift), width)`` (``intref.affine``).
    Constants at ``params``: ``mul[N]`` (one word each), then ``bias[N]`` (wide)."""

    params: int
    shift: int
    width: int

    OPCODE = 1
    FIELDS = (("params", ADDRESS_BITS), ("shift", SHIFT_BITS), ("width", WIDTH_BITS))
    DERIVED = (("bias", ADDRESS_BITS),)

    def derived(self, wide_words: int, channels: int) -> dict[str, int]:
        """``bias`` the address of ``bias[N]`` (``params + N``)."""
        return {"bias": self.params + channels}


@dataclass(frozen=True)
class RPReLU:
    """``intref.rprelu``. Constants at ``params``: ``pre_bias[N]`` (wide), ``mul_pos[N]``,
    ``mul_neg[N]`` (one word each), ``post_bias[N]`` (wide)."""

    params: int
    shift: int
    width: int

    OPCODE = 2
    FIELDS = (("params", ADDRESS_BITS), ("shift", SHIFT_BITS), ("width", WIDTH_BITS))
    DERIVED = (("mul_pos", ADDRESS_BITS), ("mul_neg", ADDRESS_BITS), ("post_bias", ADDRESS_BITS))

    def derived(self, wide_words: int, channels: int) -> dict[str, int]:
        """The addresses of ``mul_pos[N]``, ``mul_neg[N]`` and ``post_bias[N]``."""
        at = self.params + wide_words * channels
        return {"mul_pos": at, "mul_neg": at + channels, "post_bias": at + 2 * channels}


@dataclass(frozen=True)
class Add:
    """``saturate(x + operand, width)`` (``intref.residual_add``); the operand is a stored
    tensor or a constant in the payload, read through its address pattern."""

    operand: Access
    width: int

    OPCODE = 3
    FIELDS = (("width", WIDTH_BITS), ("operand", Access))
    DERIVED = (("step", DIM_BITS),)
    LAYOUT = ("step", "width", "operand")

    def derived(self, wide_words: int, channels: int) -> dict[str, int]:
        """``step`` one operand token's words."""
        return {"step": self.operand.tensor.row_words(wide_words)}


@dataclass(frozen=True)
class Threshold:
    """Writes ``intref.threshold(x)`` bits to ``out`` (``BITS`` or ``BITS_T``); the value
    passes on unchanged. Constants at ``params``: ``thresh[N]`` (wide), then the ``flip``
    bits packed 16 per word."""

    params: int
    out: TensorRef

    OPCODE = 4
    FIELDS = (("params", ADDRESS_BITS), ("out", TensorRef))
    DERIVED = (("flip", ADDRESS_BITS), ("step", DIM_BITS))

    def derived(self, wide_words: int, channels: int) -> dict[str, int]:
        """``flip`` the address of the flip bits (``params + wide_words·N``); ``step`` one
        stored row's words (``BITS``: a token's, ``BITS_T``: a channel's)."""
        return {"flip": self.params + wide_words * channels,
                "step": self.out.row_words(wide_words)}


@dataclass(frozen=True)
class GroupAverage:
    """Writes ``intref.channel_group_avgpool(x, group, mul, shift, width)`` to ``out``; the
    value passes on unchanged."""

    group: int
    mul: int
    shift: int
    width: int
    out: TensorRef

    OPCODE = 5
    FIELDS = (("group", 8), ("mul", -18), ("shift", SHIFT_BITS), ("width", WIDTH_BITS),
              ("out", TensorRef))
    DERIVED = (("step", DIM_BITS),)
    LAYOUT = ("step", "group", "out", "shift", "width", "mul")

    def derived(self, wide_words: int, channels: int) -> dict[str, int]:
        """``step`` one stored value's words."""
        return {"step": wide_words if self.out.kind == TensorKind.WIDE else 1}


@dataclass(frozen=True)
class Store:
    """Writes the value to ``out`` (``STREAM`` or ``WIDE``); it passes on unchanged."""

    out: TensorRef

    OPCODE = 6
    FIELDS = (("out", TensorRef),)
    DERIVED = (("step", DIM_BITS),)
    LAYOUT = ("step", "out")

    def derived(self, wide_words: int, channels: int) -> dict[str, int]:
        """``step`` one stored value's words."""
        return {"step": wide_words if self.out.kind == TensorKind.WIDE else 1}


Stage = Union[Affine, RPReLU, Add, Threshold, GroupAverage, Store]
STAGES: tuple[type, ...] = (Affine, RPReLU, Add, Threshold, GroupAverage, Store)


# ---- instructions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MatMul:
    """``XNOR``: ``xnor_popcount_dot(source, weights)`` with ``source`` bits ``[T, K]`` (through
    ``PATCHES`` for a patch-merging convolution) and ``weights`` bits ``[N, K]`` in the
    payload. ``CONTEXT``: ``and_popcount_context`` of the mask bits ``source``
    ``[heads·T, Tk]`` (rows head-major) and the value bits stored ``BITS_T`` at ``weights``
    (read as ``[N, Tk]``); output channel ``c`` uses head ``c // (N / heads)``."""

    mode: MatMulMode
    source: Access
    weights: TensorRef
    heads: int
    stages: tuple[Stage, ...]

    OPCODE = 1
    FIELDS = (("mode", 2), ("heads", 8), ("source", Access), ("weights", TensorRef))
    DERIVED = (("tokens", DIM_BITS), ("channels", DIM_BITS), ("dot_length", DIM_BITS),
               ("w_pitch", DIM_BITS), ("row_patches", DIM_BITS), ("pitch", ADDRESS_BITS),
               ("token_step", ADDRESS_BITS), ("line_step", ADDRESS_BITS),
               ("patch_line_step", ADDRESS_BITS), ("head_step", ADDRESS_BITS))

    def derived(self, wide_words: int) -> dict[str, int]:
        """``tokens`` and ``channels`` the output's (:attr:`tokens`; ``CONTEXT``: the values'
        ``heads·d`` channels), ``dot_length`` the ``K`` of ``2·matches − K`` (``CONTEXT``: the
        keys, ``matches + ones − keys``), ``w_pitch`` a weight row's words, the source walk
        (:meth:`Access.walk`), and ``head_step`` one head's mask rows in words
        (``CONTEXT``: ``tokens·pitch``; else 0)."""
        if self.mode == MatMulMode.CONTEXT and self.heads == 0:
            raise CompileError("a context MatMul with 0 heads")
        walk = self.source.walk(wide_words)
        context = self.mode == MatMulMode.CONTEXT
        return {"tokens": self.tokens, "channels": self.channels,
                "dot_length": self.source.tensor.cols if context else self.weights.cols,
                "w_pitch": self.weights.row_words(wide_words), **walk,
                "head_step": self.tokens * walk["pitch"] if context else 0}

    @property
    def tokens(self) -> int:
        rows = self.source.shape[0]
        return rows // self.heads if self.mode == MatMulMode.CONTEXT else rows

    @property
    def outputs(self) -> int:
        return self.weights.rows

    @property
    def channels(self) -> int:
        """The epilogue's channels ``N`` (``CONTEXT``: the values' ``heads·d``)."""
        return self.weights.cols if self.mode == MatMulMode.CONTEXT else self.weights.rows


@dataclass(frozen=True)
class Mask:
    """Attention's binarized softmax for every head: scores ``s = XNOR-popcount(q_h, k_h)``
    over ``d = C / heads`` bits, ``e = lut[(s + d) / 2]``, ``b = e·2^theta_shift > theta·Σ_k e``
    (``intref.attention_scores`` then ``intref.attention_mask``). ``queries`` ``[T, C]`` and
    ``keys`` ``[Tk, C]`` are bits; the ``d + 1`` exp-table entries (wide) are at ``lut``;
    ``out`` is ``[heads·T, Tk]`` bits, rows head-major."""

    queries: TensorRef
    keys: TensorRef
    heads: int
    lut: int
    theta: int
    theta_shift: int
    out: TensorRef

    OPCODE = 2
    FIELDS = (("heads", 8), ("theta", 16), ("theta_shift", SHIFT_BITS), ("lut", ADDRESS_BITS),
              ("queries", TensorRef), ("keys", TensorRef), ("out", TensorRef))
    DERIVED = (("head_bits", DIM_BITS), ("query_pitch", DIM_BITS), ("key_pitch", DIM_BITS),
               ("out_pitch", DIM_BITS))
    stages: tuple = ()

    def derived(self, wide_words: int) -> dict[str, int]:
        """``head_bits`` = ``d`` (a head's query and key bits), and the words of a query, a
        key and an output row."""
        if self.heads == 0:
            raise CompileError("a Mask with 0 heads")
        return {"head_bits": self.queries.cols // self.heads,
                "query_pitch": self.queries.row_words(wide_words),
                "key_pitch": self.keys.row_words(wide_words),
                "out_pitch": self.out.row_words(wide_words)}


@dataclass(frozen=True)
class Window:
    """Windowed sums over a ``grid_h × grid_w`` token grid of ``source`` (``[gh·gw, C]``):
    ``SUM`` is ``intref.window_sum2d``, ``AVERAGE`` ``intref.avgpool2d`` (with ``mul``,
    ``shift``, ``width``), ``GLOBAL`` ``intref.global_avgpool`` (one output row; the kernel
    fields are ignored)."""

    mode: WindowMode
    source: TensorRef
    grid_h: int
    grid_w: int
    kh: int
    kw: int
    stride: int
    pad_h: int
    pad_w: int
    mul: int
    shift: int
    width: int
    stages: tuple[Stage, ...]

    OPCODE = 3
    FIELDS = (("mode", 2), ("kh", 4), ("kw", 4), ("stride", 4), ("pad_h", 4), ("pad_w", 4),
              ("grid_h", DIM_BITS), ("grid_w", DIM_BITS), ("mul", -18), ("shift", SHIFT_BITS),
              ("width", WIDTH_BITS), ("source", TensorRef))
    DERIVED = (("taps_h", DIM_BITS), ("last_x", DIM_BITS), ("last_y", DIM_BITS),
               ("row_step", ADDRESS_BITS), ("stride_step", ADDRESS_BITS),
               ("line_step", ADDRESS_BITS), ("pad_offset", ADDRESS_BITS))

    def derived(self, wide_words: int) -> dict[str, int]:
        """``taps_h`` tap rows (``GLOBAL``: every source row); ``last_x``, ``last_y`` the last
        output token's top-left tap on the padded grid (``(out − 1)·stride``: the end-of-row
        tests); in words, ``row_step`` one grid row (``grid_w·cols``), ``stride_step`` the next
        origin along a row (``stride·cols``), ``line_step`` the next row of origins
        (``stride·grid_w·cols``), ``pad_offset`` the padding before the first tap
        (``(pad_h·grid_w + pad_w)·cols``). ``GLOBAL`` walks the source as one column of
        ``rows`` tokens."""
        cols = self.source.cols
        if self.mode == WindowMode.GLOBAL:
            return {"taps_h": self.source.rows, "last_x": 0, "last_y": 0, "row_step": cols,
                    "stride_step": 0, "line_step": 0, "pad_offset": 0}
        if self.stride == 0:
            raise CompileError("a Window with stride 0")
        out_h, out_w = self.out_grid
        if out_h < 1 or out_w < 1:
            raise CompileError(f"a {self.kh} × {self.kw} Window over a {self.grid_h} × "
                               f"{self.grid_w} grid (padding {self.pad_h}, {self.pad_w}) has "
                               "no output")
        return {"taps_h": self.kh, "last_x": (out_w - 1) * self.stride,
                "last_y": (out_h - 1) * self.stride, "row_step": self.grid_w * cols,
                "stride_step": self.stride * cols, "line_step": self.stride * self.grid_w * cols,
                "pad_offset": (self.pad_h * self.grid_w + self.pad_w) * cols}

    @property
    def out_grid(self) -> tuple[int, int]:
        if self.mode == WindowMode.GLOBAL:
            return 1, 1
        return ((self.grid_h + 2 * self.pad_h - self.kh) // self.stride + 1,
                (self.grid_w + 2 * self.pad_w - self.kw) // self.stride + 1)

    @property
    def tokens(self) -> int:
        h, w = self.out_grid
        return h * w

    @property
    def outputs(self) -> int:
        return self.source.cols

    @property
    def channels(self) -> int:
        """The epilogue's channels ``N``."""
        return self.source.cols


@dataclass(frozen=True)
class Mac:
    """``intref.fixed_mac(source, weight, bias, shift, width)``: ``source`` ``[T, K]``
    (``STREAM`` or ``WIDE``, through ``PATCHES`` for the stem), ``weight[N, K]`` (one signed
    word each, row-major) at ``weights``, ``bias[N]`` (wide) at ``bias``."""

    source: Access
    weights: int
    bias: int
    outputs: int
    shift: int
    width: int
    stages: tuple[Stage, ...]

    OPCODE = 4
    FIELDS = (("outputs", DIM_BITS), ("shift", SHIFT_BITS), ("width", WIDTH_BITS),
              ("weights", ADDRESS_BITS), ("bias", ADDRESS_BITS), ("source", Access))
    DERIVED = (("tokens", DIM_BITS), ("row_patches", DIM_BITS), ("pitch", ADDRESS_BITS),
               ("token_step", ADDRESS_BITS), ("line_step", ADDRESS_BITS),
               ("patch_line_step", ADDRESS_BITS))

    def derived(self, wide_words: int) -> dict[str, int]:
        """The output ``tokens`` and the source walk (:meth:`Access.walk`)."""
        if self.source.pattern == Pattern.PATCHES and self.source.factor == 0:
            raise CompileError("a PATCHES source with factor 0")
        return {"tokens": self.tokens, **self.source.walk(wide_words)}

    @property
    def tokens(self) -> int:
        return self.source.shape[0]

    @property
    def channels(self) -> int:
        """The epilogue's channels ``N``."""
        return self.outputs


Instruction = Union[MatMul, Mask, Window, Mac]
INSTRUCTIONS: tuple[type, ...] = (MatMul, Mask, Window, Mac)
HALT_OPCODE = 0

__all__ = ["TensorKind", "Pattern", "MatMulMode", "WindowMode", "TensorRef", "Access",
           "Affine", "RPReLU", "Add", "Threshold", "GroupAverage", "Store", "Stage", "STAGES",
           "MatMul", "Mask", "Window", "Mac", "Instruction", "INSTRUCTIONS", "HALT_OPCODE",
           "ADDRESS_BITS"]
