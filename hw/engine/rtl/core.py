"""The engine core: sequencer, WINDOW unit, XNOR matmul unit and epilogue unit on one memory port.

The sequencer fetches the program from memory (each 32-bit instruction word as two 16-bit
words, low half first, from the halfword address ``pc``), keeps the instruction's record in
registers and all its words in an instruction buffer (block RAM, 256 × 32), and decodes the
fields through :func:`~binaryvit.hw.engine.rtl.fields.record_field` (the encoding's field
tables). It dispatches on the opcode; a ``HALT`` word ends the program (``done``).

This core executes the ``WINDOW`` class (``SUM``, ``AVERAGE``, ``GLOBAL``; ``STREAM``
source) and ``MATMUL`` in ``XNOR`` mode (``BITS`` source through ``IDENTITY`` or ``PATCHES``)
with the epilogue stages ``Affine``, ``RPReLU``, ``Add`` (``IDENTITY`` and ``TILE``
operands, ``STREAM`` or ``WIDE``), ``Threshold`` (``BITS`` / ``BITS_T``), ``GroupAverage``
and ``Store`` (``STREAM`` / ``WIDE``), element by element: for each output token ``t``, for
each channel ``c``: the source (the window's taps and multiply-round-shift, or the XNOR
popcount over 16-bit words of the source row and the weight row), then every stage in order.
Anything else (``MASK``, ``MAC``, the context ``MATMUL``, the ``UPSAMPLE`` / ``PATCHES``
operand patterns of ``Add``) stops the core with ``error`` and ``error_pc`` naming the
instruction — never a silent wrong result.

It is a sequential datapath: one memory access per cycle, no overlap between the units, so
it is correct but several times slower than the cycle model (``docs/engine-rtl.md`` has the
figures and the plan for the pipelined units).

Members
-------
start : In(1)        pulse: run the program from halfword address ``pc_start``.
pc_start : In(address_bits)
busy, done, error : Out(1)   ``done`` / ``error`` hold until the next ``start``.
error_pc : Out(address_bits) halfword address of the instruction that stopped the core.
instructions : Out(16)       instructions completed since ``start``.
mem_* : the memory port (see :class:`~binaryvit.hw.engine.rtl.memory.EngineMemory`).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.config import WORD_BITS, EngineConfig
from binaryvit.hw.engine.encoding import record_words
from binaryvit.hw.engine.isa import (
    INSTRUCTIONS, STAGES, Add, Affine, GroupAverage, MatMul, MatMulMode, Pattern, RPReLU, Store,
    TensorKind, Threshold, Window, WindowMode)
from binaryvit.hw.engine.rtl.fields import record_field
from binaryvit.hw.kernels.popcount import xnor_popcount

VALUE_BITS = 48        # the epilogue's running value (≥ accumulator_bits)
PRODUCT_BITS = 66      # a 16- or 18-bit constant times the value, plus a bias
BUFFER_WORDS = 256     # instruction buffer: an instruction is at most 255 words


def round_shift_saturate(m: Module, value, shift, width, name: str):
    """``saturate(round_shift(value, shift), width)`` as in ``intref.fixed_point`` (width 0:
    no saturation); ``shift`` and ``width`` are run-time fields."""
    rounded = Signal(signed(PRODUCT_BITS), name=f"{name}_rounded")
    hi = Signal(signed(PRODUCT_BITS), name=f"{name}_hi")
    out = Signal(signed(PRODUCT_BITS), name=f"{name}_out")
    m.d.comb += [
        rounded.eq((value + ((Const(1, PRODUCT_BITS) << shift) >> 1)) >> shift),
        hi.eq(((Const(1, PRODUCT_BITS) << width) >> 1) - 1),
        out.eq(rounded),
    ]
    with m.If(width != 0):
        with m.If(rounded > hi):
            m.d.comb += out.eq(hi)
        with m.Elif(rounded < -hi - 1):
            m.d.comb += out.eq(-hi - 1)
    return out


class EngineCore(wiring.Component):
    def __init__(self, config: EngineConfig):
        if config.wide_words != 2:
            raise ConfigError(f"engine config {config.name!r}: the RTL supports wide_words=2, "
                              f"got {config.wide_words}")
        self.config = config
        self.address_bits = max(1, (config.total_words - 1).bit_length())
        self.header_words = max(record_words(cls) for cls in INSTRUCTIONS)
        self.stage_words = max(record_words(cls) for cls in STAGES)
        a = self.address_bits
        super().__init__({
            "start": In(1), "pc_start": In(a),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_pc": Out(a),
            "instructions": Out(16),
            "mem_addr": Out(a), "mem_read": Out(1), "mem_write": Out(1),
            "mem_write_data": Out(WORD_BITS), "mem_read_data": In(WORD_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        a = self.address_bits
        rdata = self.mem_read_data

        def read(address):
            m.d.comb += [self.mem_addr.eq(address), self.mem_read.eq(1)]

        def write(address, data):
            m.d.comb += [self.mem_addr.eq(address), self.mem_write.eq(1),
                         self.mem_write_data.eq(data)]

        # ---- sequencer state ------------------------------------------------------------
        pc = Signal(a)
        instr_pc = Signal(a)
        low = Signal(16)
        word_index = Signal(8)
        length = Signal(8)
        header = [Signal(32, name=f"header{i}") for i in range(self.header_words)]
        m.submodules.ibuf = ibuf = Memory(shape=32, depth=BUFFER_WORDS, init=[])
        ibuf_w = ibuf.write_port()
        ibuf_r = ibuf.read_port()
        opcode = header[0][0:4]
        stage_count = header[0][12:16]

        # ---- window unit ------------------------------------------------------------------
        def wf(path):
            return record_field(Window, header, path)
        mode = wf("mode")
        is_global = mode == WindowMode.GLOBAL
        src = wf("source.address")
        src_rows, cols = wf("source.rows"), wf("source.cols")
        kh = Mux(is_global, src_rows, wf("kh"))
        kw = Mux(is_global, 1, wf("kw"))
        grid_h = Mux(is_global, src_rows, wf("grid_h"))
        grid_w = Mux(is_global, 1, wf("grid_w"))
        stride = Mux(is_global, 1, wf("stride"))
        pad_h = Mux(is_global, 0, wf("pad_h"))
        pad_w = Mux(is_global, 0, wf("pad_w"))
        def mf(path):
            return record_field(MatMul, header, path)
        is_matmul = opcode == MatMul.OPCODE
        n_out = Mux(is_matmul, mf("weights.rows"), cols)   # a window keeps the channels

        t = Signal(16)          # output token
        c = Signal(16)          # output channel
        y_base = Signal(16)     # the window's top-left tap on the padded grid
        x_base = Signal(16)
        ki = Signal(16)
        kj = Signal(16)
        tap_valid = Signal()
        acc = Signal(signed(VALUE_BITS))
        y = Signal(signed(18))
        x = Signal(signed(18))
        m.d.comb += [y.eq(y_base + ki - pad_h), x.eq(x_base + kj - pad_w)]
        inside = (y >= 0) & (y < grid_h) & (x >= 0) & (x < grid_w)
        tap_address = src + (y.as_unsigned()[:16] * grid_w + x.as_unsigned()[:16]) * cols + c
        scaled = round_shift_saturate(m, acc * wf("mul"), wf("shift"), wf("width"), "pool")

        # ---- XNOR matmul unit: one 16-bit word of a source row per step --------------------
        # A PATCHES source row is f·f source rows side by side: step (i, j, word) reads word
        # `word` of source token (pi·f + i, pj·f + j) and the weight bits at the same offset
        # of the logical row (two words, funnel-shifted: the rows need not be word-aligned).
        m_src = mf("source.tensor.address")
        m_rows, m_cols = mf("source.tensor.rows"), mf("source.tensor.cols")
        m_patches = mf("source.pattern") == Pattern.PATCHES
        m_f = Mux(m_patches, mf("source.factor"), 1)
        m_gw = mf("source.grid_w")
        m_k = mf("weights.cols")
        row_words = (m_cols + 15) >> 4
        p_i, p_j, p_word = Signal(8), Signal(8), Signal(12)
        pi_base, pj_base = Signal(16), Signal(16)          # patch origin on the source grid
        src_token = Mux(m_patches, (pi_base + p_i) * m_gw + pj_base + p_j, t)
        offset = Signal(32)
        m.d.comb += offset.eq((p_i * m_f + p_j) * m_cols + (p_word << 4))
        weight_row = mf("weights.address") + c * ((m_k + 15) >> 4)
        a_word, w_low = Signal(16), Signal(16)
        w_bits = (Cat(w_low, rdata) >> offset[0:4])[0:16]
        remaining = m_cols - (p_word << 4)
        valid = Mux(remaining >= 16, 0xFFFF, (Const(1, 17) << remaining[0:5]) - 1)[0:16]
        matches, _ = xnor_popcount(m, a_word & valid, w_bits | ~valid, style="counter4",
                                   name="array")

        # ---- epilogue unit ------------------------------------------------------------------
        value = Signal(signed(VALUE_BITS))
        stage = [Signal(32, name=f"stage{i}") for i in range(self.stage_words)]
        stage_index = Signal(4)
        stage_ptr = Signal(8)
        load_index = Signal(range(self.stage_words + 1))
        gathered = [Signal(16, name=f"gathered{i}") for i in range(6)]
        gather_index = Signal(3)
        stage_op = stage[0][0:4]
        stage_len = stage[0][4:8]

        def sf(cls, path):
            return record_field(cls, stage, path)
        params = sf(Affine, "params")      # Affine, RPReLU and Threshold share the place
        two_c, two_n = c << 1, n_out << 1

        add_kind = sf(Add, "operand.tensor.kind")
        add_cols = sf(Add, "operand.tensor.cols")
        add_pattern = sf(Add, "operand.pattern")
        add_wide = add_kind == TensorKind.WIDE
        add_channel = Mux(add_pattern == Pattern.TILE, c % add_cols, c)
        add_element = Signal(32)
        m.d.comb += add_element.eq(t * add_cols + add_channel)
        add_address = sf(Add, "operand.tensor.address") + Mux(add_wide, add_element << 1,
                                                                 add_element)
        gather_count = Signal(3)
        gather_address = Signal(32)
        with m.Switch(stage_op):
            with m.Case(Affine.OPCODE):
                m.d.comb += gather_count.eq(3)
                m.d.comb += gather_address.eq(Array([params + c, params + n_out + two_c,
                                                     params + n_out + two_c + 1])[gather_index])
            with m.Case(RPReLU.OPCODE):
                m.d.comb += gather_count.eq(6)
                m.d.comb += gather_address.eq(Array([
                    params + two_c, params + two_c + 1, params + two_n + c,
                    params + two_n + n_out + c, params + (n_out << 2) + two_c,
                    params + (n_out << 2) + two_c + 1])[gather_index])
            with m.Case(Add.OPCODE):
                m.d.comb += gather_count.eq(Mux(add_wide, 2, 1))
                m.d.comb += gather_address.eq(add_address + gather_index)
            with m.Case(GroupAverage.OPCODE):
                m.d.comb += gather_count.eq(0)
            with m.Case(Threshold.OPCODE):
                m.d.comb += gather_count.eq(3)
                m.d.comb += gather_address.eq(Array([params + two_c, params + two_c + 1,
                                                     params + two_n + (c >> 4)])[gather_index])
        g = gathered
        constant = g[0].as_signed()
        wide01 = Cat(g[0], g[1]).as_signed()
        affine_out = round_shift_saturate(m, constant * value + Cat(g[1], g[2]).as_signed(),
                                          sf(Affine, "shift"), sf(Affine, "width"), "affine")
        rp_t = Signal(signed(VALUE_BITS + 1))
        m.d.comb += rp_t.eq(value + wide01)
        rp_mul = Mux(rp_t >= 0, g[2].as_signed(), g[3].as_signed())
        rprelu_out = round_shift_saturate(m, rp_mul * rp_t + Cat(g[4], g[5]).as_signed(),
                                          sf(RPReLU, "shift"), sf(RPReLU, "width"), "rprelu")
        add_out = round_shift_saturate(m, value + Mux(add_wide, wide01, constant), 0,
                                       sf(Add, "width"), "add")
        flip = g[2].bit_select(c[0:4], 1)
        threshold_bit = Mux(flip, value <= wide01, value >= wide01)

        out_kind = sf(Threshold, "out.kind")
        out_rows, out_cols = sf(Threshold, "out.rows"), sf(Threshold, "out.cols")
        bit_address = sf(Threshold, "out.address") + Mux(
            out_kind == TensorKind.BITS_T,
            c * ((out_rows + 15) >> 4) + (t >> 4),
            t * ((out_cols + 15) >> 4) + (c >> 4))
        bit_position = Mux(out_kind == TensorKind.BITS_T, t[0:4], c[0:4])
        bit_word_address = Signal(a)
        bit_index = Signal(4)
        bit_value = Signal()

        group = sf(GroupAverage, "group")
        group_sum = Signal(signed(VALUE_BITS))
        group_last = (c % group) == group - 1
        group_total = Mux((c % group) == 0, value, group_sum + value)
        group_out = round_shift_saturate(m, group_total * sf(GroupAverage, "mul"),
                                         sf(GroupAverage, "shift"), sf(GroupAverage, "width"),
                                         "group")
        group_kind = sf(GroupAverage, "out.kind")
        group_element = Signal(32)
        m.d.comb += group_element.eq(t * sf(GroupAverage, "out.cols") + c // group)
        store_value = Signal(signed(VALUE_BITS))
        store_wide = Signal()

        store_kind = sf(Store, "out.kind")
        store_element = Signal(32)
        m.d.comb += store_element.eq(t * sf(Store, "out.cols") + c)
        store_address = Signal(a)

        def fail():
            m.d.sync += self.error_pc.eq(instr_pc)
            m.next = "ERROR"

        m.d.comb += self.busy.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(self.pc_start), self.done.eq(0), self.error.eq(0),
                                 self.instructions.eq(0)]
                    m.next = "FETCH_LOW"
            with m.State("FETCH_LOW"):
                m.d.comb += self.busy.eq(1)
                read(pc)
                with m.If(word_index == 0):
                    m.d.sync += instr_pc.eq(pc)
                m.next = "FETCH_HIGH"
            with m.State("FETCH_HIGH"):
                m.d.comb += self.busy.eq(1)
                read(pc + 1)
                m.d.sync += low.eq(rdata)
                m.next = "FETCH_STORE"
            with m.State("FETCH_STORE"):
                m.d.comb += self.busy.eq(1)
                word = Cat(low, rdata)
                m.d.comb += [ibuf_w.addr.eq(word_index), ibuf_w.data.eq(word), ibuf_w.en.eq(1)]
                for i, h in enumerate(header):
                    with m.If(word_index == i):
                        m.d.sync += h.eq(word)
                m.d.sync += pc.eq(pc + 2)
                with m.If((word_index == 0) & (word[0:4] == 0)):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Elif(word_index == 0):
                    m.d.sync += [length.eq(word[4:12]), word_index.eq(1)]
                    m.next = "FETCH_LOW"
                    with m.If(word[4:12] == 1):
                        m.d.sync += word_index.eq(0)
                        m.next = "DISPATCH"
                with m.Elif(word_index + 1 == length):
                    m.d.sync += word_index.eq(0)
                    m.next = "DISPATCH"
                with m.Else():
                    m.d.sync += word_index.eq(word_index + 1)
                    m.next = "FETCH_LOW"
            with m.State("DISPATCH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [t.eq(0), c.eq(0), y_base.eq(0), x_base.eq(0), pi_base.eq(0),
                             pj_base.eq(0)]
                with m.If((opcode == Window.OPCODE)
                          & (wf("source.kind") == TensorKind.STREAM)):
                    m.next = "ELEMENT"
                with m.Elif(is_matmul & (mf("mode") == MatMulMode.XNOR)
                            & (mf("source.tensor.kind") == TensorKind.BITS)
                            & ((mf("source.pattern") == Pattern.IDENTITY) | m_patches)):
                    m.next = "DOT"
                with m.Else():
                    fail()
            # -- window: the taps of element (t, c) --
            with m.State("ELEMENT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [acc.eq(0), ki.eq(0), kj.eq(0)]
                m.next = "TAP"
            with m.State("TAP"):
                m.d.comb += self.busy.eq(1)
                with m.If(inside):
                    read(tap_address)
                m.d.sync += tap_valid.eq(inside)
                m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):
                m.d.comb += self.busy.eq(1)
                with m.If(tap_valid):
                    m.d.sync += acc.eq(acc + rdata.as_signed())
                with m.If(kj + 1 < kw):
                    m.d.sync += kj.eq(kj + 1)
                    m.next = "TAP"
                with m.Elif(ki + 1 < kh):
                    m.d.sync += [ki.eq(ki + 1), kj.eq(0)]
                    m.next = "TAP"
                with m.Else():
                    m.next = "SCALE"
            # -- matmul: the XNOR-popcount dot of element (t, c) --
            with m.State("DOT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [acc.eq(0), p_i.eq(0), p_j.eq(0), p_word.eq(0)]
                m.next = "DOT_SOURCE"
            with m.State("DOT_SOURCE"):
                m.d.comb += self.busy.eq(1)
                read(m_src + src_token * row_words + p_word)
                m.next = "DOT_WEIGHT_LOW"
            with m.State("DOT_WEIGHT_LOW"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += a_word.eq(rdata)
                read(weight_row + (offset >> 4))
                m.next = "DOT_WEIGHT_HIGH"
            with m.State("DOT_WEIGHT_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += w_low.eq(rdata)
                read(weight_row + (offset >> 4) + 1)
                m.next = "DOT_COUNT"
            with m.State("DOT_COUNT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += acc.eq(acc + matches)
                m.next = "DOT_SOURCE"
                with m.If(p_word + 1 < row_words):
                    m.d.sync += p_word.eq(p_word + 1)
                with m.Else():
                    m.d.sync += p_word.eq(0)
                    with m.If(p_j + 1 < m_f):
                        m.d.sync += p_j.eq(p_j + 1)
                    with m.Elif(p_i + 1 < m_f):
                        m.d.sync += [p_i.eq(p_i + 1), p_j.eq(0)]
                    with m.Else():
                        m.next = "DOT_DONE"
            with m.State("DOT_DONE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [value.eq((acc << 1) - m_k), stage_index.eq(0),
                             stage_ptr.eq(record_words(MatMul))]
                m.next = "STAGE"
            with m.State("SCALE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [value.eq(Mux(mode == WindowMode.SUM, acc, scaled)),
                             stage_index.eq(0), stage_ptr.eq(record_words(Window))]
                m.next = "STAGE"
            # -- epilogue: every stage of the instruction on value (t, c) --
            with m.State("STAGE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += load_index.eq(0)
                m.next = "NEXT_ELEMENT"
                with m.If(stage_index != stage_count):
                    m.next = "STAGE_LOAD"
            with m.State("STAGE_LOAD"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += ibuf_r.addr.eq(stage_ptr + load_index)
                for i, s in enumerate(stage):
                    with m.If(load_index == i + 1):
                        m.d.sync += s.eq(ibuf_r.data)
                m.d.sync += [load_index.eq(load_index + 1), gather_index.eq(0)]
                with m.If(load_index == self.stage_words):
                    m.next = "GATHER"
            with m.State("GATHER"):
                m.d.comb += self.busy.eq(1)
                with m.If(gather_index < gather_count):
                    read(gather_address)
                for i, gw in enumerate(gathered):
                    with m.If(gather_index == i + 1):
                        m.d.sync += gw.eq(rdata)
                m.d.sync += gather_index.eq(gather_index + 1)
                with m.If(gather_index == gather_count):
                    m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.comb += self.busy.eq(1)
                m.next = "STAGE_END"
                with m.Switch(stage_op):
                    with m.Case(Affine.OPCODE):
                        m.d.sync += value.eq(affine_out)
                    with m.Case(RPReLU.OPCODE):
                        m.d.sync += value.eq(rprelu_out)
                    with m.Case(Add.OPCODE):
                        with m.If(add_pattern > Pattern.TILE):
                            fail()
                        with m.Else():
                            m.d.sync += value.eq(add_out)
                    with m.Case(Threshold.OPCODE):
                        m.d.sync += [bit_word_address.eq(bit_address), bit_index.eq(bit_position),
                                     bit_value.eq(threshold_bit)]
                        m.next = "BIT_READ"
                    with m.Case(Store.OPCODE):
                        m.d.sync += [
                            store_address.eq(sf(Store, "out.address") + Mux(
                                store_kind == TensorKind.WIDE, store_element << 1, store_element)),
                            store_value.eq(value), store_wide.eq(store_kind == TensorKind.WIDE)]
                        m.next = "STORE_LOW"
                    with m.Case(GroupAverage.OPCODE):
                        m.d.sync += group_sum.eq(group_total)
                        with m.If(group_last):
                            m.d.sync += [
                                store_address.eq(sf(GroupAverage, "out.address") + Mux(
                                    group_kind == TensorKind.WIDE, group_element << 1,
                                    group_element)),
                                store_value.eq(group_out),
                                store_wide.eq(group_kind == TensorKind.WIDE)]
                            m.next = "STORE_LOW"
                    with m.Default():
                        fail()
            with m.State("BIT_READ"):
                m.d.comb += self.busy.eq(1)
                with m.If(bit_index != 0):        # the word's first bit starts it afresh
                    read(bit_word_address)
                m.next = "BIT_WRITE"
            with m.State("BIT_WRITE"):
                m.d.comb += self.busy.eq(1)
                old = Mux(bit_index == 0, 0, rdata)
                mask = Const(1, 16) << bit_index
                write(bit_word_address, Mux(bit_value, old | mask, old & ~mask))
                m.next = "STAGE_END"
            with m.State("STORE_LOW"):
                m.d.comb += self.busy.eq(1)
                write(store_address, store_value[0:16])
                m.next = "STAGE_END"
                with m.If(store_wide):
                    m.next = "STORE_HIGH"
            with m.State("STORE_HIGH"):
                m.d.comb += self.busy.eq(1)
                write(store_address + 1, store_value[16:32])
                m.next = "STAGE_END"
            with m.State("STAGE_END"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [stage_ptr.eq(stage_ptr + stage_len), stage_index.eq(stage_index + 1)]
                m.next = "STAGE"
            # -- the next element, the next output token, or the next instruction --
            with m.State("NEXT_ELEMENT"):
                m.d.comb += self.busy.eq(1)
                m.next = "ELEMENT"
                with m.If(c + 1 < n_out):
                    m.d.sync += c.eq(c + 1)
                    with m.If(is_matmul):
                        m.next = "DOT"
                with m.Elif(is_matmul):
                    m.d.sync += [c.eq(0), t.eq(t + 1)]
                    with m.If(pj_base + m_f < m_gw):
                        m.d.sync += pj_base.eq(pj_base + m_f)
                    with m.Else():
                        m.d.sync += [pj_base.eq(0), pi_base.eq(pi_base + m_f)]
                    with m.If(t + 1 == Mux(m_patches, m_rows // (m_f * m_f), m_rows)):
                        m.d.sync += self.instructions.eq(self.instructions + 1)
                        m.next = "FETCH_LOW"
                    with m.Else():
                        m.next = "DOT"
                with m.Else():
                    m.d.sync += [c.eq(0), t.eq(t + 1)]
                    with m.If(x_base + stride + kw <= grid_w + 2 * pad_w):
                        m.d.sync += x_base.eq(x_base + stride)
                    with m.Else():
                        m.d.sync += x_base.eq(0)
                        with m.If(y_base + stride + kh <= grid_h + 2 * pad_h):
                            m.d.sync += y_base.eq(y_base + stride)
                        with m.Else():
                            m.d.sync += self.instructions.eq(self.instructions + 1)
                            m.next = "FETCH_LOW"
            with m.State("ERROR"):
                m.d.sync += self.error.eq(1)
                with m.If(self.start):
                    m.next = "IDLE"
        return m


class Engine(wiring.Component):
    """:class:`EngineCore` on an :class:`~binaryvit.hw.engine.rtl.memory.EngineMemory`.

    Members: ``start``, ``pc_start``, ``busy``, ``done``, ``error``, ``error_pc``,
    ``instructions`` as for the core; ``memory`` is the memory component (its
    :meth:`~binaryvit.hw.engine.rtl.memory.EngineMemory.word` reads a word in simulation).
    """

    def __init__(self, config: EngineConfig, *, implementation: str = "model", init=None):
        from binaryvit.hw.engine.rtl.memory import EngineMemory
        self.core = EngineCore(config)
        self.memory = EngineMemory(config, implementation=implementation, init=init)
        a = self.core.address_bits
        super().__init__({"start": In(1), "pc_start": In(a), "busy": Out(1), "done": Out(1),
                          "error": Out(1), "error_pc": Out(a), "instructions": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.memory = mem = self.memory
        m.d.comb += [
            core.start.eq(self.start), core.pc_start.eq(self.pc_start),
            self.busy.eq(core.busy), self.done.eq(core.done), self.error.eq(core.error),
            self.error_pc.eq(core.error_pc), self.instructions.eq(core.instructions),
            mem.addr.eq(core.mem_addr), mem.read.eq(core.mem_read), mem.write.eq(core.mem_write),
            mem.write_data.eq(core.mem_write_data), core.mem_read_data.eq(mem.read_data),
        ]
        return m


__all__ = ["Engine", "EngineCore", "round_shift_saturate"]
