"""Binary attention: ±1 scores against a key buffer, an exp LUT, a row-sum threshold, AND-popcount.

One kernel computes, for every query token and head, the integer context of BinaryViT's
binarized attention (``docs/integer-semantics.md``, ``binaryvit.golden.intref``)::

    s_ik = xnor_popcount_dot(q_i, k_k)            (attention_scores)
    e_ik = lut[(s_ik + d) / 2] = lut[popcount(XNOR(q_i, k_k))]
    S_i  = Σ_k e_ik
    b_ik = (e_ik << theta_shift) > theta · S_i    (attention_mask, strict, no divide)
    ctx_ic = 2·popcount(b_i AND v⁺_c) − popcount(b_i)   (and_popcount_context)

The design and its cycle counts are explained in ``docs/kernels-attention.md``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.golden import intref
from binaryvit.golden.intref.validation import check_shift
from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes
from binaryvit.hw.kernels.popcount import POPCOUNT_STYLES, xnor_popcount


def _counter(limit: int, name: str) -> Signal:
    """A counter for ``0 … limit − 1``, at least 1 bit wide (no zero-width vectors in the Verilog)."""
    return Signal(range(max(limit, 2)), name=name)


def _full_array(items: list[Any], index_width: int) -> Array:
    """``items`` padded with copies of ``items[0]`` to all ``2^index_width`` indices.

    The padding is unreachable; it makes every index value a case of the generated
    multiplexer, so the Verilog has no incomplete ``case``.
    """
    return Array(items + [items[0]] * ((1 << index_width) - len(items)))


class BinaryAttention(wiring.Component):
    """Multi-head binary attention over a buffer of ``key_tokens`` keys and values.

    Parameters
    ----------
    heads : number of heads ``h`` (≥ 1).
    head_dim : ``d``, bits per head of a query, key or value token (``dv = d``); ``C = h·d``.
    query_tokens : ``Tq``, query tokens per image (≥ 1).
    key_tokens : ``Tk``, key (and value) tokens per image (≥ 1).
    lut : the exp table ``E[0 … d]`` (``intref.exp_lut``): ``d + 1`` non-negative ints.
    theta, theta_shift : the threshold ``θ = theta / 2^theta_shift`` (both ints ≥ 0).
    keys_per_cycle : ``P``, keys scored (and accumulated) per cycle; must divide ``Tk``.
    lanes : context values per output word; must divide ``d`` (default ``d``).
    lut_width : unsigned width of the LUT entries (default: the widest entry's bit length).
    popcount_style : the score tree, one of ``hw.popcount.POPCOUNT_STYLES`` (combinational).

    Members
    -------
    q : ``In(stream.Signature(StructLayout({"data": unsigned(C), "last": 1})))``
        One query token per word, all heads: bit ``h·d + j`` is channel ``j`` of head ``h``.
        ``Tq`` words per image.
    k, v : the same layout, ``Tk`` words per image each (key / value tokens).
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(signed(ctx_width), lanes),
        "last": 1})))``: the context, ``C / lanes`` words per query token, channels in
        heads-concat order (word ``w`` of a token holds channels ``w·lanes … w·lanes+lanes−1``),
        values in ``[−Tk, Tk]``; ``last`` on the final word of an image.

    Framing is by count: ``last`` on the inputs is not read. Keys and values are stored in
    two image slots (double buffer, ``k`` and ``v`` accepted in any interleaving): an
    image's ``Tq`` queries are accepted once its ``Tk`` keys and values are in, while the
    next image's load into the other slot; a slot takes a new image once its image's final
    head has been scored and accumulated.

    Cycles (no bubbles or back-pressure): a head takes ``max(Tk/P, d/lanes)`` cycles in steady
    state: scoring (stage A) and mask + accumulation (stage B) of consecutive heads overlap,
    and each stage hands over on its last block, so there is no bubble between heads,
    queries or images. Per query ``h·max(Tk/P, d/lanes)``; per image ``Tq·h·max(Tk/P,
    d/lanes)`` (``cycles_per_image``), exact when that is at least ``Tk + Tk/P + 1`` (the
    K and V of the image after next then load while the next one computes; below, the
    K/V load bounds it). A stream of images, ``d/lanes ≤ Tk/P``, takes ``images ·
    cycles_per_image + Tk + 1 + Tk/P + d/lanes`` cycles from its first key to its last
    context word: the first image's load, and the last head's accumulation and output,
    are paid once. ``latency`` is ``2·Tk/P + 1``.
    """

    def __init__(self, *, heads: int, head_dim: int, query_tokens: int, key_tokens: int,
                 lut: Sequence[int], theta: int, theta_shift: int, keys_per_cycle: int = 1,
                 lanes: int | None = None, lut_width: int | None = None, popcount_style: str = "plain") -> None:
        try:
            self._check_parameters(heads, head_dim, query_tokens, key_tokens, lut, theta, theta_shift,
                                   keys_per_cycle, lanes, lut_width)
            if popcount_style not in POPCOUNT_STYLES:
                raise ConfigError(f"popcount_style: expected one of {POPCOUNT_STYLES}, got {popcount_style!r}")
            self.popcount_style = popcount_style
        except (ConfigError, FoldingError):
            # A kernel that failed to construct is never elaborated: no "never used" warning.
            self._MustUse__silence = True
            raise
        self.channels = self.heads * self.head_dim
        self.threshold_width = max(1, self.theta * max(self.lut)).bit_length() + self.key_tokens.bit_length()
        self.ctx_width = self.key_tokens.bit_length() + 1
        super().__init__({
            "q": In(stream.Signature(self.token_layout)),
            "k": In(stream.Signature(self.token_layout)),
            "v": In(stream.Signature(self.token_layout)),
            "o": Out(stream.Signature(self.context_layout)),
        })

    def _check_parameters(self, heads, head_dim, query_tokens, key_tokens, lut, theta, theta_shift,
                          keys_per_cycle, lanes, lut_width) -> None:
        self.heads = check_int(heads, "heads", 1)
        self.head_dim = check_int(head_dim, "head_dim", 1)
        self.query_tokens = check_int(query_tokens, "query_tokens", 1)
        self.key_tokens = check_int(key_tokens, "key_tokens", 1)
        self.theta = check_int(theta, "theta", 0)
        self.theta_shift = check_shift(theta_shift, "theta_shift")
        self.keys_per_cycle = check_lanes(keys_per_cycle, "keys_per_cycle", self.key_tokens, "key_tokens")
        self.lanes = self.head_dim if lanes is None else check_lanes(lanes, "lanes", self.head_dim, "head_dim")
        self.lut = self._check_lut(lut, self.head_dim)
        widest = max(1, max(value.bit_length() for value in self.lut))
        if lut_width is None:
            self.lut_width = widest
        else:
            self.lut_width = check_int(lut_width, "lut_width", 1)
            if widest > self.lut_width:
                raise ConfigError(f"lut: entry {max(self.lut)} does not fit lut_width={self.lut_width} "
                                  f"unsigned bits (valid entries: 0 … {2 ** self.lut_width - 1})")

    @staticmethod
    def _check_lut(lut: Sequence[int], head_dim: int) -> list[int]:
        if isinstance(lut, torch.Tensor):
            lut = lut.tolist()
        try:
            entries = list(lut)
        except TypeError:
            raise ConfigError(f"lut must be a sequence of {head_dim + 1} ints, got {lut!r}") from None
        if len(entries) != head_dim + 1:
            raise ConfigError(f"lut must have head_dim + 1 = {head_dim + 1} entries, got {len(entries)}")
        return [check_int(value, f"lut[{index}]", 0) for index, value in enumerate(entries)]

    @property
    def token_layout(self) -> data.StructLayout:
        """Payload of ``q``, ``k`` and ``v``: one token's ``C`` bits and ``last``."""
        return data.StructLayout({"data": unsigned(self.channels), "last": 1})

    @property
    def context_layout(self) -> data.StructLayout:
        """Payload of ``o``: ``lanes`` signed context values and ``last``."""
        return data.StructLayout({"data": data.ArrayLayout(signed(self.ctx_width), self.lanes), "last": 1})

    @property
    def blocks_per_head(self) -> int:
        """Cycles spent scoring (or accumulating) one head: ``Tk / P``."""
        return self.key_tokens // self.keys_per_cycle

    @property
    def latency(self) -> int:
        """Cycles from a query transfer (with K and V loaded) to its first context word: ``2·Tk/P + 1``."""
        return 2 * self.blocks_per_head + 1

    @property
    def cycles_per_head(self) -> int:
        """Steady-state cycles per (query, head): ``max(Tk/P, d/lanes)``."""
        return max(self.blocks_per_head, self.head_dim // self.lanes)

    @property
    def cycles_per_query(self) -> int:
        """Steady-state cycles per query token: ``h·max(Tk/P, d/lanes)``."""
        return self.heads * self.cycles_per_head

    @property
    def cycles_per_image(self) -> int:
        """Steady-state cycles per image with no stalls: ``Tq·h·max(Tk/P, d/lanes)``, every
        cycle scoring ``P`` keys or sending a context word (exact when at least ``Tk + Tk/P + 1``)."""
        return self.query_tokens * self.cycles_per_query

    @staticmethod
    def image_cycles(*, query_tokens: int, heads: int, head_dim: int, key_tokens: int,
                     keys_per_cycle: int, lanes: int) -> int:
        """``cycles_per_image`` of a unit with these parameters, without building one (the
        folding pass ranks folds by it): ``Tq·h·max(Tk/P, d/lanes)``."""
        return query_tokens * heads * max(key_tokens // keys_per_cycle, head_dim // lanes)

    # -- stream words ------------------------------------------------------------------------

    def token_words(self, bits: Any) -> list[int]:
        """``bits[B, T, C]`` (bool/0-1) → ``q``/``k``/``v`` payload ints, ``last`` on each image's final token."""
        tensor = torch.as_tensor(bits)
        if tensor.dim() != 3 or tensor.shape[-1] != self.channels:
            raise ConfigError(f"bits: expected shape [batch, tokens, {self.channels}], got {tuple(tensor.shape)}")
        words = []
        for image in tensor:
            for index, token in enumerate(image):
                last = int(index == image.shape[0] - 1)
                words.append(intref.pack_bits_to_int(token) | last << self.channels)
        return words

    def context_words(self, context: Any) -> list[int]:
        """``context[B, Tq, C]`` ints → ``o`` payload ints, ``last`` on each image's final word."""
        tensor = torch.as_tensor(context)
        if tensor.dim() != 3 or tensor.shape[-1] != self.channels:
            raise ConfigError(f"context: expected shape [batch, Tq, {self.channels}], got {tuple(tensor.shape)}")
        mask = (1 << self.ctx_width) - 1
        flat = tensor.reshape(tensor.shape[0], -1, self.lanes).tolist()
        words = []
        for image in flat:
            for index, lanes in enumerate(image):
                word = sum((value & mask) << (j * self.ctx_width) for j, value in enumerate(lanes))
                words.append(word | int(index == len(image) - 1) << (self.lanes * self.ctx_width))
        return words

    def words_to_context(self, words: Sequence[int]) -> torch.Tensor:
        """Inverse of :meth:`context_words`: ``o`` payload ints → int64 ``[B, Tq, C]``."""
        per_image = self.query_tokens * self.channels // self.lanes
        if len(words) % per_image:
            raise ConfigError(f"words: {len(words)} is not a multiple of {per_image} words per image")
        mask = (1 << self.ctx_width) - 1
        values = []
        for word in words:
            for j in range(self.lanes):
                value = (word >> (j * self.ctx_width)) & mask
                values.append(value - (1 << self.ctx_width) if value >> (self.ctx_width - 1) else value)
        return torch.tensor(values, dtype=torch.int64).reshape(-1, self.query_tokens, self.channels)

    # -- reference ---------------------------------------------------------------------------

    def model(self, q_bits: Any, k_bits: Any, v_bits: Any) -> torch.Tensor:
        """The expected context ``[B, Tq, C]`` for bits ``q[B, Tq, C]``, ``k[B, Tk, C]``, ``v[B, Tk, C]``.

        Computed by ``intref.attention_scores``, ``attention_mask`` and
        ``and_popcount_context`` per head, heads concatenated.
        """
        def per_head(bits: Any, tokens: int, name: str) -> torch.Tensor:
            tensor = torch.as_tensor(bits)
            if tensor.dim() != 3 or tuple(tensor.shape[1:]) != (tokens, self.channels):
                raise ConfigError(f"{name}: expected shape [batch, {tokens}, {self.channels}], "
                                  f"got {tuple(tensor.shape)}")
            return tensor.reshape(tensor.shape[0], tokens, self.heads, self.head_dim).transpose(1, 2)

        q = per_head(q_bits, self.query_tokens, "q_bits")
        k = per_head(k_bits, self.key_tokens, "k_bits")
        v = per_head(v_bits, self.key_tokens, "v_bits")
        scores = intref.attention_scores(q, k)
        mask = intref.attention_mask(scores, self.lut, self.theta, self.theta_shift)
        context = intref.and_popcount_context(mask, v)
        return context.transpose(1, 2).reshape(q.shape[0], self.query_tokens, self.channels)

    # -- hardware ----------------------------------------------------------------------------

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        d, tk, P = self.head_dim, self.key_tokens, self.keys_per_cycle
        blocks = self.blocks_per_head
        words_per_head = d // self.lanes

        def head_slice(word: Signal, head: Signal) -> Any:
            return _full_array([word[h * d:(h + 1) * d] for h in range(self.heads)], len(head))[head]

        # Key/value stores: per store P banks (memories with a synchronous read port, block
        # RAM) of two image slots of Tk/P tokens; bank j holds tokens j, P + j, 2P + j, … at
        # address slot·Tk/P + token div P. An image's keys and values load into the free
        # slot (``k`` and ``v`` in any interleaving) while the other slot is computed on; a
        # slot is freed once its image's final head has been accumulated.
        # Per slot: ``full`` from its load to the end of its image's final head, ``queried``
        # once that image's last query has been taken (the slot then waits for its release).
        full = [Signal(name=f"slot{slot}_full") for slot in range(2)]
        queried = [Signal(name=f"slot{slot}_queried") for slot in range(2)]
        load_slot = Signal()
        k_loaded, v_loaded = Signal(), Signal()

        def store(port: Any, loaded: Signal, name: str) -> list[Any]:
            banks = []
            for j in range(P):
                memory = Memory(shape=unsigned(self.channels), depth=2 * blocks, init=[])
                m.submodules[f"{name}{j}"] = memory
                banks.append((memory.write_port(), memory.read_port()))
            # The next token's bank and block (no counter where there is one of them).
            bank = _counter(P, f"{name}_bank") if P > 1 else None
            block = _counter(blocks, f"{name}_block") if blocks > 1 else None
            takes = port.valid & port.ready
            m.d.comb += port.ready.eq(~loaded & ~Mux(load_slot, full[1], full[0]))
            for j, (write, _) in enumerate(banks):
                m.d.comb += [write.addr.eq(load_slot * blocks + (0 if block is None else block)),
                             write.data.eq(port.payload.data),
                             write.en.eq(takes if bank is None else takes & (bank == j))]
            bank_done = takes if bank is None else takes & (bank == P - 1)
            if bank is not None:
                with m.If(takes):
                    m.d.sync += bank.eq(Mux(bank == P - 1, 0, bank + 1))
            if block is not None:
                with m.If(bank_done):
                    m.d.sync += block.eq(Mux(block == blocks - 1, 0, block + 1))
            done = Signal(name=f"{name}_done")  # the slot has all Tk tokens (this cycle on)
            m.d.comb += done.eq(loaded | (bank_done if block is None
                                          else bank_done & (block == blocks - 1)))
            m.d.sync += loaded.eq(done)
            return done, [read for _, read in banks]

        k_done, k_reads = store(self.k, k_loaded, "k_store")
        v_done, v_reads = store(self.v, v_loaded, "v_store")
        with m.If(k_done & v_done):
            m.d.sync += [k_loaded.eq(0), v_loaded.eq(0), load_slot.eq(~load_slot)]
            for slot, flag in enumerate(full):
                with m.If(load_slot == slot):
                    m.d.sync += flag.eq(1)
        q_slot = Signal()  # the slot of the next query's image
        q_last = Const(1)  # the next query is its image's last
        if self.query_tokens > 1:
            q_count = _counter(self.query_tokens, "q_count")
            q_last = Signal()
            m.d.comb += q_last.eq(q_count == self.query_tokens - 1)
            with m.If(self.q.valid & self.q.ready):
                m.d.sync += q_count.eq(Mux(q_last, 0, q_count + 1))
        a_advance = Signal()
        b_advance = Signal()

        # Stage A: scores and exp LUT of one (query, head), P keys a cycle. Besides e it
        # accumulates θ·S = Σ_k theta·e_k from a second table (theta·E[j]), so the threshold
        # needs no multiplier.
        qreg = Signal(self.channels)
        a_slot = Signal()
        a_head = _counter(self.heads, "a_head")
        a_block = _counter(blocks, "a_block")
        a_last_query = Signal()
        a_exp = [Signal(self.lut_width, name=f"a_exp{i}") for i in range(tk)]
        a_threshold = Signal(self.threshold_width)
        a_scoring = Signal()

        # Stage B: mask bits and AND-popcount of one (query, head) against the value buffer.
        b_exp = [Signal(self.lut_width, name=f"b_exp{i}") for i in range(tk)]
        b_threshold = Signal(self.threshold_width)
        b_slot = Signal()
        b_head = _counter(self.heads, "b_head")
        b_block = _counter(blocks, "b_block")
        b_last_image = Signal()
        b_running = Signal()
        b_ones = [Signal(range(tk + 1), name=f"b_ones{c}") for c in range(d)]
        b_marked = Signal(range(tk + 1))

        # Output stage: one head's context, sent as d/lanes words; o.valid is its "full" flag.
        out_values = [Signal(signed(self.ctx_width), name=f"out_value{c}") for c in range(d)]
        out_word = _counter(words_per_head, "out_word")
        out_last_image = Signal()
        out_final_word = Signal()
        out_can_take = Signal()
        m.d.comb += [
            out_final_word.eq(out_word == words_per_head - 1),
            out_can_take.eq(~self.o.valid | (self.o.ready & out_final_word)),
            self.o.payload.last.eq(out_last_image & out_final_word),
        ]
        m.d.comb += [self.o.payload.data[j].eq(out_values[j]) for j in range(self.lanes)]

        # A finishes a head on its last block: it hands e and θ·S to B on that same cycle
        # (B idle, or B on its own last block with the output free), else it holds.
        a_final = Signal()
        b_final = Signal()
        b_can_take = Signal()
        handoff = Signal()
        m.d.comb += [
            a_final.eq(a_scoring & (a_block == blocks - 1)),
            b_final.eq(b_running & (b_block == blocks - 1)),
            b_can_take.eq(~b_running | (b_final & out_can_take)),
            handoff.eq(a_final & b_can_take),
        ]

        # The key read for the next cycle: the next block of this head, block 0 of the next
        # head, or block 0 of the next query (its slot); held while A stalls.
        a_last_head = a_head == self.heads - 1
        next_block = 0 if blocks == 1 else Mux(a_scoring & ~a_final, a_block + 1, 0)
        next_slot = Mux(a_scoring & ~(a_final & a_last_head), a_slot, q_slot)
        for read in k_reads:
            m.d.comb += [read.en.eq(~a_scoring | a_advance), read.addr.eq(next_slot * blocks + next_block)]
        keys = [read.data for read in k_reads]

        # Stage A datapath. The tree's count may be wider than bit_length(d); the tables are
        # indexed by all of it (entries above d unreachable), so no count bit is left unread.
        q_head = Signal(d)
        m.d.comb += q_head.eq(head_slice(qreg, a_head))
        counts = [xnor_popcount(m, q_head, head_slice(keys[j], a_head), style=self.popcount_style,
                                name=f"score{j}")[0] for j in range(P)]
        exp_table = _full_array([Const(value, self.lut_width) for value in self.lut], len(counts[0]))
        threshold_table = _full_array([Const(self.theta * value, self.threshold_width) for value in self.lut],
                                      len(counts[0]))
        new_exp, new_threshold = [], []
        for j, count in enumerate(counts):
            exp = Signal(self.lut_width, name=f"exp{j}")
            threshold = Signal(self.threshold_width, name=f"threshold_term{j}")
            m.d.comb += [exp.eq(exp_table[count]), threshold.eq(threshold_table[count])]
            new_exp.append(exp)
            new_threshold.append(threshold)
        threshold_sum = a_threshold + sum(new_threshold)
        exp_row = [a_exp[i + P] for i in range(tk - P)] + new_exp

        m.d.comb += a_advance.eq(a_scoring & (~a_final | b_can_take))
        with m.If(a_advance):
            m.d.sync += [a_exp[i].eq(exp_row[i]) for i in range(tk)]
            m.d.sync += [a_threshold.eq(threshold_sum), a_block.eq(a_block + 1)]
            with m.If(a_final):
                m.d.sync += [a_block.eq(0), a_threshold.eq(0)]
                with m.If(a_head == self.heads - 1):
                    m.d.sync += a_scoring.eq(0)
                with m.Else():
                    m.d.sync += a_head.eq(a_head + 1)
        q_image_ready = Mux(q_slot, full[1] & ~queried[1], full[0] & ~queried[0])
        m.d.comb += self.q.ready.eq(q_image_ready & (~a_scoring | (handoff & a_last_head)))
        with m.If(self.q.valid & self.q.ready):
            m.d.sync += [qreg.eq(self.q.payload.data), a_slot.eq(q_slot), a_head.eq(0), a_scoring.eq(1),
                         a_last_query.eq(q_last)]
        with m.If(self.q.valid & self.q.ready & q_last):
            m.d.sync += q_slot.eq(~q_slot)
            for slot, flag in enumerate(queried):
                with m.If(q_slot == slot):
                    m.d.sync += flag.eq(1)

        # Stage B datapath.
        marks = []
        for j in range(P):
            mark = Signal(name=f"mark{j}")
            m.d.comb += mark.eq((b_exp[j] << self.theta_shift) > b_threshold)
            marks.append(mark)
        # The value read for the next cycle, as for the keys: B's next block, or block 0 of
        # the head A hands over next.
        v_block = 0 if blocks == 1 else Mux(b_running & ~b_final, b_block + 1, 0)
        v_slot = Mux(b_running & ~b_final, b_slot, a_slot)
        for read in v_reads:
            m.d.comb += [read.en.eq(~b_running | b_advance), read.addr.eq(v_slot * blocks + v_block)]
        values = [read.data for read in v_reads]
        v_heads = []
        for j in range(P):
            v_head = Signal(d, name=f"v_head{j}")
            m.d.comb += v_head.eq(head_slice(values[j], b_head))
            v_heads.append(v_head)
        ones_next = [b_ones[c] + sum(marks[j] & v_heads[j][c] for j in range(P)) for c in range(d)]
        marked_next = b_marked + sum(marks)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [out_values[c].eq(out_values[c + self.lanes]) for c in range(d - self.lanes)]
            m.d.sync += out_word.eq(out_word + 1)
            with m.If(out_final_word):
                m.d.sync += [self.o.valid.eq(0), out_word.eq(0)]
        m.d.comb += b_advance.eq(b_running & (~b_final | out_can_take))
        with m.If(b_advance):
            m.d.sync += [b_exp[i].eq(b_exp[(i + P) % tk]) for i in range(tk)]
            m.d.sync += [b_ones[c].eq(ones_next[c]) for c in range(d)]
            m.d.sync += [b_marked.eq(marked_next), b_block.eq(b_block + 1)]
            with m.If(b_final):
                # ctx = 2·popcount(b AND v⁺) − popcount(b), written straight to the output.
                m.d.sync += [out_values[c].eq((ones_next[c] << 1) - marked_next) for c in range(d)]
                m.d.sync += [self.o.valid.eq(1), out_word.eq(0), out_last_image.eq(b_last_image),
                             b_block.eq(0), b_running.eq(0)]
                with m.If(b_last_image):  # the image is done: its slot takes the next load
                    for slot in range(2):
                        with m.If(b_slot == slot):
                            m.d.sync += [full[slot].eq(0), queried[slot].eq(0)]
        with m.If(handoff):
            m.d.sync += [b_exp[i].eq(exp_row[i]) for i in range(tk)]
            m.d.sync += [b_threshold.eq(threshold_sum), b_head.eq(a_head), b_slot.eq(a_slot),
                         b_last_image.eq(a_last_query & (a_head == self.heads - 1)),
                         b_running.eq(1), b_marked.eq(0)]
            m.d.sync += [b_ones[c].eq(0) for c in range(d)]
        return m
