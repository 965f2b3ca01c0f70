# amaranth: UnusedElaboratable=no
# (popcount_stages builds a throw-away Module only to count the stages.)
"""XNOR-popcount datapaths: ``popcount(XNOR(a, w))`` over ``lanes`` bit pairs.

Three structures, chosen by ``style``, so a benchmark can put Yosys's mapping of a plain
popcount beside the deliberate ones in the same run:

``"plain"``
    XNOR per lane, then a balanced tree of ``+``: what a straightforward description gives.
``"counter6"`` (for 6-input LUTs, e.g. Xilinx 7-series)
    The XNORs fold into the first compressor level: a 3-lane counter (``3 × (a, w)`` = 6
    inputs) gives a 2-bit count, each bit one LUT6. The resulting bit heap is reduced
    with 6:3 counters (three 6-input functions per six bits of one weight, Wallace style)
    until every column holds at most two bits; one carry-chain adder finishes.
``"counter4"`` (for 4-input LUTs with a carry chain, e.g. iCE40)
    The same 3-lane XNOR counters, then a balanced tree of carry-chain adders over the
    2-bit counts: on LUT4 devices an adder bit costs one logic cell (LUT + carry), which
    beats full adders built from LUTs (two cells per eliminated bit).

Counters are written as boolean full / half adders, never ``+``, so Yosys maps them to
LUTs (a ``+`` becomes a carry chain); only the final two-row adder is a ``+``.

Every reduction level may be registered (``register_every``). With ``register_every=1``
the mapping is also the tightest: the registers keep ABC from restructuring the counters
(measured in ``bench/bench_mvu.py``), and a flip-flop shares the logic cell / slice with
the LUT that feeds it.
"""
from __future__ import annotations

from collections import defaultdict

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError

__all__ = ["POPCOUNT_STYLES", "xnor_popcount", "popcount_stages", "XnorPopcount"]

POPCOUNT_STYLES = ("plain", "counter6", "counter4")


def _check(lanes: int, style: str, register_every: int) -> None:
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ConfigError(f"lanes: expected an integer ≥ 1, got {lanes!r}")
    if style not in POPCOUNT_STYLES:
        raise ConfigError(f"popcount style: expected one of {POPCOUNT_STYLES}, got {style!r}")
    if isinstance(register_every, bool) or not isinstance(register_every, int) \
            or register_every < 0:
        raise ConfigError("register_every: expected an integer ≥ 0 (0: no register inside "
                          f"the tree), got {register_every!r}")


class _Builder:
    """Adds reduction levels to ``m``, registering the live values every ``every`` levels."""

    def __init__(self, m: Module, enable: Value, every: int, prefix: str):
        self.m, self.enable, self.every, self.prefix = m, enable, every, prefix
        self.level = 0
        self.stages = 0
        self._count = 0

    def wire(self, value: Value, width: int) -> Signal:
        # Materialise every intermediate: reusing an expression tree in an unrolled
        # structure makes Amaranth's elaboration blow up (toolchain.md, pitfall 6).
        signal = Signal(width, name=f"{self.prefix}_l{self.level}_{self._count}")
        self._count += 1
        self.m.d.comb += signal.eq(value)
        return signal

    def end_level(self, values: list[Signal]) -> list[Signal]:
        """Close one level; return the values registered if this level is a stage edge."""
        self.level += 1
        if not self.every or self.level % self.every:
            return values
        self.stages += 1
        registered = []
        for value in values:
            reg = Signal(len(value), name=f"{self.prefix}_r{self.stages}_{self._count}")
            self._count += 1
            with self.m.If(self.enable):
                self.m.d.sync += reg.eq(value)
            registered.append(reg)
        return registered


def _adder_tree(builder: _Builder, numbers: list[Signal]) -> Signal:
    while len(numbers) > 1:
        paired = []
        for k in range(0, len(numbers) - 1, 2):
            a, b = numbers[k], numbers[k + 1]
            width = max(len(a), len(b)) + 1
            paired.append(builder.wire(a + b, width))
        if len(numbers) % 2:
            paired.append(numbers[-1])
        numbers = builder.end_level(paired)
    return numbers[0]


def _counter(builder: _Builder, bits: list[Value]) -> list[Signal]:
    """Count ``bits`` (≤ 6, one weight) with boolean full / half adders; returns the count's
    bits, LSB first. Written as logic, not ``+``, so synthesis maps each output bit (a
    function of ≤ 6 inputs) to LUTs instead of a carry chain."""
    columns: dict[int, list[Value]] = {0: list(bits)}
    result = []
    weight = 0
    while columns.get(weight):
        column = columns[weight]
        while len(column) > 1:
            if len(column) >= 3:
                a, b, c = column.pop(), column.pop(), column.pop()
                total = builder.wire(a ^ b ^ c, 1)
                carry = builder.wire((a & b) | (a & c) | (b & c), 1)
            else:
                a, b = column.pop(), column.pop()
                total = builder.wire(a ^ b, 1)
                carry = builder.wire(a & b, 1)
            column.insert(0, total)
            columns.setdefault(weight + 1, []).append(carry)
        result.append(column[0])
        weight += 1
    return result


