"""Equivalence of the XNOR-popcount datapath and MVU with the integer definition, for every input.

The integer definition (``binaryvit.golden.intref.xnor_popcount_dot``) is the ±1 dot
product ``Σ_k a_k·w_k`` with bits read as ``1 ↔ +1, 0 ↔ −1``; ``reference_dot`` writes
exactly that sum in Amaranth (a product of ±1 values per lane, not a popcount), and
``tests/formal`` checks it against ``intref`` on every input of small ``K`` before it
serves as the reference here. The solver quantifies over the inputs, so a pass covers
every input word, not a random sample:

- ``PopcountEquivalence(lanes, style)``: ``2·popcount(XNOR(a, w)) − lanes`` from
  ``hw.kernels.popcount.xnor_popcount`` equals ``reference_dot(a, w)`` for every ``a``
  and every ``w`` (both free): combinational, one step.
- ``MVUEquivalence(mvu)``: the whole streaming ``XnorPopcountMVU`` (input buffer, weight
  ROMs, folds, accumulator, output register) with free input words and free
  back-pressure; every output word must equal ``reference_dot`` of the vector it belongs
  to against the weight rows it covers, and ``last`` must close the right vectors. The
  weights are ROM constants of the instance; ``all_weight_rows(K)`` makes an instance
  whose ``N = 2^K`` rows are every possible row, so one check covers all weights too.
  Bounded: SymbiYosys ``bmc`` to a depth that lets several vectors through.
"""
from __future__ import annotations

import torch
from amaranth.hdl import (Assert, Assume, Const, Elaboratable, Module, Mux, ResetSignal, Signal,
                          Value, signed)

from binaryvit.hw.kernels.popcount import xnor_popcount

__all__ = ["reference_dot", "PopcountEquivalence", "MVUEquivalence", "all_weight_rows"]


def reference_dot(a: Value, w: Value | list[int]) -> Value:
    """``Σ_k (2a_k − 1)·(2w_k − 1)`` as a signed value: the ±1 dot product of ``intref``."""
    width = len(a)
    total = Const(0, signed(width.bit_length() + 1))
    for k in range(width):
        sa = Mux(a[k], 1, -1)
        sw = Mux(w[k], 1, -1) if isinstance(w, Value) else (1 if w[k] else -1)
        total = total + sa * sw
    return total


def all_weight_rows(K: int) -> torch.Tensor:
    """``[2^K, K]`` bits: row ``n`` is the binary digits of ``n`` (every possible row)."""
    return torch.tensor([[(n >> k) & 1 for k in range(K)] for n in range(1 << K)])


class PopcountEquivalence(Elaboratable):
    """``xnor_popcount`` (combinational, ``style``) against ``reference_dot`` on free ``a``, ``w``.

    ``flip_reference_bit = k`` compares against the dot with weight bit ``k`` flipped: a
    wrong reference, which the check must reject (the mutation test of this property).
    """

    def __init__(self, lanes: int, style: str, *, flip_reference_bit: int | None = None):
        self.lanes, self.style, self.flip = lanes, style, flip_reference_bit
        self.a, self.w = Signal(lanes, name="a"), Signal(lanes, name="w")
        self.ports = [self.a, self.w]

    def elaborate(self, platform) -> Module:
        m = Module()
        count, stages = xnor_popcount(m, self.a, self.w, style=self.style, register_every=0)
        assert stages == 0
        dot = Signal(signed(self.lanes.bit_length() + 2))
        w = self.w if self.flip is None else self.w ^ (1 << self.flip)
        m.d.comb += [dot.eq((count << 1) - self.lanes),
                     Assert(dot == reference_dot(self.a, w), "popcount equals the dot")]
        return m


