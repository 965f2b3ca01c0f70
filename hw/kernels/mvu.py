"""Folded binary matrix-vector unit: ``y = W·a`` over ±1 values, FINN style.

The unit reads an input vector once, buffers it, and replays it ``N/pe`` times against
the weight ROMs, ``simd`` bits per cycle on each of ``pe`` processing elements (PEs).
Output ``n`` is on PE ``n % pe`` at neuron fold ``n // pe``; the ROM layout is exactly
``binaryvit.quantize.weight_packing.pack_weight_rom``'s.
"""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError, DataError, FoldingError
from binaryvit.golden import intref
from binaryvit.golden.intref.validation import as_bit_tensor, as_int_tensor, divisors
from binaryvit.hw.kernels.constant_rom import row_counter
from binaryvit.hw.streams.fixed_point_stream import (binary_layout, decode_binary, decode_fixed_point,
                                             encode_binary, encode_fixed_point,
                                             fixed_point_layout)
from binaryvit.hw.kernels.popcount import (POPCOUNT_STYLES, activation_features, encode_weight_word,
                                   feature_width, popcount_stages, xnor_popcount)
from binaryvit.quantize.rom_image import RomImage
from binaryvit.quantize.weight_packing import pack_weight_rom, split_per_pe, unpack_weight_rom

__all__ = ["XnorPopcountMVU"]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected an integer ≥ 1, got {value!r}")
    return value


def _is_last(counter: Value, count: int) -> Value:
    """``counter`` (a ``row_counter`` over ``count`` values) at its final value; constant 1
    for ``count = 1``, so a one-value counter leaves no compare in the Verilog."""
    return counter == count - 1 if count > 1 else Const(1, 1)


