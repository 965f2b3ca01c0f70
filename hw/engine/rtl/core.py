"""The engine core: sequencer, window, bit-dot, mask, MAC and epilogue units on one memory port.

The sequencer fetches the program from memory (each 32-bit instruction word as two 16-bit
words, low half first, from the halfword address ``pc``), keeps the instruction's record in
registers and all its words in an instruction buffer (block RAM, 256 × 32), and decodes the
fields through :func:`~binaryvit.hw.engine.rtl.fields.record_field` (the encoding's field
tables). It dispatches on the opcode; a ``HALT`` word ends the program (``done``).

This core executes every instruction class: ``WINDOW`` (``SUM``, ``AVERAGE``, ``GLOBAL``;
``STREAM`` source), ``MATMUL`` (``XNOR`` through ``IDENTITY`` or ``PATCHES``, and
``CONTEXT``), ``MASK`` and ``MAC`` (``STREAM`` or ``WIDE`` source, ``IDENTITY`` or
``PATCHES``), with the epilogue stages ``Affine``, ``RPReLU``, ``Add`` (``IDENTITY``,
``TILE`` and ``UPSAMPLE`` operands, ``STREAM`` or ``WIDE``), ``Threshold`` (``BITS`` / ``BITS_T``), ``GroupAverage``
and ``Store`` (``STREAM`` / ``WIDE``), element by element: for each output token ``t``, for
each channel ``c``: the source (the window's taps and multiply-round-shift, the popcounts
over 16-bit words of two bit rows, or the MAC's products), then every stage in order. A
``MASK`` runs per head and query row: the exp-table sum over the keys, then the compares.
Anything else (an unknown opcode, the ``PATCHES`` operand pattern of ``Add``) stops the core
with ``error`` and ``error_pc`` naming the instruction — never a silent wrong result.

It is a sequential datapath: one memory access per cycle, no overlap between the units, so
it is correct but 35-60 times slower than the cycle model (``docs/engine-rtl.md`` has the
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
    INSTRUCTIONS, STAGES, Add, Affine, GroupAverage, Mac, Mask, MatMul, MatMulMode, Pattern,
    RPReLU, Store, TensorKind, Threshold, Window, WindowMode)
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
        n_out = Signal(16)
        with m.Switch(opcode):
            with m.Case(MatMul.OPCODE):
                m.d.comb += n_out.eq(Mux(mf("mode") == MatMulMode.CONTEXT, mf("weights.cols"),
                                         mf("weights.rows")))
            with m.Case(Mac.OPCODE):
                m.d.comb += n_out.eq(record_field(Mac, header, "outputs"))
            with m.Default():
                m.d.comb += n_out.eq(cols)                  # a window keeps the channels

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

        # ---- bit-dot unit: XNOR matmul, context matmul, attention scores -------------------
        # One 16-bit word of a row segment per step; both operands are read as two words and
        # funnel-shifted, so no row needs to be word-aligned (a PATCHES row is f·f source rows
        # side by side; a head is a channel range of q and k). Step (i, j, word) of a
        # PATCHES source reads source token (pi·f + i, pj·f + j).
        def kf(path):
            return record_field(Mask, header, path)

        def cf(path):
            return record_field(Mac, header, path)
        is_mac = opcode == Mac.OPCODE
        is_mask = opcode == Mask.OPCODE
        is_context = is_matmul & (mf("mode") == MatMulMode.CONTEXT)

        def sf_access(path):       # the source Access of a MATMUL or a MAC
            return Mux(is_mac, cf("source." + path), mf("source." + path))
        m_src = sf_access("tensor.address")
        m_kind = sf_access("tensor.kind")
        m_rows, m_cols = sf_access("tensor.rows"), sf_access("tensor.cols")
        m_patches = sf_access("pattern") == Pattern.PATCHES
        m_f = Mux(m_patches, sf_access("factor"), 1)
        m_gw = sf_access("grid_w")
        m_heads = mf("heads")
        m_k = mf("weights.cols")
        row_words = (m_cols + 15) >> 4
        p_i, p_j, p_word = Signal(8), Signal(8), Signal(12)
        pi_base, pj_base = Signal(16), Signal(16)          # patch origin on the source grid
        src_token = Mux(m_patches, (pi_base + p_i) * m_gw + pj_base + p_j, t)
        context_tokens = m_rows // m_heads
        context_head = c // (m_k // m_heads)
        tokens = Mux(is_context, context_tokens,
                     Mux(m_patches, m_rows // (m_f * m_f), m_rows))

        head, key, mask_pass = Signal(8), Signal(16), Signal()
        q_cols = kf("queries.cols")
        head_bits = q_cols // kf("heads")
        k_rows = kf("keys.rows")

        a_row, a_bit, b_row, b_bit, segment = (Signal(32, name=n) for n in
                                               ("a_row", "a_bit", "b_row", "b_bit", "segment"))
        with m.If(is_mask):
            m.d.comb += [a_row.eq(kf("queries.address") + t * ((q_cols + 15) >> 4)),
                         b_row.eq(kf("keys.address") + key * ((kf("keys.cols") + 15) >> 4)),
                         a_bit.eq(head * head_bits + (p_word << 4)),
                         b_bit.eq(head * head_bits + (p_word << 4)),
                         segment.eq(head_bits)]
        with m.Elif(is_context):
            m.d.comb += [a_row.eq(m_src + (context_head * context_tokens + t) * row_words),
                         b_row.eq(mf("weights.address") + c * ((mf("weights.rows") + 15) >> 4)),
                         a_bit.eq(p_word << 4), b_bit.eq(p_word << 4), segment.eq(m_cols)]
        with m.Else():
            m.d.comb += [a_row.eq(m_src + src_token * row_words),
                         b_row.eq(mf("weights.address") + c * ((m_k + 15) >> 4)),
                         a_bit.eq(p_word << 4),
                         b_bit.eq((p_i * m_f + p_j) * m_cols + (p_word << 4)),
                         segment.eq(m_cols)]
        a_low, a_high, b_low = Signal(16), Signal(16), Signal(16)
        a_bits = (Cat(a_low, a_high) >> a_bit[0:4])[0:16]
        b_bits = (Cat(b_low, rdata) >> b_bit[0:4])[0:16]
        remaining = segment - (p_word << 4)
        valid = Mux(remaining >= 16, 0xFFFF, (Const(1, 17) << remaining[0:5]) - 1)[0:16]
        matches, _ = xnor_popcount(m, a_bits & valid, b_bits | ~valid, style="counter4",
                                   name="array")
        ones, _ = xnor_popcount(m, b_bits & valid, Const(0xFFFF, 16), style="counter4",
                                name="ones")
        match_count, one_count = Signal(24), Signal(24)
        exp_sum = Signal(48)
        exp_value = Signal(32)
        low_word = Signal(16)

        # ---- MAC unit: one product per step ------------------------------------------------
        mac_wide = m_kind == TensorKind.WIDE
        mac_x_element = Signal(32)
        m.d.comb += mac_x_element.eq(src_token * m_cols + p_word)
        mac_x_address = m_src + Mux(mac_wide, mac_x_element << 1, mac_x_element)
        mac_weight_address = cf("weights") + c * (m_cols * m_f * m_f) \
            + (p_i * m_f + p_j) * m_cols + p_word
        mac_x = Signal(signed(32))
        mac_sum = round_shift_saturate(m, acc + Cat(low_word, rdata).as_signed(), cf("shift"),
                                       cf("width"), "mac")

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
        add_f, add_gw = sf(Add, "operand.factor"), sf(Add, "operand.grid_w")
        add_token = Mux(add_pattern == Pattern.UPSAMPLE,
                        (t // (add_gw * add_f)) // add_f * add_gw + (t % (add_gw * add_f)) // add_f,
                        t)
        m.d.comb += add_element.eq(add_token * add_cols + add_channel)
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
                with m.Elif(is_matmul & (mf("source.tensor.kind") == TensorKind.BITS)
                            & ((mf("source.pattern") == Pattern.IDENTITY)
                               | (m_patches & (mf("mode") == MatMulMode.XNOR)))):
                    m.next = "DOT"
                with m.Elif(is_mask):
                    m.d.sync += [head.eq(0), key.eq(0), mask_pass.eq(0), exp_sum.eq(0)]
                    m.next = "DOT"
                with m.Elif(is_mac & ((m_kind == TensorKind.STREAM) | mac_wide)
                            & ((sf_access("pattern") == Pattern.IDENTITY) | m_patches)):
                    m.next = "MAC"
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
                m.d.sync += [match_count.eq(0), one_count.eq(0), p_i.eq(0), p_j.eq(0),
                             p_word.eq(0)]
                m.next = "DOT_A_LOW"
            with m.State("DOT_A_LOW"):
                m.d.comb += self.busy.eq(1)
                read(a_row + (a_bit >> 4))
                m.next = "DOT_A_HIGH"
            with m.State("DOT_A_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += a_low.eq(rdata)
                read(a_row + (a_bit >> 4) + 1)
                m.next = "DOT_B_LOW"
            with m.State("DOT_B_LOW"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += a_high.eq(rdata)
                read(b_row + (b_bit >> 4))
                m.next = "DOT_B_HIGH"
            with m.State("DOT_B_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += b_low.eq(rdata)
                read(b_row + (b_bit >> 4) + 1)
                m.next = "DOT_COUNT"
            with m.State("DOT_COUNT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [match_count.eq(match_count + matches), one_count.eq(one_count + ones)]
                m.next = "DOT_A_LOW"
                with m.If(p_word + 1 < ((segment + 15) >> 4)):
                    m.d.sync += p_word.eq(p_word + 1)
                with m.Else():
                    m.d.sync += p_word.eq(0)
                    with m.If(~is_mask & ~is_context & (p_j + 1 < m_f)):
                        m.d.sync += p_j.eq(p_j + 1)
                    with m.Elif(~is_mask & ~is_context & (p_i + 1 < m_f)):
                        m.d.sync += [p_i.eq(p_i + 1), p_j.eq(0)]
                    with m.Else():
                        m.next = "DOT_DONE"
            with m.State("DOT_DONE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [value.eq(Mux(is_context, match_count + one_count - m_cols,
                                          (match_count << 1) - m_k)),
                             stage_index.eq(0), stage_ptr.eq(record_words(MatMul))]
                m.next = "STAGE"
                with m.If(is_mask):
                    m.next = "MASK_LUT_LOW"
            # -- mask: e = lut[(s + d) / 2] = lut[matches]; pass 0 sums a row, pass 1 compares --
            with m.State("MASK_LUT_LOW"):
                m.d.comb += self.busy.eq(1)
                read(kf("lut") + (match_count << 1))
                m.next = "MASK_LUT_HIGH"
            with m.State("MASK_LUT_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += low_word.eq(rdata)
                read(kf("lut") + (match_count << 1) + 1)
                m.next = "MASK_EXP"
            with m.State("MASK_EXP"):
                m.d.comb += self.busy.eq(1)
                e = Cat(low_word, rdata)
                with m.If(mask_pass == 0):
                    m.d.sync += exp_sum.eq(exp_sum + e)
                    m.next = "MASK_NEXT"
                with m.Else():
                    row = head * kf("queries.rows") + t
                    m.d.sync += [
                        bit_word_address.eq(kf("out.address") + row * ((k_rows + 15) >> 4)
                                            + (key >> 4)),
                        bit_index.eq(key[0:4]),
                        bit_value.eq((e << kf("theta_shift")) > kf("theta") * exp_sum)]
                    m.next = "BIT_READ"
            with m.State("MASK_NEXT"):
                m.d.comb += self.busy.eq(1)
                m.next = "DOT"
                with m.If(key + 1 < k_rows):
                    m.d.sync += key.eq(key + 1)
                with m.Elif(mask_pass == 0):
                    m.d.sync += [key.eq(0), mask_pass.eq(1)]
                with m.Else():
                    m.d.sync += [key.eq(0), mask_pass.eq(0), exp_sum.eq(0)]
                    with m.If(t + 1 < kf("queries.rows")):
                        m.d.sync += t.eq(t + 1)
                    with m.Elif(head + 1 < kf("heads")):
                        m.d.sync += [t.eq(0), head.eq(head + 1)]
                    with m.Else():
                        m.d.sync += self.instructions.eq(self.instructions + 1)
                        m.next = "FETCH_LOW"
            # -- mac: Σ x·w over the (patch) row, then the bias and the round-shift --
            with m.State("MAC"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [acc.eq(0), p_i.eq(0), p_j.eq(0), p_word.eq(0)]
                m.next = "MAC_X_LOW"
            with m.State("MAC_X_LOW"):
                m.d.comb += self.busy.eq(1)
                read(mac_x_address)
                m.next = "MAC_X_HIGH"
            with m.State("MAC_X_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += mac_x.eq(rdata.as_signed())
                with m.If(mac_wide):
                    m.d.sync += low_word.eq(rdata)
                    read(mac_x_address + 1)
                    m.next = "MAC_X_WIDE"
                with m.Else():
                    read(mac_weight_address)
                    m.next = "MAC_PRODUCT"
            with m.State("MAC_X_WIDE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += mac_x.eq(Cat(low_word, rdata).as_signed())
                read(mac_weight_address)
                m.next = "MAC_PRODUCT"
            with m.State("MAC_PRODUCT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += acc.eq(acc + mac_x * rdata.as_signed())
                m.next = "MAC_X_LOW"
                with m.If(p_word + 1 < m_cols):
                    m.d.sync += p_word.eq(p_word + 1)
                with m.Else():
                    m.d.sync += p_word.eq(0)
                    with m.If(p_j + 1 < m_f):
                        m.d.sync += p_j.eq(p_j + 1)
                    with m.Elif(p_i + 1 < m_f):
                        m.d.sync += [p_i.eq(p_i + 1), p_j.eq(0)]
                    with m.Else():
                        m.next = "MAC_BIAS_LOW"
            with m.State("MAC_BIAS_LOW"):
                m.d.comb += self.busy.eq(1)
                read(cf("bias") + (c << 1))
                m.next = "MAC_BIAS_HIGH"
            with m.State("MAC_BIAS_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += low_word.eq(rdata)
                read(cf("bias") + (c << 1) + 1)
                m.next = "MAC_DONE"
            with m.State("MAC_DONE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [value.eq(mac_sum), stage_index.eq(0),
                             stage_ptr.eq(record_words(Mac))]
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
                        with m.If(add_pattern == Pattern.PATCHES):
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
                with m.If(is_mask):
                    m.next = "MASK_NEXT"
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
                    with m.If(is_mac):
                        m.next = "MAC"
                with m.Elif(is_matmul | is_mac):
                    m.d.sync += [c.eq(0), t.eq(t + 1)]
                    with m.If(pj_base + m_f < m_gw):
                        m.d.sync += pj_base.eq(pj_base + m_f)
                    with m.Else():
                        m.d.sync += [pj_base.eq(0), pi_base.eq(pi_base + m_f)]
                    with m.If(t + 1 == tokens):
                        m.d.sync += self.instructions.eq(self.instructions + 1)
                        m.next = "FETCH_LOW"
                    with m.Elif(is_mac):
                        m.next = "MAC"
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


__all__ = ["EngineCore", "round_shift_saturate"]