def _lane_counters(builder: _Builder, a: Value, w: Value, group: int) -> list[list[Signal]]:
    """XNOR folded into counters of ``group`` lanes each (the last group may be smaller)."""
    xnor = builder.wire(~(a ^ w), len(a))
    return [_counter(builder, [xnor[i] for i in range(start, min(start + group, len(a)))])
            for start in range(0, len(a), group)]


def _heap_reduce(builder: _Builder, heap: dict[int, list[Value]]) -> Value:
    """Wallace reduction with 6:3 counters until each column has ≤ 2 bits, then one
    carry-chain adder of the two remaining rows."""
    while max(len(bits) for bits in heap.values()) > 2:
        reduced: dict[int, list[Value]] = defaultdict(list)
        for weight in sorted(heap):
            bits = heap[weight]
            for start in range(0, len(bits), 6):
                chunk = bits[start:start + 6]
                if len(chunk) <= 2:
                    reduced[weight].extend(chunk)
                    continue
                for bit, value in enumerate(_counter(builder, chunk)):
                    reduced[weight + bit].append(value)
        flat = [(weight, k) for weight in sorted(reduced) for k in range(len(reduced[weight]))]
        registered = builder.end_level([reduced[w][k] for w, k in flat])
        heap = defaultdict(list)
        for (weight, _), bit in zip(flat, registered):
            heap[weight].append(bit)
    top = max(heap) + 1
    rows = [Cat(*(heap[w][r] if r < len(heap.get(w, ())) else Const(0, 1) for w in range(top)))
            for r in range(2)]
    total = builder.wire(rows[0] + rows[1], top + 1)
    return builder.end_level([total])[0]


def xnor_popcount(m: Module, a: Value, w: Value, *, style: str = "counter6",
                  register_every: int = 0, enable: Value = Const(1),
                  name: str = "popcount") -> tuple[Value, int]:
    """Build ``popcount(~(a ^ w))`` into ``m``.

    Returns ``(count, stages)``: ``count`` is an unsigned value of at least
    ``lanes.bit_length()`` bits, valid ``stages`` clock cycles (of those where ``enable``
    is high) after ``a`` and ``w``. Registers sit after every ``register_every``-th
    reduction level (0: none, the whole tree combinational).
    """
    lanes = len(a)
    _check(lanes, style, register_every)
    if len(w) != lanes:
        raise ConfigError(f"w: expected {lanes} bits like a, got {len(w)}")
    builder = _Builder(m, enable, register_every, name)
    if style == "plain":
        xnor = builder.wire(~(a ^ w), lanes)
        count = _adder_tree(builder, builder.end_level([xnor[i] for i in range(lanes)]))
    else:
        counts = _lane_counters(builder, a, w, 3)
        if lanes <= 3:
            count = Cat(*builder.end_level(counts[0]))
        elif style == "counter4":
            numbers = [builder.wire(Cat(*bits), len(bits)) for bits in counts]
            count = _adder_tree(builder, builder.end_level(numbers))
        else:
            flat = builder.end_level([bit for bits in counts for bit in bits])
            heap: dict[int, list[Value]] = defaultdict(list)
            position = 0
            for bits in counts:
                for weight in range(len(bits)):
                    heap[weight].append(flat[position])
                    position += 1
            count = _heap_reduce(builder, heap)
    return count, builder.stages


def popcount_stages(lanes: int, style: str, register_every: int) -> int:
    """The ``stages`` ``xnor_popcount`` gives for these parameters (elaborates a throw-away
    module; no simulation or synthesis)."""
    m = Module()
    _, stages = xnor_popcount(m, Signal(lanes), Signal(lanes), style=style,
                              register_every=register_every)
    return stages


class XnorPopcount(wiring.Component):
    """A stand-alone XNOR-popcount datapath (benchmarks and tests).

    Parameters
    ----------
    lanes : int
        Bit pairs per cycle.
    style : {"plain", "counter6", "counter4"}
    register_every : int
        Register after every this many reduction levels (0: none inside the tree).

    Members
    -------
    a, w : In(lanes)
    en : In(1)
        Advances the internal pipeline registers (if any).
    count : Out(range(lanes + 1))
        ``popcount(~(a ^ w))``, registered: ``latency`` enabled cycles after ``a`` and
        ``w`` (the tree's stages plus this output register).
    """

    def __init__(self, lanes: int, *, style: str = "counter6", register_every: int = 0):
        _check(lanes, style, register_every)
        self.lanes, self.style, self.register_every = lanes, style, register_every
        super().__init__({"a": In(lanes), "w": In(lanes), "en": In(1),
                          "count": Out(range(lanes + 1))})

    @property
    def latency(self) -> int:
        """Register stages between ``a``/``w`` and ``count`` (tree stages + 1)."""
        return popcount_stages(self.lanes, self.style, self.register_every) + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        count, _ = xnor_popcount(m, self.a, self.w, style=self.style,
                                 register_every=self.register_every, enable=self.en)
        with m.If(self.en):
            m.d.sync += self.count.eq(count)
        return m