def _fold(value: Any, name: str, total: int, total_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 \
            or value > total or total % value:
        raise FoldingError(f"{name}: must divide {total_name} = {total} (1 ≤ {name} ≤ "
                           f"{total}); valid values are {divisors(total)}, got {value!r}")
    return value


class XnorPopcountMVU(wiring.Component):
    """Binary matrix-vector unit: ``dot_n = 2·popcount(XNOR(a, w_n)) − K`` for ``n < N``.

    Parameters
    ----------
    K : int
        Inputs per vector (true length; no pad bits).
    N : int
        Outputs per vector.
    pe : int
        Outputs computed in parallel; must divide ``N``.
    simd : int
        Input bits per cycle; must divide ``K``.
    weights : bits ``[N, K]`` or RomImage
        Weight signs (1 ↔ +1), or an image from ``pack_weight_rom(w, pe, simd)``.
    thresholds : int sequence ``[N]``, optional
        Fuse a sign unit: output bit ``n`` is ``intref.threshold(dot, thresholds, flip)``.
    flip : 0/1 sequence ``[N]``, optional
        Per-channel compare direction of the fused threshold (default all 0: ``>=``).
    popcount : {"plain", "counter6", "counter4", "shared4"}
        Popcount datapath structure (``binaryvit.hw.kernels.popcount``): the default
        ``"counter6"`` takes the fewest iCE40 logic cells registered, ``"counter4"`` the
        fewest LUT4s (``bench/bench_mvu.py``). ``"shared4"`` stores the
        activation features (``activation_features``, ``feature_width(simd)`` bits per
        word, built once at the buffer's write port and shared by all PEs) in the input
        buffer and the ``encode_weight_word`` re-encoding of every ROM word.
    register_every : int
        Register the popcount tree after every this many levels (0: combinational).

    Members
    -------
    i : In(stream.Signature(binary_layout(simd)))
        ``K/simd`` words per vector; bit ``j`` of word ``s`` is input ``s·simd + j``.
    o : Out(stream.Signature(fixed_point_layout(out_width, pe)))
        Without thresholds: ``N/pe`` words per vector, lane ``p`` of word ``f`` is
        ``dot[f·pe + p]`` (signed, ``out_width = K.bit_length() + 1`` bits: ``[−K, K]``).
    o : Out(stream.Signature(binary_layout(pe)))
        With thresholds: bit ``p`` of word ``f`` is channel ``f·pe + p``.

    ``last`` of the final output word of a vector copies ``last`` of the vector's final
    input word; it is 0 on every other output word.

    Timing: the input vector goes to one half of a double buffer while the other half is
    replayed, so cycles per vector are ``(K/simd)·(N/pe)`` in steady state (the input is
    read at ``simd`` bits per cycle, never slower than the compute). ``latency`` cycles
    pass from the transfer of a vector's final input word to its first output word.
    Back-pressure on ``o`` stalls the whole compute pipeline (a global enable); the input
    keeps filling the free buffer half.

    Memories (``amaranth.lib.memory``): the input double buffer (``2·K/simd`` ×
    ``feature_width(simd, popcount)``) and the per-PE weight ROMs (``(N/pe)·(K/simd)`` ×
    ``simd``, init from ``split_per_pe(pack_weight_rom(...))``, each word passed through
    ``encode_weight_word``; ``rom`` stays the canonical image) have synchronous,
    non-transparent read ports enabled by the global enable (block RAM / LUTRAM friendly;
    a buffer half is never read and written in the same cycle). A one-word weight ROM
    (``N = pe``, ``K = simd``) is only that read register, holding its word. The fused
    thresholds are a per-PE ROM of ``N/pe`` rows with an asynchronous read, addressed by
    the neuron fold in the output stage (constants when ``N = pe``). With ``K = simd``
    there is no accumulator: the count goes straight to the output stage.
    """

    def __init__(self, K: int, N: int, pe: int, simd: int, weights: Any, *,
                 thresholds: Any = None, flip: Any = None, popcount: str = "counter6",
                 register_every: int = 1):
        self.K = _positive_int(K, "K")
        self.N = _positive_int(N, "N")
        self.pe = _fold(pe, "pe", self.N, "N")
        self.simd = _fold(simd, "simd", self.K, "K")
        if popcount not in POPCOUNT_STYLES:
            raise ConfigError(f"popcount: expected one of {POPCOUNT_STYLES}, got {popcount!r}")
        self.popcount = popcount
        if isinstance(register_every, bool) or not isinstance(register_every, int) \
                or register_every < 0:
            raise ConfigError(f"register_every: expected an integer ≥ 0, got {register_every!r}")
        self.register_every = register_every
        self.neuron_folds = self.N // self.pe
        self.synapse_folds = self.K // self.simd
        self.rom = self._weight_rom(weights)
        self.weights = unpack_weight_rom(self.rom)
        self.out_width = self.K.bit_length() + 1
        self.thresholds, self.flip = self._thresholds(thresholds, flip)
        if self.thresholds is None:
            out_layout = fixed_point_layout(self.out_width, self.pe)
        else:
            out_layout = binary_layout(self.pe)
        super().__init__({"i": In(stream.Signature(binary_layout(self.simd))),
                          "o": Out(stream.Signature(out_layout))})

    def _weight_rom(self, weights: Any) -> RomImage:
        if isinstance(weights, RomImage):
            expected = (self.pe, self.simd, self.N, self.K)
            if (weights.pe, weights.simd, weights.n, weights.k) != expected:
                raise ConfigError(
                    f"weights: a RomImage folded as pe={weights.pe}, simd={weights.simd} of "
                    f"[{weights.n}, {weights.k}] does not match pe={self.pe}, simd={self.simd}, "
                    f"[N={self.N}, K={self.K}]; pack it with pack_weight_rom(w, pe, simd)")
            return weights
        w = as_bit_tensor(weights, "weights")
        if tuple(w.shape) != (self.N, self.K):
            raise DataError(f"weights: expected a bit matrix of shape [N, K] = "
                            f"[{self.N}, {self.K}], got {tuple(w.shape)}")
        return pack_weight_rom(w, self.pe, self.simd)

    def _thresholds(self, thresholds: Any, flip: Any):
        if thresholds is None:
            if flip is not None:
                raise ConfigError("flip: given without thresholds (flip only applies to the "
                                  "fused threshold)")
            return None, None
        t = as_int_tensor(thresholds, "thresholds")
        if tuple(t.shape) != (self.N,):
            raise DataError(f"thresholds: expected one per output channel, shape ({self.N},), "
                            f"got {tuple(t.shape)}")
        f = torch.zeros(self.N, dtype=torch.bool) if flip is None else as_bit_tensor(flip, "flip")
        if tuple(f.shape) != (self.N,):
            raise DataError(f"flip: expected shape ({self.N},), got {tuple(f.shape)}")
        return t, f

    # -- contract -----------------------------------------------------------------------

    @staticmethod
    def vector_cycles(K: int, N: int, pe: int, simd: int) -> int:
        """Steady-state cycles per input vector of a ``K → N`` unit folded ``pe × simd``:
        ``(K/simd)·(N/pe)`` (the folding pass reads it without building a unit)."""
        return (K // simd) * (N // pe)

    @property
    def cycles_per_vector(self) -> int:
        """Steady-state cycles per input vector: ``(K/simd)·(N/pe)``."""
        return self.vector_cycles(self.K, self.N, self.pe, self.simd)

    @property
    def popcount_stages(self) -> int:
        """Register stages inside the popcount tree."""
        return popcount_stages(self.simd, self.popcount, self.register_every)

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a vector's final input word to the transfer of its
        first output word, without back-pressure: ``K/simd`` issue cycles, one ROM/buffer
        read, the popcount stages, the accumulate-and-output register, and the transfer."""
        return self.synapse_folds + 2 + self.popcount_stages

    def model(self, a_bits: Any) -> torch.Tensor:
        """``intref.xnor_popcount_dot(a_bits, W)`` ``[..., N]``, or with thresholds the bits
        ``intref.threshold(dot, thresholds, flip)``."""
        dot = intref.xnor_popcount_dot(a_bits, self.weights)
        if self.thresholds is None:
            return dot
        return intref.threshold(dot, self.thresholds, self.flip)

    def input_words(self, a_bits: Any) -> list[int]:
        """Stream words for ``a_bits`` ``[vectors, K]`` (one image, ``last`` on its final
        word) or ``[images, vectors, K]``."""
        return encode_binary(a_bits, self.simd)

    def output_words(self, a_bits: Any) -> list[int]:
        """The words the unit must produce for ``input_words(a_bits)``: ``model()`` encoded."""
        result = self.model(a_bits)
        if self.thresholds is None:
            return encode_fixed_point(result, self.out_width, self.pe)
        return encode_binary(result, self.pe)

    def decode_output(self, words: list[int]) -> torch.Tensor:
        """``[images, vectors, N]`` from output words (inverse of ``output_words``)."""
        if self.thresholds is None:
            return decode_fixed_point(words, self.out_width, self.pe, self.N)
        return decode_binary(words, self.pe, self.N)

    # -- hardware -----------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        SF, NF, simd, pe = self.synapse_folds, self.neuron_folds, self.simd, self.pe
        out_ready = self.o.ready
        enable = Signal()  # global stall: everything after the input buffer holds
        m.d.comb += enable.eq(~self.o.valid | out_ready)

        # Input double buffer: words 0..SF-1 are half 0, SF..2SF-1 half 1.
        features = feature_width(simd, self.popcount)
        m.submodules.buffer = buffer = memory.Memory(shape=unsigned(features), depth=2 * SF,
                                                     init=[])
        buf_write = buffer.write_port()
        buf_read = buffer.read_port(domain="sync")
        full = [Signal(name=f"half{h}_full") for h in range(2)]
        half_last = [Signal(name=f"half{h}_last") for h in range(2)]

        written = Signal(features)  # built once here, read by every PE
        m.d.comb += written.eq(activation_features(self.i.payload.data, self.popcount))
        write_half = Signal()
        write_index = row_counter(m, buf_write.en, SF, "write_index")
        m.d.comb += [
            self.i.ready.eq(~Mux(write_half, full[1], full[0])),
            buf_write.addr.eq(Mux(write_half, SF, 0) + write_index),
            buf_write.data.eq(written),
            buf_write.en.eq(self.i.valid & self.i.ready),
        ]
        write_done = Signal()
        m.d.comb += write_done.eq(buf_write.en & _is_last(write_index, SF))
        with m.If(write_done):
            m.d.sync += write_half.eq(~write_half)

        # Issue stage: replay the full half NF times, one (nf, sf) step per enabled cycle.
        read_half = Signal()
        can_issue = Signal()
        issue = Signal()
        vector_done = Signal()  # final step of the vector: the half is free again
        sf = row_counter(m, issue, SF, "sf")
        step_last = _is_last(sf, SF)  # final synapse fold of this neuron fold
        nf = row_counter(m, issue & step_last, NF, "nf")
        rom_addr = row_counter(m, issue, NF * SF, "rom_addr")
        m.d.comb += [
            can_issue.eq(Mux(read_half, full[1], full[0])),
            issue.eq(can_issue & enable),
            vector_done.eq(issue & step_last & _is_last(nf, NF)),
            buf_read.addr.eq(Mux(read_half, SF, 0) + sf),
            buf_read.en.eq(enable),
        ]
        with m.If(vector_done):
            m.d.sync += read_half.eq(~read_half)

        for h in range(2):
            with m.If(write_done & (write_half == h)):
                m.d.sync += [full[h].eq(1), half_last[h].eq(self.i.payload.last)]
            with m.If(vector_done & (read_half == h)):
                m.d.sync += full[h].eq(0)

        # Per-PE weight ROMs, read in step with the buffer. A one-word ROM is only the
        # register its read port would have, loaded with that word (no zero-bit address).
        rom_data = []
        for p, image in enumerate(split_per_pe(self.rom)):
            words = [encode_weight_word(word, simd, self.popcount) for word in image.words]
            if len(words) == 1:
                word = Signal(simd, init=words[0], name=f"weights_pe{p}")
                with m.If(enable):
                    m.d.sync += word.eq(words[0])
                rom_data.append(word)
                continue
            rom = memory.Memory(shape=unsigned(simd), depth=len(words), init=words)
            m.submodules[f"weights_pe{p}"] = rom
            port = rom.read_port(domain="sync")
            m.d.comb += [port.addr.eq(rom_addr), port.en.eq(enable)]
            rom_data.append(port.data)

        # Control tags travel beside the data: read stage, then the popcount stages. Tags
        # that a folding makes constant (one synapse fold, one neuron fold) are left out.
        tag_values = {"valid": issue,
                      "out_last": Mux(read_half, half_last[1], half_last[0]) & _is_last(nf, NF)}
        if SF > 1:
            tag_values |= {"first": sf == 0, "last_step": step_last}
        if self.thresholds is not None and NF > 1:
            tag_values["nf"] = nf
        tags = {}
        for name, value in tag_values.items():
            tags[name] = Signal.like(value, name=f"tag_{name}_0")
            with m.If(enable):
                m.d.sync += tags[name].eq(value)
        counts = []
        stages = 0
        for p in range(pe):
            count, stages = xnor_popcount(m, buf_read.data, rom_data[p], style=self.popcount,
                                          register_every=self.register_every, enable=enable,
                                          name=f"popcount_pe{p}", encoded=True)
            counts.append(count)
        for stage in range(stages):
            delayed = {name: Signal.like(tag, name=f"tag_{name}_{stage + 1}")
                       for name, tag in tags.items()}
            with m.If(enable):
                m.d.sync += [delayed[name].eq(tags[name]) for name in tags]
            tags = delayed
        last_step = tags["last_step"] if SF > 1 else Const(1, 1)
        output = Signal()  # this cycle's fold completes an output word
        m.d.comb += output.eq(enable & tags["valid"] & last_step)

        # Accumulate over the synapse folds; the final fold loads the output register.
        with m.If(enable):
            m.d.sync += self.o.valid.eq(tags["valid"] & last_step)
        if self.thresholds is not None:
            thresh_width = max(self.out_width,
                               max(int(v).bit_length() for v in self.thresholds.tolist()) + 1)
            rows = [[(int(self.thresholds[f * pe + p]), int(self.flip[f * pe + p]))
                     for p in range(pe)] for f in range(NF)]
        bits = []
        for p in range(pe):
            dot = Signal(signed(self.out_width), name=f"dot_pe{p}")
            if SF > 1:
                total = Signal(range(self.K + 1), name=f"sum_pe{p}")
                acc = Signal(range(self.K + 1), name=f"acc_pe{p}")
                m.d.comb += total.eq(Mux(tags["first"], 0, acc) + counts[p])
                with m.If(enable & tags["valid"]):
                    m.d.sync += acc.eq(total)
            else:
                total = counts[p]
            m.d.comb += dot.eq((total << 1) - self.K)
            if self.thresholds is None:
                with m.If(output):
                    m.d.sync += self.o.payload.data[p].eq(dot)
                continue
            bit = Signal(name=f"bit_pe{p}")
            if NF > 1:
                table = memory.Memory(
                    shape=unsigned(thresh_width + 1), depth=NF,
                    init=[(t & ((1 << thresh_width) - 1)) | (f << thresh_width)
                          for t, f in (row[p] for row in rows)])
                m.submodules[f"thresholds_pe{p}"] = table
                lookup = table.read_port(domain="comb")
                thresh = Signal(signed(thresh_width), name=f"thresh_pe{p}")
                flip = Signal(name=f"flip_pe{p}")
                m.d.comb += [lookup.addr.eq(tags["nf"]),
                             thresh.eq(lookup.data[:thresh_width]),
                             flip.eq(lookup.data[thresh_width])]
                m.d.comb += bit.eq(Mux(flip, dot <= thresh, dot >= thresh))
            else:  # one threshold per PE: the compare's direction is known here
                thresh, flip = rows[0][p]
                m.d.comb += bit.eq(dot <= thresh if flip else dot >= thresh)
            bits.append(bit)
        if self.thresholds is not None:
            with m.If(output):
                m.d.sync += self.o.payload.data.eq(Cat(*bits))
        with m.If(output):
            m.d.sync += self.o.payload.last.eq(tags["out_last"])
        return m
