"""Fixed-point multiply-accumulate units: the stem (multi-bit pixels) and the classifier.

``FixedMAC`` computes ``binaryvit.golden.intref.fixed_mac`` on a stream of vectors::

    y[n] = saturate(round_shift(Σ_k w[n,k]·x[k] + bias[n], shift), out_width)

folded FINN-style: ``simd`` inputs per input word, ``pe`` outputs per output word, one
multiplier per (pe, simd) pair. ``StemUnit`` and ``ClassifierUnit`` are the two uses in
the network, with their defaults and names.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.golden import intref
from binaryvit.golden.intref.fixed_point import rounded_bias
from binaryvit.golden.intref.validation import check_shift
from binaryvit.hw.kernels.constant_rom import constant_rom, row_counter
from binaryvit.hw.streams.fixed_point_stream import decode_fixed_point, encode_fixed_point, fixed_point_layout
from binaryvit.hw.kernels.parameter_checks import (
    check_declared_constants,
    check_int,
    check_lanes,
    check_width,
    matrix_shape,
    signed_width_of,
)
from binaryvit.hw.kernels.saturate import saturate

__all__ = ["FixedMAC", "StemUnit", "ClassifierUnit"]

IntTable = Sequence[Sequence[int]] | torch.Tensor


def _adder_tree(values: list[Value]) -> Value:
    """Sum of ``values`` as a balanced tree, so widths grow by log2(len) bits, not len."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class FixedMAC(wiring.Component):
    """Matrix-vector product of a fixed-point stream with constant weights, folded.

    Parameters
    ----------
    weights : int table ``[N, K]``
        ``N`` outputs by ``K`` inputs.
    bias : int sequence ``[N]``
        In the accumulator's format (before the shift).
    shift : int
        Right shift with rounding half up, 0…62.
    out_width : int
        Output element width (signed, 2…63); results saturate to it.
    in_width : int
        Input element width, 2…63 (1…63 for unsigned input).
    simd : int
        Inputs per input word; must divide ``K``.
    pe : int
        Outputs per output word (parallel accumulators); must divide ``N``.
    input_signed : bool
        Whether input elements are ``signed(in_width)`` (default) or ``unsigned(in_width)``.
    weight_width, bias_width : int, optional
        Declared signed widths; default the smallest that holds the constants.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(in_width, simd, is_signed=input_signed)))
        Each vector is ``K / simd`` words; element ``j`` of word ``w`` is ``x[w·simd + j]``.
    o : Out(stream.Signature(fixed_point_layout(out_width, pe)))
        Each vector gives ``N / pe`` words; element ``j`` of word ``w`` is ``y[w·pe + j]``.
        ``last`` is set on the final output word of a vector whose final input word had it.

    Arithmetic: the rounding constant ``2^(shift−1)`` is folded into the bias ROM; the
    accumulator is sized from the weights, ``max_n Σ_k |w[n,k]| · max|x| + max|bias'|``,
    so no partial sum wraps.

    Timing: cycles per vector = ``(K / simd) · (N / pe)``. The first output group is
    computed while the vector streams in (each word is also written to a ``K / simd``-word
    input buffer); the other ``N / pe − 1`` groups re-read the buffer, and ``i.ready`` is
    low meanwhile. ``latency`` = 4 cycles from a vector's final input word to its first
    output word (input register + ROM reads, products, accumulator, output register).
    A global stall holds every stage while the output waits.
    """

    def __init__(self, *, weights: IntTable, bias: Sequence[int] | torch.Tensor, shift: int,
                 out_width: int, in_width: int, simd: int, pe: int, input_signed: bool = True,
                 weight_width: int | None = None, bias_width: int | None = None):
        self.out_features, self.in_features = matrix_shape(weights, "weights", "[N, K]")
        self.simd = check_lanes(simd, "simd", self.in_features, "K (in_features)")
        self.pe = check_lanes(pe, "pe", self.out_features, "N (out_features)")
        self.input_signed = bool(input_signed)
        self.in_width = (check_width(in_width, "in_width") if self.input_signed
                         else check_int(in_width, "in_width (unsigned input)", 1, 62))
        self.shift = check_shift(shift)
        self.out_width = check_width(out_width, "out_width")
        shape = (self.out_features, self.in_features)
        self.weights, self.weight_width = check_declared_constants(weights, "weights", shape, weight_width)
        self.bias, self.bias_width = check_declared_constants(bias, "bias", (self.out_features,), bias_width)
        self.in_words = self.in_features // self.simd
        self.groups = self.out_features // self.pe
        in_layout = fixed_point_layout(self.in_width, self.simd, is_signed=self.input_signed)
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.pe))),
        })

    @property
    def latency(self) -> int:
        """Cycles from a vector's final input word to its first output word (no back-pressure)."""
        return 4

    @staticmethod
    def vector_cycles(in_features: int, out_features: int, pe: int, simd: int) -> int:
        """Cycles per vector of a ``K → N`` unit folded ``pe × simd``: ``(K/simd)·(N/pe)``."""
        return (in_features // simd) * (out_features // pe)

    @property
    def cycles_per_vector(self) -> int:
        """Cycles per vector: ``(K/simd)·(N/pe)``."""
        return self.vector_cycles(self.in_features, self.out_features, self.pe, self.simd)

    def model(self, x: Any) -> torch.Tensor:
        """The expected output for ``x[..., K]``: ``intref.fixed_mac`` with this unit's constants."""
        return intref.fixed_mac(x, self.weights, self.bias, self.shift, self.out_width)

    def encode_input(self, x: Any) -> list[int]:
        """Stream words for ``x`` ``[vectors, K]`` (one image) or ``[images, vectors, K]``."""
        return encode_fixed_point(x, self.in_width, self.simd, is_signed=self.input_signed)

    def encode_output(self, y: Any) -> list[int]:
        return encode_fixed_point(y, self.out_width, self.pe)

    def decode_output(self, words: Sequence[int]) -> torch.Tensor:
        """``[images, vectors, N]`` from output words."""
        return decode_fixed_point(words, self.out_width, self.pe, self.out_features)

    def _accumulator_width(self, bias: torch.Tensor) -> int:
        x_max = (1 << (self.in_width - 1)) if self.input_signed else (1 << self.in_width) - 1
        bound = int(self.weights.abs().sum(dim=1).max()) * x_max + int(bias.abs().max())
        return signed_width_of(-bound, bound)

    def elaborate(self, platform):
        m = Module()
        pe, simd, words, groups = self.pe, self.simd, self.in_words, self.groups
        element = signed(self.in_width) if self.input_signed else unsigned(self.in_width)
        bias = rounded_bias(self.bias, self.shift)
        bias_width = signed_width_of(int(bias.min()), int(bias.max()))
        acc_width = self._accumulator_width(bias)

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        step = Signal()
        k = row_counter(m, step, words, "k")
        # Plain constants where a dimension is one word or one group: a compare against a
        # constant would leave an unused constant wire in the Verilog.
        first_word = (k == 0) if words > 1 else Const(1)
        final_word = (k == words - 1) if words > 1 else Const(1)
        group = row_counter(m, step & final_word, groups, "group")
        row = row_counter(m, step, groups * words, "row")
        if groups > 1:
            group_is_first = Signal()
            vector_last = Signal()
            m.d.comb += group_is_first.eq(group == 0)
            with m.If(step & group_is_first & final_word):
                m.d.sync += vector_last.eq(self.i.payload.last)
            issue_valid = Mux(group_is_first, self.i.valid, 1)
            issue_last = (group == groups - 1) & final_word & vector_last
            m.d.comb += self.i.ready.eq(advance & group_is_first)
        else:
            issue_valid = self.i.valid
            issue_last = final_word & self.i.payload.last
            m.d.comb += self.i.ready.eq(advance)
        if groups * words > 1:  # otherwise no counter reads it
            m.d.comb += step.eq(advance & issue_valid)

        # Row g·words + k of the weight ROM holds w[g·pe + p, k·simd + s] at lane p·simd + s.
        weight_rows = self.weights.reshape(groups, pe, words, simd).permute(0, 2, 1, 3).reshape(-1)
        w1 = constant_rom(m, "weights", {"w": (weight_rows, signed(self.weight_width))}, pe * simd,
                          addr=row, en=advance).w
        bias1 = constant_rom(m, "bias", {"bias": (bias, signed(bias_width))}, pe,
                             addr=group, en=advance).bias

        # The input word register loads only on a transfer, so with one word per vector it
        # holds the whole vector for every output group.
        word_layout = data.ArrayLayout(element, simd)
        x_in1 = Signal(word_layout)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += x_in1.eq(self.i.payload.data)
        x1 = Signal(word_layout)
        if groups > 1 and words > 1:
            from_input1 = Signal()
            with m.If(advance):
                m.d.sync += from_input1.eq(group_is_first)
            # Later output groups re-read the vector from here instead of the input.
            m.submodules.buffer = buffer = memory.Memory(shape=word_layout, depth=words, init=[])
            write, read = buffer.write_port(), buffer.read_port()
            m.d.comb += [write.addr.eq(k), write.data.eq(self.i.payload.data),
                         write.en.eq(self.i.valid & self.i.ready),
                         read.addr.eq(k), read.en.eq(advance),
                         x1.eq(Mux(from_input1, x_in1.as_value(), read.data.as_value()))]
        else:
            m.d.comb += x1.eq(x_in1)

        valid1, first1, endk1, last1 = Signal(), Signal(), Signal(), Signal()
        products = [[(x1[s] * w1[p * simd + s]) for s in range(simd)] for p in range(pe)]
        product2 = [[Signal(products[p][s].shape(), name=f"product_{p}_{s}") for s in range(simd)]
                    for p in range(pe)]
        bias2 = Signal(data.ArrayLayout(signed(bias_width), pe))
        valid2, first2, endk2, last2 = Signal(), Signal(), Signal(), Signal()
        acc = [Signal(signed(acc_width), name=f"acc_{p}") for p in range(pe)]
        valid3, last3 = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [valid1.eq(issue_valid), first1.eq(first_word), endk1.eq(final_word),
                         last1.eq(issue_last)]
            m.d.sync += [product2[p][s].eq(products[p][s]) for p in range(pe) for s in range(simd)]
            m.d.sync += [bias2.eq(bias1), valid2.eq(valid1), first2.eq(first1),
                         endk2.eq(endk1), last2.eq(last1)]
            with m.If(valid2):
                m.d.sync += [acc[p].eq(Mux(first2, bias2[p], acc[p]) + _adder_tree(product2[p]))
                             for p in range(pe)]
            m.d.sync += [valid3.eq(valid2 & endk2), last3.eq(last2)]
            m.d.sync += [self.o.payload.data[p].eq(saturate(acc[p] >> self.shift, self.out_width))
                         for p in range(pe)]
            m.d.sync += [self.o.payload.last.eq(last3), self.o.valid.eq(valid3)]
        return m


class StemUnit(FixedMAC):
    """The stem: raw multi-bit pixels to the first fixed-point embedding, one token per vector.

    A ``FixedMAC`` with unsigned pixel input (the digits data set's 0…16 fit
    ``pixel_width = 5``). For the digits model ``K = 1`` (one pixel per token) and
    ``N = 32`` channels; a patch-embedding stem streams ``K = patch²`` pixels per token.

    Parameters
    ----------
    weights : ``[channels, K]``; bias : ``[channels]``; shift, out_width
        As ``FixedMAC``.
    pe : int
        Output channels per word (must divide ``channels``).
    simd : int
        Pixels per input word (must divide ``K``; default 1).
    pixel_width : int
        Unsigned pixel width (1…62; default 5).
    weight_width, bias_width : optional declared widths.

    Ports, latency and cycles per token as ``FixedMAC``: ``(K / simd) · (channels / pe)``.
    """

    def __init__(self, *, weights: IntTable, bias: Sequence[int] | torch.Tensor, shift: int,
                 out_width: int, pe: int, simd: int = 1, pixel_width: int = 5,
                 weight_width: int | None = None, bias_width: int | None = None):
        super().__init__(weights=weights, bias=bias, shift=shift, out_width=out_width,
                         in_width=pixel_width, simd=simd, pe=pe, input_signed=False,
                         weight_width=weight_width, bias_width=bias_width)


class ClassifierUnit(FixedMAC):
    """The classifier head: pooled features ``[K]`` to ``classes`` logits, one vector per image.

    A ``FixedMAC`` on the signed fixed-point stream from global average pooling (for the
    digits model ``K = 64`` and 10 classes); its output words carry ``pe`` logits each.

    Parameters
    ----------
    weights : ``[classes, K]``; bias : ``[classes]``; shift, out_width
        As ``FixedMAC``.
    in_width : int
        Signed feature width.
    simd, pe : int
        Features per input word (divides ``K``), logits per output word (divides ``classes``).
    weight_width, bias_width : optional declared widths.

    Ports, latency and cycles per image as ``FixedMAC``: ``(K / simd) · (classes / pe)``.
    """

    def __init__(self, *, weights: IntTable, bias: Sequence[int] | torch.Tensor, shift: int,
                 out_width: int, in_width: int, simd: int, pe: int,
                 weight_width: int | None = None, bias_width: int | None = None):
        super().__init__(weights=weights, bias=bias, shift=shift, out_width=out_width,
                         in_width=in_width, simd=simd, pe=pe, input_signed=True,
                         weight_width=weight_width, bias_width=bias_width)