class MVUEquivalence(Elaboratable):
    """The streaming MVU against ``reference_dot`` for every input stream (see the module doc).

    The checker keeps the vectors the MVU has taken (``queue`` of them, each its ``K`` bits
    and its final word's ``last``) and, per output word, compares lane ``p`` of neuron
    fold ``f`` with ``reference_dot(vector, W[f·pe + p])``. The input obeys the stream
    protocol (held until taken, payload stable); ``rst`` stays low. ``flip_reference_bit =
    k`` flips bit ``k`` of weight row 0 in the reference only (a mutant the check must
    reject).
    """

    def __init__(self, mvu, queue: int = 4, *, flip_reference_bit: int | None = None):
        if mvu.thresholds is not None:
            raise ValueError("MVUEquivalence checks the dot products: "
                             "build the MVU without thresholds")
        self.mvu, self.queue, self.flip = mvu, queue, flip_reference_bit
        self.i_valid = Signal(name="i_valid")
        self.i_payload = Signal(len(mvu.i.payload.as_value()), name="i_payload")
        self.o_ready = Signal(name="o_ready")
        self.ports = [self.i_valid, self.i_payload, self.o_ready]

    def elaborate(self, platform) -> Module:
        m = Module()
        mvu = self.mvu
        m.submodules.mvu = mvu
        K, simd, pe = mvu.K, mvu.simd, mvu.pe
        SF, NF, Q = mvu.synapse_folds, mvu.neuron_folds, self.queue
        m.d.comb += [Assume(~ResetSignal()),
                     mvu.i.valid.eq(self.i_valid), mvu.i.payload.as_value().eq(self.i_payload),
                     mvu.o.ready.eq(self.o_ready)]
        started = Signal()
        stalled = Signal()
        held = Signal.like(self.i_payload)
        m.d.sync += [started.eq(1), stalled.eq(mvu.i.valid & ~mvu.i.ready), held.eq(self.i_payload)]
        with m.If(started & stalled):
            m.d.comb += Assume(self.i_valid & (self.i_payload == held))

        # The vectors taken, in a ring of Q; the word being filled goes into ``filling``.
        vectors = [Signal(K, name=f"vector{q}") for q in range(Q)]
        lasts = [Signal(name=f"vector{q}_last") for q in range(Q)]
        filling = Signal(K)
        word = Signal(range(max(SF, 2)))
        write, read = Signal(range(Q)), Signal(range(Q))
        stored = Signal(range(Q + 1))
        fold = Signal(range(max(NF, 2)))
        take = mvu.i.valid & mvu.i.ready
        give = mvu.o.valid & mvu.o.ready
        vector_in = Signal()
        vector_out = Signal()
        data = mvu.i.payload.data
        complete = Signal(K)
        m.d.comb += complete.eq(filling | (data << (word * simd)))
        with m.If(take):
            m.d.sync += filling.eq(complete)
            with m.If(word == SF - 1):
                m.d.comb += vector_in.eq(1)
                m.d.sync += [word.eq(0), filling.eq(0)]
                for q in range(Q):
                    with m.If(write == q):
                        m.d.sync += [vectors[q].eq(complete), lasts[q].eq(mvu.i.payload.last)]
                m.d.sync += write.eq(Mux(write == Q - 1, 0, write + 1))
            with m.Else():
                m.d.sync += word.eq(word + 1)
        with m.If(give):
            with m.If(fold == NF - 1):
                m.d.comb += vector_out.eq(1)
                m.d.sync += [fold.eq(0), read.eq(Mux(read == Q - 1, 0, read + 1))]
            with m.Else():
                m.d.sync += fold.eq(fold + 1)
        m.d.sync += stored.eq(stored + vector_in - vector_out)

        current = Signal(K)
        current_last = Signal()
        for q in range(Q):
            with m.If(read == q):
                m.d.comb += [current.eq(vectors[q]), current_last.eq(lasts[q])]
        weights = mvu.weights.int().tolist()
        if self.flip is not None:
            weights[0][self.flip] ^= 1
        with m.If(give):
            m.d.comb += Assert(stored != 0, "an output word belongs to a vector taken")
            for f in range(NF):
                with m.If(fold == f):
                    for p in range(pe):
                        m.d.comb += Assert(mvu.o.payload.data[p]
                                           == reference_dot(current, weights[f * pe + p]),
                                           f"word {f} lane {p} equals the dot")
            m.d.comb += Assert(mvu.o.payload.last == (current_last & (fold == NF - 1)),
                               "last closes the vector whose final input word had it")
        m.d.comb += Assert(stored < Q, "the checker's queue never fills")
        return m
