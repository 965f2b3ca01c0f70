"""The engine core: sequencer, window, bit-dot, mask, MAC and epilogue units on one memory port,
sized for the iCE40UP5K (no multiplier or divider in any address, one shared multiplier).

The sequencer fetches the program from memory (each 32-bit instruction word as two 16-bit
words, low half first, from the halfword address ``pc``), loads the instruction record's
fields into registers and writes each stage record into its row of the stage-record memory
(block RAM, ``MAX_STAGES`` × 32·5 bits, the record's words side by side), and decodes the
fields through :mod:`~binaryvit.hw.engine.rtl.fields` (the encoding's field
tables). It dispatches on the opcode; a ``HALT`` word ends the program (``done``).

This core executes every instruction class: ``WINDOW`` (``SUM``, ``AVERAGE``, ``GLOBAL``;
``STREAM`` source), ``MATMUL`` (``XNOR`` through ``IDENTITY`` or ``PATCHES``, and
``CONTEXT``), ``MASK`` and ``MAC`` (``STREAM`` or ``WIDE`` source, ``IDENTITY`` or
``PATCHES``), with the epilogue stages ``Affine``, ``RPReLU``, ``Add`` (``IDENTITY``,
``TILE`` and ``UPSAMPLE`` operands, ``STREAM`` or ``WIDE``), ``Threshold`` (``BITS`` /
``BITS_T``), ``GroupAverage`` and ``Store`` (``STREAM`` / ``WIDE``), element by element: for
each output token ``t``, for each channel ``c``: the source (the window's taps, the popcounts
over 16-bit words of two bit rows, or the MAC's products), then every stage in order. A
``MASK`` runs per head and query row: the exp-table sum over the keys, one ``θ·Σ`` multiply,
then the compares. Anything else (an unknown opcode, the ``PATCHES`` operand pattern of
``Add``) stops the core with ``error`` and ``error_pc`` naming the instruction — never a
silent wrong result.

Resources (the UP5K has 5,280 logic cells and 8 ``SB_MAC16``):

- Addresses are running pointers and wrap counters stepped with the loops (a window's tap,
  row and origin pointers; a patch walk's token, row and line pointers; per epilogue stage a
  state word in block RAM: an ``Add`` operand's token pointer, tile and upsample counters, a
  ``Threshold`` / ``Store`` / ``GroupAverage`` output pointer). The products, quotients and
  word counts of instruction fields they step by and end at (``grid_w·cols``,
  ``stride·cols``, ``factor·pitch``, a context's tokens per head, a mask's bits per head, a
  window's last origin, the output tokens, words per row) are the instruction's derived
  fields (``docs/engine.md``): the compiler computes them, the core reads them.
- One multiplier, ``(accumulator_bits + 1)``-bit signed × 18-bit signed, registered on both
  sides without reset so ``synth_ice40 -dsp`` packs it into ``SB_MAC16`` (five), followed by
  one shared ``saturate(round_shift(product + addend, shift), width)``
  (:class:`~binaryvit.hw.engine.rtl.round_shift.RoundShiftSaturate`, one shift bit per
  cycle). Every multiply goes through it: window scale, MAC products and bias, the mask's
  ``θ·Σ``, ``Affine``, ``RPReLU``, ``Add`` (``× 1``) and ``GroupAverage``: ``MULTIPLY``,
  ``ROUND``, then ``FINISH`` (``shift + 1`` cycles), which continues by a return code.
- The datapath is ``accumulator_bits`` wide (36 on the UP5K): the overflow proof the
  compiler demands (``prove_no_overflow`` at that width) bounds every product and sum.

It is a sequential datapath: one memory access per cycle, no overlap between the units
(``docs/engine-rtl.md`` has the cycle figures).

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
    STAGES, Add, Affine, GroupAverage, Mac, Mask, MatMul, MatMulMode, Pattern,
    RPReLU, Store, TensorKind, Threshold, Window, WindowMode)
from binaryvit.hw.engine.rtl.round_shift import RoundShiftSaturate
from binaryvit.hw.engine.rtl.fields import (
    HEADER_SLOTS, STAGE_SLOTS, load_slots, record_field, record_slots, slot_field,
    slot_registers)
from binaryvit.hw.kernels.popcount import xnor_popcount

MAX_STAGES = 16        # the header's 4-bit stage count
MUL_B_BITS = 18        # the widest multiplier constant field (a window's or group's mul)

# FINISH's return codes: where the multiplier's result goes
RET_SOURCE, RET_MAC, RET_THETA, RET_VALUE, RET_GROUP = range(5)
RET_WAIT = 7           # FINISH while the round-shift still shifts: stay


class EngineCore(wiring.Component):
    def __init__(self, config: EngineConfig):
        if config.wide_words != 2:
            raise ConfigError(f"engine config {config.name!r}: the RTL supports wide_words=2, "
                              f"got {config.wide_words}")
        self.config = config
        self.address_bits = max(1, (config.total_words - 1).bit_length())
        self.value_bits = config.accumulator_bits
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
        vb = self.value_bits
        sb = vb + 2                     # product + addend before the round-shift
        rdata = self.mem_read_data

        # One incrementer after the address multiplexer serves every second word of a pair
        # (``address + 1``), so no unit carries its own.
        addr_base = Signal(a)
        addr_next = Signal()

        def read(address, second=0):
            m.d.comb += [addr_base.eq(address), addr_next.eq(second), self.mem_read.eq(1)]

        def write(address, data, second=0):
            m.d.comb += [addr_base.eq(address), addr_next.eq(second), self.mem_write.eq(1),
                         self.mem_write_data.eq(data)]
        m.d.comb += self.mem_addr.eq(addr_base + addr_next)

        def ptr(name):
            return Signal(a, name=name)

        # ---- sequencer state ------------------------------------------------------------
        pc = Signal(a)
        instr_pc = Signal(a)
        low = Signal(16)
        word_index = Signal(8)
        length = Signal(8)
        head0 = Signal(16)          # the header word's opcode, length and stage count
        # The stage records, one row per stage with its words side by side (block RAM,
        # MAX_STAGES × 32·stage_words), written word by word as the instruction is fetched
        # and read by the stage that runs: its fields are slices of the row (no registers).
        sw = self.stage_words
        m.submodules.stage_records = records = Memory(shape=32 * sw, depth=MAX_STAGES, init=[])
        record_w = records.write_port(granularity=32)
        record_r = records.read_port()
        fetch_stage = Signal(4)                  # the stage record a fetched word belongs to,
        fetch_stage_word = Signal(range(sw))     # its word in that record,
        fetch_stage_len = Signal(4)              # that record's length (from its word 0)
        header_words = Signal(8)                 # the instruction record's words
        opcode = head0[0:4]
        stage_count = head0[12:16]
        is_window = opcode == Window.OPCODE
        is_matmul = opcode == MatMul.OPCODE
        is_mac = opcode == Mac.OPCODE
        is_mask = opcode == Mask.OPCODE
        slots = slot_registers(HEADER_SLOTS, a, "header")

        def wf(path):
            return slot_field(slots, HEADER_SLOTS, Window, path)

        def mf(path):
            return slot_field(slots, HEADER_SLOTS, MatMul, path)

        def kf(path):
            return slot_field(slots, HEADER_SLOTS, Mask, path)

        def cf(path):
            return slot_field(slots, HEADER_SLOTS, Mac, path)

        # the derived fields' slots, shared by the part they play (fields.HEADER_SLOTS)
        row_step, origin_step, line_step = slots["row_step"], slots["origin_step"], \
            slots["line_step"]

        t = Signal(16)          # output token
        c = Signal(16)          # output channel
        first = (t == 0) & (c == 0)
        new_token = c == 0

        # ---- the shared multiplier: product <= mul_a · mul_b; FINISH rounds product + addend -
        mul_a = Signal(signed(vb + 1), reset_less=True)
        mul_b = Signal(signed(MUL_B_BITS), reset_less=True)
        product = Signal(signed(sb), reset_less=True)
        addend = Signal(signed(sb))
        fin_shift = Signal(6)
        fin_width = Signal(6)
        fin_round = Signal()
        ret = Signal(3)
        m.submodules.round_shift = rounder = RoundShiftSaturate(sb)
        m.d.comb += [rounder.value.eq((product + addend)[:sb]), rounder.shift.eq(fin_shift),
                     rounder.width.eq(fin_width), rounder.rounding.eq(fin_round)]
        result = rounder.result

        def multiply(x, y, add, shift, width, code, rounding=1):
            """``y`` or ``add`` None: the operand was loaded while the constants were
            gathered."""
            m.d.sync += [mul_a.eq(x), fin_shift.eq(shift), fin_width.eq(width),
                         fin_round.eq(rounding), ret.eq(code)]
            if y is not None:
                m.d.sync += mul_b.eq(y)
            if add is not None:
                m.d.sync += addend.eq(add)
            m.next = "MULTIPLY"

        # ---- window unit ------------------------------------------------------------------
        mode = wf("mode")
        is_global = mode == WindowMode.GLOBAL
        src = wf("source.address")
        cols = wf("source.cols")
        kh = wf("taps_h")                           # GLOBAL: the source's rows
        kw = Mux(is_global, 1, wf("kw"))
        n_out = slots["channels"]                  # a window keeps the channels

        y_base = Signal(16)     # the window's top-left tap on the padded grid
        x_base = Signal(16)
        ki = Signal(16)
        kj = Signal(4)                              # kw is a 4-bit field (GLOBAL: 1)
        tap_valid = Signal()
        # the source's accumulator is the element's value register: a value is produced from
        # it (RET_SOURCE) and every stage has finished with it before the next element clears it
        acc = value = Signal(signed(vb), name="value")
        y = Signal(signed(18))
        x = Signal(signed(18))
        # a GLOBAL window's grid fields mean nothing (its taps are all the source's rows): its
        # taps are all inside and its one output token ends the instruction
        m.d.comb += [y.eq(y_base + ki - wf("pad_h")), x.eq(x_base + kj - wf("pad_w"))]
        inside = is_global | ((y >= 0) & (y < wf("grid_h")) & (x >= 0) & (x < wf("grid_w")))
        # window pointers step by row_step (a grid row), origin_step (stride·cols) and
        # line_step (stride grid rows) and start pad_offset words before the source

        # ---- bit-dot unit: XNOR matmul, context matmul, attention scores -------------------
        # One 16-bit word of a row segment per step; both operands are read as two words and
        # funnel-shifted, so no row needs to be word-aligned (a PATCHES row is f·f source rows
        # side by side; a head is a channel range of q and k).
        is_context = is_matmul & (mf("mode") == MatMulMode.CONTEXT)

        def sf_access(path):       # the source Access of a MATMUL or a MAC
            return Mux(is_mac, cf("source." + path), mf("source." + path))
        m_src = sf_access("tensor.address")
        m_kind = sf_access("tensor.kind")
        m_cols = sf_access("tensor.cols")
        m_patches = sf_access("pattern") == Pattern.PATCHES
        m_f = Mux(m_patches, sf_access("factor"), 1)
        m_heads = mf("heads")
        mac_wide = m_kind == TensorKind.WIDE
        # a source token's words (a bit row, or cols values), a weight row's words
        pitch, w_row_words = slots["pitch"], mf("w_pitch")
        # patch walk: origin_step = f·pitch (IDENTITY: pitch), row_step = grid_w·pitch,
        # line_step = f·grid_w·pitch, offset = a context head's tokens · pitch
        p_i, p_j, p_word = Signal(8), Signal(8), Signal(12)
        patch_column = Signal(16)                # counts to row_patches (never 0: IDENTITY)
        patch_line, patch_origin, patch_row = ptr("patch_line"), ptr("patch_origin"), \
            ptr("patch_row")
        a_ptr, b_ptr, b_row = ptr("a_ptr"), ptr("b_ptr"), ptr("b_row")
        # the units never run together, so they share registers: the window's pointers
        win_line, win_origin, tap_row, tap_ptr = patch_line, patch_origin, patch_row, a_ptr
        a_bit_base, b_bit_base = Signal(16), Signal(16)
        head_offset = ptr("head_offset")         # context: head · tokens per head · pitch
        head_phase = Signal(16)                  # context: c·heads mod N (the head counter)
        head_bit_base = head_phase               # mask: head · bits per head

        head, key, mask_pass = Signal(8), Signal(16), Signal()
        q_ptr, k_ptr, out_row_ptr = patch_origin, b_row, patch_line      # mask: shared
        head_bits = kf("head_bits")              # mask: q's bits per head
        k_rows = kf("keys.rows")
        segment = Mux(is_mask, head_bits, m_cols)

        a_low, a_high, b_low = Signal(16), Signal(16), Signal(16)
        a_bits = (Cat(a_low, a_high) >> a_bit_base[0:4])[0:16]
        b_bits = (Cat(b_low, rdata) >> b_bit_base[0:4])[0:16]
        # a bit row's word, or a MAC source value's first word: one address source, one adder
        a_word = a_ptr + Mux(is_mac, Mux(mac_wide, p_word << 1, p_word), a_bit_base[4:] + p_word)
        b_word = b_ptr + b_bit_base[4:] + p_word
        last_word = p_word == (segment - 1)[4:]
        valid = Mux(~last_word | (segment[0:4] == 0), 0xFFFF,
                    (Const(1, 17) << segment[0:4]) - 1)[0:16]
        matches, _ = xnor_popcount(m, a_bits & valid, b_bits | ~valid, style="counter4",
                                   name="array")
        ones, _ = xnor_popcount(m, b_bits & valid, Const(0xFFFF, 16), style="counter4",
                                name="ones")
        match_count, one_count = Signal(16), Signal(16)
        low_word = Signal(16)

        # ---- MAC unit: one product per step ------------------------------------------------
        w_ptr = ptr("w_ptr")
        mac_x = Signal(signed(32))

        # ---- epilogue unit ------------------------------------------------------------------
        stage_index = Signal(4)
        # the running stage's record, valid from STAGE_STEP on (read while in STAGE)
        m.d.comb += record_r.addr.eq(stage_index)
        stage_op = record_r.data[0:4]
        stage_slots = record_slots(m, STAGE_SLOTS, record_r.data, stage_op, a, "stage")
        # the first two gathered words (a wide threshold or pre-shift, an Affine mul, an Add
        # operand); later ones go straight to the multiplier's operands or the flip bit
        gathered = [Signal(16, name=f"gathered{i}") for i in range(2)]
        flip = Signal()
        gather_index = Signal(3)

        def sf(cls, path):
            return slot_field(stage_slots, STAGE_SLOTS, cls, path)
        params = sf(Affine, "params")      # Affine, RPReLU and Threshold share the place

        # Per-stage state (a block RAM word per stage, read when the stage loads, written when
        # it ends): two pointers and four counters, stepped per element (t, c).
        state_layout = [("p0", a), ("p1", a), ("k0", 16), ("k1", 16), ("k2", 8), ("k3", 8)]
        state_bits = sum(w for _, w in state_layout)
        m.submodules.stage_state = state_mem = Memory(shape=state_bits, depth=MAX_STAGES,
                                                      init=[])
        state_r = state_mem.read_port()
        state_w = state_mem.write_port()
        loaded, current = {}, {}
        offset = 0
        for name, width in state_layout:
            loaded[name] = state_r.data[offset:offset + width]
            current[name] = Signal(width, name=f"state_{name}")
            offset += width
        m.d.comb += [state_r.addr.eq(stage_index), state_w.addr.eq(stage_index),
                     state_w.data.eq(Cat(*(current[n] for n, _ in state_layout)))]
        p0, p1, k0, k1, k2, k3 = (current[n] for n, _ in state_layout)
        old = loaded
        old_p0 = old["p0"]

        add_kind = sf(Add, "operand.tensor.kind")
        add_cols = sf(Add, "operand.tensor.cols")
        add_pattern = sf(Add, "operand.pattern")
        add_wide = add_kind == TensorKind.WIDE
        add_f, add_gw = sf(Add, "operand.factor"), sf(Add, "operand.grid_w")
        # p0's step (derived): an Add operand token's or a Threshold row's words, a stored
        # value's words (Store, GroupAverage)
        p0_step = stage_slots["step"]
        # Add: p0 the operand token's first word, p1 its source row's (UPSAMPLE), k0 the tiled
        # channel, k1 the source column, k2 / k3 the repeat counters along a row / column

        out_kind = sf(Threshold, "out.kind")
        # Threshold: p0 the token's bit row (BITS), p1 the channel's bit row word (BITS_T)
        bit_address = Mux(out_kind == TensorKind.BITS_T, p1, p0 + (c >> 4))
        bit_position = Mux(out_kind == TensorKind.BITS_T, t[0:4], c[0:4])
        bit_word_address = ptr("bit_word_address")
        bit_index = Signal(4)
        bit_value = Signal()

        store_kind = sf(Store, "out.kind")
        group = sf(GroupAverage, "group")
        group_kind = sf(GroupAverage, "out.kind")
        group_sum = Signal(signed(vb))
        exp_sum = value                          # mask: the row's exp sum, and
        theta_limit = group_sum                  # floor(θ·Σ / 2^θs): e > it ⟺ e·2^θs > θ·Σ
        group_last = k0 + 1 == group                  # k0: c mod group
        store_value = Signal(signed(vb))
        store_wide = Signal()
        store_address = ptr("store_address")

        # A stage's per-channel constants (docs/engine.md, "Memory"): word
        # base + (c, 2c or c div 16) + lsb, the base params or one of the stage's derived
        # array addresses (params + k·N); an Add operand's one or two words at p0 + channel
        # (wide: 2·channel + lsb).
        gather_count = Signal(3)
        gather_from_record = Signal()        # the base is an array address of the record
        record_base = Signal(a)
        gather_c = Signal(2)                 # 0: c, 1: 2c + lsb, 2: c div 16
        gather_lsb = Signal()

        def gather(count, cls, table):
            """``table``: per gathered word (the derived array address or None for
            ``params``, c term, lsb)."""
            m.d.comb += gather_count.eq(count)
            with m.Switch(gather_index):
                for i, (path, cterm, lsb) in enumerate(table):
                    with m.Case(i):
                        m.d.comb += [gather_from_record.eq(path is not None),
                                     gather_c.eq(cterm), gather_lsb.eq(lsb)]
                        if path is not None:
                            m.d.comb += record_base.eq(record_field(record_r.data, cls, path))
        with m.Switch(stage_op):
            with m.Case(Affine.OPCODE):        # mul[c], bias[c] (wide)
                gather(3, Affine, [(None, 0, 0), ("bias", 1, 0), ("bias", 1, 1)])
            with m.Case(RPReLU.OPCODE):        # pre[c] (wide), pos[c], neg[c], post[c] (wide)
                gather(6, RPReLU, [(None, 1, 0), (None, 1, 1), ("mul_pos", 0, 0),
                                   ("mul_neg", 0, 0), ("post_bias", 1, 0), ("post_bias", 1, 1)])
            with m.Case(Add.OPCODE):           # operand[channel] (wide: 2·channel + lsb)
                m.d.comb += [gather_count.eq(Mux(add_wide, 2, 1)), gather_c.eq(add_wide),
                             gather_lsb.eq(gather_index[0])]
            with m.Case(GroupAverage.OPCODE):
                m.d.comb += gather_count.eq(0)
            with m.Case(Threshold.OPCODE):     # threshold[c] (wide), flip bits[c div 16]
                gather(3, Threshold, [(None, 1, 0), (None, 1, 1), ("flip", 2, 0)])
        # an Add's operand words through the same adder: from p0, its channel (tiled: k0)
        is_add = stage_op == Add.OPCODE
        channel = Mux(is_add & (add_pattern == Pattern.TILE), k0, c)
        c_term = Array([channel, Cat(gather_lsb, channel), c >> 4, c])[gather_c]
        gather_base = Mux(gather_from_record, record_base, Mux(is_add, p0, params))
        gather_address = gather_base + c_term
        g = gathered
        constant = g[0].as_signed()
        wide01 = Cat(g[0], g[1]).as_signed()
        # One adder for the stages (never two in one): an RPReLU's value + pre, a
        # GroupAverage's running group sum, and a Threshold's value − threshold − 1 (value +
        # ~threshold), which is −1 when they are equal and at least −1 when value >= threshold.
        stage_sum = Signal(signed(vb + 1))
        is_threshold = stage_op == Threshold.OPCODE
        m.d.comb += stage_sum.eq(value + Mux(
            stage_op == GroupAverage.OPCODE, Mux(k0 == 0, 0, group_sum),
            wide01 ^ is_threshold.replicate(len(wide01)).as_signed()))
        rp_t = group_total = stage_sum
        equal = stage_sum == -1
        at_least = ~stage_sum[-1] | equal
        threshold_bit = Mux(flip, ~at_least | equal, at_least)

        query_row_words = kf("query_pitch")
        key_row_words = kf("key_pitch")
        mask_row_words = kf("out_pitch")
        # a mask's exp-table entry or a MAC's bias (one slot): one address source, one adder
        aux_address = kf("lut") + (Mux(is_mask, match_count, c) << 1)

        def step_stage_state():
            """The stage's state for element (t, c), from the state it ended the last with:
            ``p0`` steps by one token (Add, Threshold ``BITS``) or element (Store) or is
            reloaded from ``p1`` (an UPSAMPLE row repeated); ``k0`` counts channels modulo the
            tile or the group; ``p1``, ``k1`` to ``k3`` walk an UPSAMPLE grid, or ``p1`` a
            ``BITS_T`` column."""
            is_store = stage_op == Store.OPCODE
            upsample = is_add & (add_pattern == Pattern.UPSAMPLE)
            start = Mux(is_store, sf(Store, "out.address"),
                        Mux(stage_op == GroupAverage.OPCODE, sf(GroupAverage, "out.address"),
                            Mux(is_add, sf(Add, "operand.tensor.address"),
                                sf(Threshold, "out.address"))))
            p0_next = old_p0 + p0_step
            repeat = old["k2"] + 1 != add_f               # the same source token again
            column = old["k1"] + 1 != add_gw              # the next source token in the row
            row_again = old["k3"] + 1 != add_f            # the same source row again
            for name, _ in state_layout:
                m.d.sync += current[name].eq(old[name])
            with m.If(first):
                m.d.sync += [p0.eq(start), p1.eq(start)]
            with m.Elif(is_store | ((is_add | is_threshold) & new_token & ~upsample)):
                m.d.sync += p0.eq(p0_next)
            with m.Elif(upsample & new_token & ~repeat):
                with m.If(column):
                    m.d.sync += p0.eq(p0_next)
                with m.Elif(row_again):
                    m.d.sync += p0.eq(old["p1"])
                with m.Else():
                    m.d.sync += [p0.eq(p0_next), p1.eq(p0_next)]
            with m.If(is_threshold):                      # BITS_T: the channel's bit row
                with m.If(new_token):
                    m.d.sync += p1.eq(start + (t >> 4))
                with m.Else():
                    m.d.sync += p1.eq(old["p1"] + p0_step)
            k0_limit = Mux(is_add, add_cols, group)
            with m.If(new_token | (old["k0"] + 1 == k0_limit)):
                m.d.sync += k0.eq(0)
            with m.Else():
                m.d.sync += k0.eq(old["k0"] + 1)
            with m.If(first):
                m.d.sync += [k1.eq(0), k2.eq(0), k3.eq(0)]
            with m.Elif(upsample & new_token):
                m.d.sync += k2.eq(Mux(repeat, old["k2"] + 1, 0))
                with m.If(~repeat):
                    m.d.sync += k1.eq(Mux(column, old["k1"] + 1, 0))
                    with m.If(~column):
                        m.d.sync += k3.eq(Mux(row_again, old["k3"] + 1, 0))

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
                read(pc, 1)
                m.d.sync += low.eq(rdata)
                m.next = "FETCH_STORE"
            with m.State("FETCH_STORE"):
                m.d.comb += self.busy.eq(1)
                word = Cat(low, rdata)
                # a stage record's word goes to its stage's row of the record memory
                m.d.comb += [record_w.addr.eq(fetch_stage), record_w.data.eq(word.replicate(sw))]
                with m.If((word_index != 0) & (word_index >= header_words)):
                    m.d.comb += record_w.en.eq(1 << fetch_stage_word)
                    stage_len = Mux(fetch_stage_word == 0, word[4:8], fetch_stage_len)
                    with m.If(fetch_stage_word == 0):
                        m.d.sync += fetch_stage_len.eq(word[4:8])
                    with m.If(fetch_stage_word + 1 == stage_len):
                        m.d.sync += [fetch_stage.eq(fetch_stage + 1), fetch_stage_word.eq(0)]
                    with m.Else():
                        m.d.sync += fetch_stage_word.eq(fetch_stage_word + 1)
                with m.If(word_index == 0):
                    m.d.sync += [head0.eq(word[0:16]), fetch_stage.eq(0), fetch_stage_word.eq(0)]
                    with m.Switch(word[0:4]):
                        for cls in (Window, MatMul, Mac, Mask):
                            with m.Case(cls.OPCODE):
                                m.d.sync += header_words.eq(record_words(cls))
                load_slots(m, slots, HEADER_SLOTS, word, word_index, opcode)
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
                m.d.sync += [t.eq(0), c.eq(0), y_base.eq(0), x_base.eq(0), patch_column.eq(0)]
                with m.If(is_window & (wf("source.kind") == TensorKind.STREAM)):
                    m.next = "INIT"
                with m.Elif(is_matmul & (mf("source.tensor.kind") == TensorKind.BITS)
                            & ((mf("source.pattern") == Pattern.IDENTITY)
                               | (m_patches & (mf("mode") == MatMulMode.XNOR)))):
                    m.next = "INIT"
                with m.Elif(is_mask):
                    m.next = "INIT"
                with m.Elif(is_mac & ((m_kind == TensorKind.STREAM) | mac_wide)
                            & ((sf_access("pattern") == Pattern.IDENTITY) | m_patches)):
                    m.next = "INIT"
                with m.Else():
                    fail()
            with m.State("INIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(is_window):
                    start = src - wf("pad_offset")
                    m.d.sync += [win_line.eq(start), win_origin.eq(start)]
                    m.next = "ELEMENT"
                with m.Elif(is_mask):
                    m.d.sync += [head.eq(0), key.eq(0), mask_pass.eq(0), exp_sum.eq(0),
                                 q_ptr.eq(kf("queries.address")), k_ptr.eq(kf("keys.address")),
                                 out_row_ptr.eq(kf("out.address")), head_bit_base.eq(0)]
                    m.next = "DOT"
                with m.Else():
                    m.d.sync += [patch_line.eq(m_src), patch_origin.eq(m_src),
                                 b_row.eq(mf("weights.address")), head_offset.eq(0),
                                 head_phase.eq(0), w_ptr.eq(cf("weights"))]
                    m.next = "DOT"
                    with m.If(is_mac):
                        m.next = "MAC"
            # -- window: the taps of element (t, c) --
            with m.State("ELEMENT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [acc.eq(0), ki.eq(0), kj.eq(0), tap_row.eq(win_origin + c),
                             tap_ptr.eq(win_origin + c)]
                m.next = "TAP"
            with m.State("TAP"):
                m.d.comb += self.busy.eq(1)
                with m.If(inside):
                    read(tap_ptr)
                m.d.sync += tap_valid.eq(inside)
                m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):
                m.d.comb += self.busy.eq(1)
                with m.If(tap_valid):
                    m.d.sync += acc.eq(acc + rdata.as_signed())
                with m.If(kj + 1 != kw):
                    m.d.sync += [kj.eq(kj + 1), tap_ptr.eq(tap_ptr + cols)]
                    m.next = "TAP"
                with m.Elif(ki + 1 != kh):
                    m.d.sync += [ki.eq(ki + 1), kj.eq(0), tap_row.eq(tap_row + row_step),
                                 tap_ptr.eq(tap_row + row_step)]
                    m.next = "TAP"
                with m.Else():
                    m.next = "SCALE"
            with m.State("SCALE"):
                m.d.comb += self.busy.eq(1)
                plain = mode == WindowMode.SUM
                multiply(acc, Mux(plain, 1, wf("mul")), 0, Mux(plain, 0, wf("shift")),
                         Mux(plain, 0, wf("width")), RET_SOURCE)
            # -- matmul and mask: the XNOR-popcount dot of element (t, c) --
            with m.State("DOT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [match_count.eq(0), one_count.eq(0), p_i.eq(0), p_j.eq(0),
                             p_word.eq(0)]
                with m.If(is_mask):
                    m.d.sync += [a_ptr.eq(q_ptr), b_ptr.eq(k_ptr), a_bit_base.eq(head_bit_base),
                                 b_bit_base.eq(head_bit_base)]
                with m.Else():
                    m.d.sync += [a_ptr.eq(patch_origin + Mux(is_context, head_offset, 0)),
                                 patch_row.eq(patch_origin), b_ptr.eq(b_row),
                                 a_bit_base.eq(0), b_bit_base.eq(0)]
                m.next = "DOT_A_LOW"
            with m.State("DOT_A_LOW"):
                m.d.comb += self.busy.eq(1)
                read(a_word)
                m.next = "DOT_A_HIGH"
            with m.State("DOT_A_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += a_low.eq(rdata)
                read(a_word, 1)
                m.next = "DOT_B_LOW"
            with m.State("DOT_B_LOW"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += a_high.eq(rdata)
                read(b_word)
                m.next = "DOT_B_HIGH"
            with m.State("DOT_B_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += b_low.eq(rdata)
                read(b_word, 1)
                m.next = "DOT_COUNT"
            with m.State("DOT_COUNT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [match_count.eq(match_count + matches), one_count.eq(one_count + ones)]
                m.next = "DOT_A_LOW"
                walk = ~is_mask & ~is_context
                with m.If(~last_word):
                    m.d.sync += p_word.eq(p_word + 1)
                with m.Else():
                    m.d.sync += p_word.eq(0)
                    with m.If(walk & (p_j + 1 != m_f)):
                        m.d.sync += [p_j.eq(p_j + 1), a_ptr.eq(a_ptr + pitch),
                                     b_bit_base.eq(b_bit_base + m_cols)]
                    with m.Elif(walk & (p_i + 1 != m_f)):
                        m.d.sync += [p_i.eq(p_i + 1), p_j.eq(0),
                                     patch_row.eq(patch_row + row_step),
                                     a_ptr.eq(patch_row + row_step),
                                     b_bit_base.eq(b_bit_base + m_cols)]
                    with m.Else():
                        m.next = "DOT_DONE"
            with m.State("DOT_DONE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += stage_index.eq(0)
                with m.If(is_mask):                  # value holds the row's exp sum
                    m.next = "MASK_LUT_LOW"
                with m.Else():
                    # XNOR: 2·matches − K; context: matches + ones − N (one adder for both)
                    m.d.sync += value.eq(match_count + Mux(is_context, one_count, match_count)
                                         - mf("dot_length"))
                    m.next = "STAGE"
            # -- mask: e = lut[(s + d) / 2] = lut[matches]; pass 0 sums a row, pass 1 compares --
            with m.State("MASK_LUT_LOW"):
                m.d.comb += self.busy.eq(1)
                read(aux_address)
                m.next = "MASK_LUT_HIGH"
            with m.State("MASK_LUT_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += low_word.eq(rdata)
                read(aux_address, 1)
                m.next = "MASK_EXP"
            with m.State("MASK_EXP"):
                m.d.comb += self.busy.eq(1)
                e = Cat(low_word, rdata)
                with m.If(mask_pass == 0):
                    m.d.sync += exp_sum.eq(exp_sum + e)
                    m.next = "MASK_NEXT"
                with m.Else():
                    m.d.sync += [bit_word_address.eq(out_row_ptr + (key >> 4)),
                                 bit_index.eq(key[0:4]), bit_value.eq(e > theta_limit)]
                    m.next = "BIT_READ"
            with m.State("MASK_NEXT"):
                m.d.comb += self.busy.eq(1)
                m.next = "DOT"
                with m.If(key + 1 != k_rows):
                    m.d.sync += [key.eq(key + 1), k_ptr.eq(k_ptr + key_row_words)]
                with m.Elif(mask_pass == 0):
                    m.d.sync += [key.eq(0), k_ptr.eq(kf("keys.address")), mask_pass.eq(1)]
                    m.next = "MASK_THETA"
                with m.Else():
                    m.d.sync += [key.eq(0), k_ptr.eq(kf("keys.address")), mask_pass.eq(0),
                                 exp_sum.eq(0), out_row_ptr.eq(out_row_ptr + mask_row_words)]
                    with m.If(t + 1 != kf("queries.rows")):
                        m.d.sync += [t.eq(t + 1), q_ptr.eq(q_ptr + query_row_words)]
                    with m.Elif(head + 1 != kf("heads")):
                        m.d.sync += [t.eq(0), head.eq(head + 1), q_ptr.eq(kf("queries.address")),
                                     head_bit_base.eq(head_bit_base + head_bits)]
                    with m.Else():
                        m.d.sync += self.instructions.eq(self.instructions + 1)
                        m.next = "FETCH_LOW"
            with m.State("MASK_THETA"):
                m.d.comb += self.busy.eq(1)
                multiply(exp_sum, kf("theta"), 0, kf("theta_shift"), 0, RET_THETA, rounding=0)
            # -- mac: Σ x·w over the (patch) row, then the bias and the round-shift --
            with m.State("MAC"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [acc.eq(0), p_i.eq(0), p_j.eq(0), p_word.eq(0),
                             a_ptr.eq(patch_origin), patch_row.eq(patch_origin)]
                m.next = "MAC_X_LOW"
            with m.State("MAC_X_LOW"):
                m.d.comb += self.busy.eq(1)
                read(a_word)
                m.next = "MAC_X_HIGH"
            with m.State("MAC_X_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += mac_x.eq(rdata.as_signed())
                with m.If(mac_wide):
                    m.d.sync += low_word.eq(rdata)
                    read(a_word, 1)
                    m.next = "MAC_X_WIDE"
                with m.Else():
                    read(w_ptr)
                    m.next = "MAC_PRODUCT"
            with m.State("MAC_X_WIDE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += mac_x.eq(Cat(low_word, rdata).as_signed())
                read(w_ptr)
                m.next = "MAC_PRODUCT"
            with m.State("MAC_PRODUCT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += w_ptr.eq(w_ptr + 1)
                multiply(mac_x, rdata.as_signed(), acc, 0, 0, RET_MAC)
            with m.State("MAC_BIAS_LOW"):
                m.d.comb += self.busy.eq(1)
                read(aux_address)
                m.next = "MAC_BIAS_HIGH"
            with m.State("MAC_BIAS_HIGH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += low_word.eq(rdata)
                read(aux_address, 1)
                m.next = "MAC_DONE"
            with m.State("MAC_DONE"):
                m.d.comb += self.busy.eq(1)
                multiply(acc, 1, Cat(low_word, rdata).as_signed(), cf("shift"), cf("width"),
                         RET_SOURCE)
            # -- the shared multiplier, and where its result goes --
            with m.State("MULTIPLY"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += product.eq(mul_a * mul_b)
                m.next = "ROUND"
            with m.State("ROUND"):
                m.d.comb += [self.busy.eq(1), rounder.load.eq(1)]
                m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += self.busy.eq(1)
                with m.Switch(Mux(rounder.ready, ret, RET_WAIT)):
                    with m.Case(RET_SOURCE):
                        m.d.sync += [value.eq(result), stage_index.eq(0)]
                        m.next = "STAGE"
                    with m.Case(RET_MAC):
                        m.d.sync += acc.eq(result)
                        m.next = "MAC_X_LOW"
                        with m.If(p_word + 1 != m_cols):
                            m.d.sync += p_word.eq(p_word + 1)
                        with m.Else():
                            m.d.sync += p_word.eq(0)
                            with m.If(p_j + 1 != m_f):
                                m.d.sync += [p_j.eq(p_j + 1), a_ptr.eq(a_ptr + pitch)]
                            with m.Elif(p_i + 1 != m_f):
                                m.d.sync += [p_i.eq(p_i + 1), p_j.eq(0),
                                             patch_row.eq(patch_row + row_step),
                                             a_ptr.eq(patch_row + row_step)]
                            with m.Else():
                                m.next = "MAC_BIAS_LOW"
                    with m.Case(RET_THETA):
                        m.d.sync += theta_limit.eq(result)
                        m.next = "DOT"
                    with m.Case(RET_VALUE):
                        m.d.sync += value.eq(result)
                        m.next = "STAGE_END"
                    with m.Case(RET_GROUP):
                        m.next = "STAGE_END"
                        with m.If(group_last):
                            wide = group_kind == TensorKind.WIDE
                            m.d.sync += [store_address.eq(p0), store_value.eq(result),
                                         store_wide.eq(wide), p0.eq(p0 + p0_step)]
                            m.next = "STORE_LOW"
            # -- epilogue: every stage of the instruction on value (t, c) --
            with m.State("STAGE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += gather_index.eq(0)
                m.next = "NEXT_ELEMENT"
                with m.If(stage_index != stage_count):
                    m.next = "STAGE_STEP"
            with m.State("STAGE_STEP"):
                m.d.comb += self.busy.eq(1)
                step_stage_state()
                m.next = "GATHER"
            with m.State("GATHER"):
                m.d.comb += self.busy.eq(1)
                with m.If(gather_index != gather_count):
                    read(gather_address)
                for i, gw in enumerate(gathered):
                    with m.If(gather_index == i + 1):
                        m.d.sync += gw.eq(rdata)
                # word i arrives at gather_index i + 1: an Affine's bias (words 1, 2) and an
                # RPReLU's post-shift (words 4, 5) into the addend, its slope for the sign of
                # value + pre (word 2 or 3) into mul_b, a Threshold's flip bit (word 2)
                affine, rprelu = stage_op == Affine.OPCODE, stage_op == RPReLU.OPCODE
                with m.If((affine & (gather_index == 2)) | (rprelu & (gather_index == 5))):
                    m.d.sync += addend[0:16].eq(rdata)
                with m.If((affine & (gather_index == 3)) | (rprelu & (gather_index == 6))):
                    m.d.sync += addend[16:].eq(rdata.as_signed())
                with m.If(rprelu & (gather_index == Mux(rp_t >= 0, 3, 4))):
                    m.d.sync += mul_b.eq(rdata.as_signed())
                with m.If(gather_index == 3):
                    m.d.sync += flip.eq(rdata.bit_select(c[0:4], 1))
                m.d.sync += gather_index.eq(gather_index + 1)
                with m.If(gather_index == gather_count):
                    m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.comb += self.busy.eq(1)
                m.next = "STAGE_END"
                with m.Switch(stage_op):
                    with m.Case(Affine.OPCODE):
                        multiply(value, constant, None, sf(Affine, "shift"),
                                 sf(Affine, "width"), RET_VALUE)
                    with m.Case(RPReLU.OPCODE):
                        multiply(rp_t, None, None, sf(RPReLU, "shift"), sf(RPReLU, "width"),
                                 RET_VALUE)
                    with m.Case(Add.OPCODE):
                        with m.If(add_pattern == Pattern.PATCHES):
                            fail()
                        with m.Else():
                            multiply(value, 1, Mux(add_wide, wide01, constant), 0,
                                     sf(Add, "width"), RET_VALUE)
                    with m.Case(Threshold.OPCODE):
                        m.d.sync += [bit_word_address.eq(bit_address), bit_index.eq(bit_position),
                                     bit_value.eq(threshold_bit)]
                        m.next = "BIT_READ"
                    with m.Case(Store.OPCODE):
                        m.d.sync += [store_address.eq(p0), store_value.eq(value),
                                     store_wide.eq(store_kind == TensorKind.WIDE)]
                        m.next = "STORE_LOW"
                    with m.Case(GroupAverage.OPCODE):
                        m.d.sync += group_sum.eq(group_total)
                        multiply(group_total, sf(GroupAverage, "mul"), 0,
                                 sf(GroupAverage, "shift"), sf(GroupAverage, "width"), RET_GROUP)
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
                write(store_address, store_value[16:32], 1)
                m.next = "STAGE_END"
            with m.State("STAGE_END"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += state_w.en.eq(1)
                m.d.sync += stage_index.eq(stage_index + 1)
                m.next = "STAGE"
            # -- the next element, the next output token, or the next instruction --
            with m.State("NEXT_ELEMENT"):
                m.d.comb += self.busy.eq(1)
                m.next = "ELEMENT"
                with m.If(c + 1 != n_out):
                    m.d.sync += c.eq(c + 1)
                    with m.If(is_matmul):
                        m.d.sync += b_row.eq(b_row + w_row_words)
                        phase = head_phase + m_heads
                        with m.If(phase == n_out):   # c·heads reached a multiple of N
                            m.d.sync += [head_phase.eq(0),
                                         head_offset.eq(head_offset + mf("head_step"))]
                        with m.Else():
                            m.d.sync += head_phase.eq(phase)
                        m.next = "DOT"
                    with m.If(is_mac):
                        m.next = "MAC"
                with m.Elif(is_matmul | is_mac):
                    m.d.sync += [c.eq(0), t.eq(t + 1), b_row.eq(mf("weights.address")),
                                 head_offset.eq(0), head_phase.eq(0), w_ptr.eq(cf("weights"))]
                    with m.If(patch_column + 1 != mf("row_patches")):
                        m.d.sync += [patch_column.eq(patch_column + 1),
                                     patch_origin.eq(patch_origin + origin_step)]
                    with m.Else():
                        m.d.sync += [patch_column.eq(0), patch_line.eq(patch_line + line_step),
                                     patch_origin.eq(patch_line + line_step)]
                    with m.If(t + 1 == mf("tokens")):
                        m.d.sync += self.instructions.eq(self.instructions + 1)
                        m.next = "FETCH_LOW"
                    with m.Elif(is_mac):
                        m.next = "MAC"
                    with m.Else():
                        m.next = "DOT"
                with m.Else():
                    m.d.sync += [c.eq(0), t.eq(t + 1)]
                    # the last origin of a row and of the grid are derived fields (GLOBAL: 0)
                    with m.If(x_base != wf("last_x")):
                        m.d.sync += [x_base.eq(x_base + wf("stride")),
                                     win_origin.eq(win_origin + origin_step)]
                    with m.Else():
                        m.d.sync += x_base.eq(0)
                        with m.If(y_base != wf("last_y")):
                            m.d.sync += [y_base.eq(y_base + wf("stride")),
                                         win_line.eq(win_line + line_step),
                                         win_origin.eq(win_line + line_step)]
                        with m.Else():
                            m.d.sync += self.instructions.eq(self.instructions + 1)
                            m.next = "FETCH_LOW"
            with m.State("ERROR"):
                m.d.sync += self.error.eq(1)
                with m.If(self.start):
                    m.next = "IDLE"
        return m


__all__ = ["EngineCore"]
