# amaranth: UnusedElaboratable=no
# (popcount_stages builds a throw-away Module only to count the stages.)
"""XNOR-popcount datapaths: ``popcount(XNOR(a, w))`` over ``lanes`` bit pairs.

Four structures, chosen by ``style``, so a benchmark can put Yosys's mapping of a plain
popcount beside the deliberate ones in the same run:

``"plain"``
    XNOR per lane, then a balanced tree of ``+``: what a straightforward description gives.
``"counter6"`` (6-input LUTs, e.g. Xilinx 7-series; the MVU's default)
    The XNORs fold into the first compressor level: a 3-lane counter (``3 × (a, w)`` = 6
    inputs) gives a 2-bit count, each bit one LUT6. The resulting bit heap is reduced
    with 6:3 counters (three 6-input functions per six bits of one weight, Wallace style)
    until every column holds at most two bits; one carry-chain adder finishes. Logic
    only, so registered on iCE40 every LUT shares its logic cell with the flip-flop it
    feeds: the fewest iCE40 logic cells of the registered structures (``bench_mvu.py
    --cells``), though not the fewest LUT4s.
``"counter4"`` (4-input LUTs with a carry chain, e.g. iCE40: the fewest LUT4s)
    The XNORs fold into a first level of counters, one per group of 3, 2 or 1 lanes: a
    3-lane count takes four LUT4s for its two bits, a 2-lane count one LUT4 per bit.
    The counts' bits form a heap that carry-chain adders reduce (``_carry_reduce``,
    below).
``"shared4"`` (for 4-input LUTs when many PEs see the same activation word, e.g. iCE40)
    The activations and weights are re-encoded per 3-lane group so that the lanes' count
    needs 3 LUT4s (1 LUT/lane) instead of 4: activation features ``(a1, a1^a2, a1^a3,
    a1^a2^a3)`` (``activation_features``; built once and shared by every PE) and weights
    ``(w1, w1^w2, w1^w3)`` (``encode_weight_word``; free in a weight ROM, done when the
    ROM's init is built). With ``d1 = a1^w1`` and ``e1k = (a1^ak)^(w1^wk)``, the count
    of three XNORs is ``bit0 = ~(a1^a2^a3 ^ w1^w2^w3)`` (one LUT4) and ``bit1 =
    ~d1 ^ (e12 & e13)`` (a LUT4 for ``e12 & e13``, registered, then a LUT3). A 2-lane
    group has features ``(a1, a1^a2)`` and weights ``(w1, w1^w2)``. The same carry-chain
    heap follows. ``xnor_popcount(..., encoded=True)`` takes the features and encoded
    weights; with ``encoded=False`` it builds both from ``a`` and ``w`` itself (correct,
    but without the sharing it is no cheaper).

The carry-chain heap (``"counter4"``, ``"shared4"``). On iCE40 (and Xilinx) an adder bit
is one LUT and a carry cell, so
``x + y + c`` (k-bit ``x``, ``y``; 1-bit ``c``) removes k bits of the heap with k LUTs,
where ``x + y`` removes k − 1 and a full adder built from LUTs needs two. The heap is
summed modulo ``2**width`` (``width = lanes.bit_length()``; the count is below it) with
carry-in adders wherever it can be (``_carry_plan``). Such adders keep the heap's
*capacity* (the sum of its bits' weights), and it must end at ``2**width − 1``, one bit
per column; each power of two it falls short costs one LUT that removes no bit (an adder
without carry-in, a row padded with 0). A 3-lane group brings capacity 3 for a count of
at most 3, a 2-lane group 3 for at most 2, so the mix of group sizes sets the shortfall:
``_group_sizes`` takes the mix with the fewest LUTs, first level plus heap. On an iCE40
device each such adder also takes a logic cell to bring its carry-in onto the chain and
one to take its carry-out off it, which Yosys's LUT count does not show.

Counters are written as boolean full / half adders, never ``+``, so Yosys maps them to
LUTs (a ``+`` becomes a carry chain); the carry heap's adders and the final two-row adder
are ``+``.

Every reduction level may be registered (``register_every``); a flip-flop shares the
logic cell / slice with the LUT that feeds it (except ``"shared4"``'s delayed ``a1`` and
``w1`` and heap bits that wait a level: flip-flops without a LUT of their own).
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError

__all__ = ["POPCOUNT_STYLES", "xnor_popcount", "popcount_stages", "planned_luts",
           "XnorPopcount", "XnorPopcountArray", "feature_width", "activation_features",
           "encode_weight_word"]

POPCOUNT_STYLES = ("plain", "counter6", "counter4", "shared4")
_GROUP = 3  # lanes per full group of the first level
# First-level LUT4s per group of 3, 2 or 1 lanes and PE of the carry-heap styles:
# "counter4"'s XNOR counters (the 6-input bit1 of three lanes takes two LUT4s and so does
# bit0; two lanes take one per bit), "shared4"'s per-PE logic (its features are shared).
_GROUP_LUTS = {"counter4": {3: 4, 2: 2, 1: 1}, "shared4": {3: 3, 2: 2, 1: 1}}


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


def _lane_counters(builder: _Builder, a: Value, w: Value,
                   groups: list[range]) -> list[list[Signal]]:
    """XNOR folded into one counter per group of lanes."""
    xnor = builder.wire(~(a ^ w), len(a))
    return [_counter(builder, [xnor[i] for i in group]) for group in groups]


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


class _Adder(NamedTuple):
    """A carry-chain adder of the heap: two bits of each column ``lo…hi`` (0 where a
    column has run out) plus, with ``carry_in``, a third bit of column ``lo``; its sum
    goes back to columns ``lo…hi + 1``, those below the heap's width (the count is
    below ``2**width``, so a carry beyond is 0)."""
    lo: int
    hi: int
    carry_in: bool


def _adder_luts(adder: _Adder, width: int) -> int:
    """SB_LUT4s Yosys's ``synth_ice40`` maps ``adder`` to (measured on single adders;
    ``synth_xilinx`` gives as many LUTs to an unpadded adder with carry-in)."""
    result = min(adder.hi + 2, width) - adder.lo
    if result > 2:  # one LUT + carry cell per column; the top bit is the last carry-out
        return adder.hi - adder.lo + 1
    # Yosys leaves adders of at most two result bits to plain logic.
    if adder.lo == adder.hi:  # the top column: an XOR of its bits
        return 1
    return 2 + adder.carry_in


def _plan_level(counts: list[int], padded: bool) -> list[tuple[_Adder, int]]:
    """One level of ``_carry_plan`` as (adder, copies): from the lowest column up, as many
    two-column adders with carry-in as column ``lo`` has three bits for and column
    ``lo + 1`` two (``padded``: one adder on each column holding three, whatever the next
    holds)."""
    top = len(counts) - 1
    left = list(counts)
    level = []
    for lo in range(len(counts)):
        hi = min(lo + 1, top)
        if padded:
            copies = int(left[lo] >= 3)
        else:
            copies = min(left[lo] // 3, left[hi] // 2) if hi > lo else 0
        if copies:
            level.append((_Adder(lo, hi, True), copies))
            left[lo] -= 3 * copies
            if hi > lo:
                left[hi] = max(0, left[hi] - 2 * copies)
    return level


def _apply(counts: list[int], level: list[tuple[_Adder, int]]) -> list[int]:
    """Column counts after ``level``."""
    width = len(counts)
    left, produced = list(counts), [0] * width
    for adder, copies in level:
        left[adder.lo] -= (2 + adder.carry_in) * copies
        for weight in range(adder.lo + 1, adder.hi + 1):
            left[weight] = max(0, left[weight] - 2 * copies)
        for weight in range(adder.lo, min(adder.hi + 2, width)):
            produced[weight] += copies
    return [a + b for a, b in zip(left, produced)]


@lru_cache(maxsize=None)
def _carry_plan(counts: tuple[int, ...]) -> tuple[tuple[tuple[_Adder, int], ...], ...]:
    """How to reduce a bit heap (``counts[w]`` bits of weight ``2**w``) to one bit per
    column, modulo ``2**len(counts)``: levels of (adder, copies).

    An adder with carry-in removes as many bits as it has LUTs; one without removes one
    fewer. So a level adds carry-in adders only, leaving two bits without a third for
    later carries to join, and a column whose neighbour above holds fewer than two bits
    (padding a row with 0 would waste a LUT); only a level that would otherwise change
    nothing pads. When every column holds ≤ 2 bits one adder adds the two rows, from the
    lowest column holding two to the top.
    """
    width = len(counts)
    current = list(counts)
    levels = []
    while max(current) > 2:
        level = _plan_level(current, padded=False) or _plan_level(current, padded=True)
        levels.append(tuple(level))
        current = _apply(current, level)
    doubles = [weight for weight in range(width) if current[weight] == 2]
    if doubles:
        levels.append(((_Adder(min(doubles), width - 1, False), 1),))
    return tuple(levels)


def _plan_luts(levels: tuple[tuple[tuple[_Adder, int], ...], ...], width: int) -> int:
    return sum(_adder_luts(adder, width) * copies for level in levels for adder, copies in level)


def _carry_reduce(builder: _Builder, heap: dict[int, list[Value]], width: int) -> Value:
    """The sum of ``heap`` (bits by weight) modulo ``2**width``, built as ``_carry_plan``
    says, each level registered as ``builder`` decides."""
    columns = [list(heap.get(weight, ())) for weight in range(width)]
    for level in _carry_plan(tuple(len(column) for column in columns)):
        produced: list[list[Value]] = [[] for _ in range(width)]
        for adder in (adder for adder, copies in level for _ in range(copies)):
            rows: list[list[Value]] = [[], []]
            for weight in range(adder.lo, adder.hi + 1):
                for row in rows:
                    row.append(columns[weight].pop(0) if columns[weight] else Const(0, 1))
            total = Cat(*rows[0]) + Cat(*rows[1])
            if adder.carry_in:
                total = total + columns[adder.lo].pop(0)
            size = min(adder.hi + 2, width) - adder.lo
            total = builder.wire(total, size)
            for k in range(size):
                produced[adder.lo + k].append(total[k])
        for weight in range(width):
            produced[weight] += columns[weight]
        flat = builder.end_level([bit for column in produced for bit in column])
        columns = []
        for column in produced:
            columns.append(flat[:len(column)])
            flat = flat[len(column):]
    return Cat(*(column[0] if column else Const(0, 1) for column in columns))


@lru_cache(maxsize=None)
def _group_sizes(lanes: int, style: str) -> tuple[int, ...]:
    """Lanes per first-level group, in lane order: groups of 3, 2 and 1 lanes (at most
    two of 1) in the mix whose first-level LUTs (``_GROUP_LUTS``) plus ``_carry_plan``'s
    are fewest; then the fewest levels, then the fewest 2-lane groups (fewer heap bits).

    Every group puts a bit in column 0, and one in column 1 from two lanes, so 2-lane
    groups raise the heap's capacity above ``lanes`` (see the module docstring)."""
    def mix(pairs: int) -> tuple[int, ...]:
        threes, ones = divmod(lanes - 2 * pairs, 3)
        return (3,) * threes + (2,) * pairs + (1,) * ones

    return min((mix(pairs) for pairs in range(lanes // 2 + 1)),
               key=lambda sizes: _mix_cost(sizes, style))


def _mix_cost(sizes: tuple[int, ...], style: str) -> tuple[int, int]:
    """(LUTs, heap levels) of counters of ``sizes`` lanes and their carry heap."""
    width = sum(sizes).bit_length()
    counts = [len(sizes), sum(size > 1 for size in sizes)] + [0] * width
    levels = _carry_plan(tuple(counts[:width]))
    return (sum(_GROUP_LUTS[style][size] for size in sizes) + _plan_luts(levels, width),
            len(levels))


def _groups(lanes: int, style: str) -> list[range]:
    """The first level's groups of lanes: ``_group_sizes`` for the carry-heap styles;
    groups of three and the remainder for ``"counter6"``."""
    if style == "counter6":
        return [range(start, min(start + _GROUP, lanes)) for start in range(0, lanes, _GROUP)]
    ranges, start = [], 0
    for size in _group_sizes(lanes, style):
        ranges.append(range(start, start + size))
        start += size
    return ranges


def feature_width(lanes: int, style: str) -> int:
    """Bits of ``activation_features`` for ``lanes`` lanes: ``lanes`` plus one parity bit
    per full 3-lane group for ``"shared4"``; ``lanes`` for the other styles."""
    _check(lanes, style, 0)
    if style != "shared4":
        return lanes
    return lanes + _group_sizes(lanes, style).count(_GROUP)


def activation_features(a: Value, style: str) -> Value:
    """The activation encoding ``xnor_popcount(..., encoded=True)`` expects (pure logic,
    ``feature_width`` bits). ``"shared4"``, per group of lanes ``(a1, a2, a3)`` (the
    last group may hold fewer): ``a1, a1^a2, a1^a3`` then, for a full group,
    ``a1^a2^a3``. Other styles: ``a`` itself."""
    _check(len(a), style, 0)
    if style != "shared4":
        return a
    # One XOR of two rearrangements of ``a`` (one operator, so the Verilog names it as a
    # single net): left = a1 repeated, right = (0, a2, a3, a2^a3).
    left, right = [], []
    for group in _groups(len(a), style):
        first = a[group[0]]
        left += [first] * len(group)
        right += [Const(0, 1)] + [a[k] for k in group[1:]]
        if len(group) == _GROUP:
            left.append(first)
            right.append(a[group[1]] ^ a[group[2]])
    return Cat(*left) ^ Cat(*right)


def encode_weight_word(word: int, lanes: int, style: str) -> int:
    """A ``lanes``-bit weight word as ``xnor_popcount(..., encoded=True)`` expects it.
    ``"shared4"``, per group ``(w1, w2, w3)``: ``(w1, w1^w2, w1^w3)`` (a bijection, same
    width: a weight ROM stores it instead of the plain word). Other styles: ``word``."""
    _check(lanes, style, 0)
    if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << lanes:
        raise ConfigError(f"word: expected an integer in [0, 2**{lanes}), got {word!r}")
    if style != "shared4":
        return word
    encoded = 0
    for group in _groups(lanes, style):
        first = (word >> group[0]) & 1
        encoded |= first << group[0]
        for k in group[1:]:
            encoded |= (first ^ ((word >> k) & 1)) << k
    return encoded


def _shared_counters(builder: _Builder, features: Value, w: Value) -> dict[int, list[Value]]:
    """The bit heap of the groups' counts from features and encoded weights
    (``"shared4"``)."""
    first_level, later = [], []  # later: how to finish each group after the register
    position = 0
    for group in _groups(len(w), "shared4"):
        f = [features[position + k] for k in range(len(group) + (len(group) == _GROUP))]
        position += len(f)
        v = [w[k] for k in group]
        if len(group) == 1:
            first_level.append(builder.wire(~(f[0] ^ v[0]), 1))
            later.append(("one", 1))
        elif len(group) == 2:
            e12 = f[1] ^ v[1]  # = x1 ^ x2: the two XNORs differ
            first_level += [builder.wire(e12, 1), builder.wire(~e12 & ~(f[0] ^ v[0]), 1)]
            later.append(("two", 2))
        else:
            parity = builder.wire(~(f[3] ^ v[0] ^ v[1] ^ v[2]), 1)
            both = builder.wire((f[1] ^ v[1]) & (f[2] ^ v[2]), 1)  # e12 & e13
            # a1 and w1 go through this level unchanged: bit1 needs them after the register,
            # so that Yosys cannot spread the 6-input bit1 over more than two LUTs.
            first_level += [parity, both, f[0], v[0]]
            later.append(("three", 4))
    registered = builder.end_level(first_level)
    heap: dict[int, list[Value]] = defaultdict(list)
    position = 0
    for kind, size in later:
        values = registered[position:position + size]
        position += size
        if kind == "one":
            heap[0].append(values[0])
        elif kind == "two":
            heap[0].append(values[0])
            heap[1].append(values[1])
        else:
            parity, both, a1, w1 = values
            heap[0].append(parity)
            heap[1].append(builder.wire(~(a1 ^ w1) ^ both, 1))
    return heap


def xnor_popcount(m: Module, a: Value, w: Value, *, style: str = "counter6",
                  register_every: int = 0, enable: Value = Const(1),
                  name: str = "popcount", encoded: bool = False) -> tuple[Value, int]:
    """Build ``popcount(~(a ^ w))`` into ``m``.

    Returns ``(count, stages)``: ``count`` is an unsigned value of ``lanes.bit_length()``
    bits (wider for ``"plain"`` and ``"counter6"``), valid ``stages`` clock cycles (of
    those where ``enable`` is high) after ``a`` and ``w``. Registers sit after every
    ``register_every``-th reduction level (0: none, the whole tree combinational).

    ``encoded=True``: ``a`` is ``activation_features(a_bits, style)`` and ``w`` is the
    ``encode_weight_word`` of the weights (both identities except for ``"shared4"``);
    ``lanes = len(w)``. ``encoded=False``: ``a`` and ``w`` are the plain bits.
    """
    lanes = len(w)
    _check(lanes, style, register_every)
    if encoded:
        if len(a) != feature_width(lanes, style):
            raise ConfigError(f"a: expected feature_width({lanes}, {style!r}) = "
                              f"{feature_width(lanes, style)} feature bits, got {len(a)}")
    elif len(a) != lanes:
        raise ConfigError(f"w: expected {len(a)} bits like a, got {lanes}")
    builder = _Builder(m, enable, register_every, name)
    width = lanes.bit_length()
    if style == "shared4":
        if not encoded:
            features = builder.wire(activation_features(a, style), feature_width(lanes, style))
            weights = builder.wire(
                Cat(*(_encode_lanes(w, group) for group in _groups(lanes, style))), lanes)
            a, w = features, weights
        count = _carry_reduce(builder, _shared_counters(builder, a, w), width)
    elif style == "plain":
        xnor = builder.wire(~(a ^ w), lanes)
        count = _adder_tree(builder, builder.end_level([xnor[i] for i in range(lanes)]))
    else:
        counts = _lane_counters(builder, a, w, _groups(lanes, style))
        if style == "counter6" and lanes <= _GROUP:
            count = Cat(*builder.end_level(counts[0]))
        else:
            flat = builder.end_level([bit for bits in counts for bit in bits])
            heap: dict[int, list[Value]] = defaultdict(list)
            position = 0
            for bits in counts:
                for weight in range(len(bits)):
                    heap[weight].append(flat[position])
                    position += 1
            if style == "counter4":
                count = _carry_reduce(builder, heap, width)
            else:
                count = _heap_reduce(builder, heap)
    return count, builder.stages


def _encode_lanes(w: Value, group: range) -> Value:
    first = w[group[0]]
    return Cat(first, *(first ^ w[k] for k in group[1:]))


def popcount_stages(lanes: int, style: str, register_every: int) -> int:
    """The ``stages`` ``xnor_popcount`` gives for these parameters (elaborates a throw-away
    module; no simulation or synthesis)."""
    m = Module()
    _, stages = xnor_popcount(m, Signal(lanes), Signal(lanes), style=style,
                              register_every=register_every)
    return stages


def planned_luts(lanes: int, style: str) -> int | None:
    """The LUT4s one PE's ``xnor_popcount`` is planned for with a carry heap
    (``"counter4"``, ``"shared4"``): first-level counters (``_GROUP_LUTS``) plus the heap's
    adders. Not included: ``"shared4"``'s shared features. None for the styles whose LUTs
    only Yosys counts (``"plain"``, ``"counter6"``)."""
    _check(lanes, style, 0)
    if style not in _GROUP_LUTS:
        return None
    return _mix_cost(_group_sizes(lanes, style), style)[0]


class XnorPopcount(wiring.Component):
    """A stand-alone XNOR-popcount datapath (benchmarks and tests).

    Parameters
    ----------
    lanes : int
        Bit pairs per cycle.
    style : {"plain", "counter6", "counter4", "shared4"}
        ``"shared4"`` here encodes ``a`` and ``w`` itself (no sharing: see
        ``XnorPopcountArray`` for its intended use).
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


class XnorPopcountArray(wiring.Component):
    """``pe`` XNOR-popcount datapaths that see the same activation word, as in
    ``XnorPopcountMVU`` (benchmarks and tests).

    The activation features are built once and registered (the MVU's input buffer read),
    each PE's weight word is registered (the MVU's ROM read), then each PE has its own
    ``xnor_popcount(..., encoded=True)``.

    Members
    -------
    a : In(lanes)
        Plain activation bits.
    w : In(pe · lanes)
        PE ``p``'s word at bits ``[p·lanes, (p+1)·lanes)``, already
        ``encode_weight_word``-encoded (as a weight ROM holds it).
    en : In(1)
        Advances every register.
    count : Out(pe · (lanes.bit_length()))
        PE ``p``'s ``popcount(~(a ^ w_p))`` (plain weights) at bits ``[p·c, (p+1)·c)``,
        ``c = lanes.bit_length()``, ``latency`` enabled cycles after ``a`` and ``w``.
    """

    def __init__(self, lanes: int, pe: int, *, style: str = "counter6",
                 register_every: int = 1):
        _check(lanes, style, register_every)
        if isinstance(pe, bool) or not isinstance(pe, int) or pe < 1:
            raise ConfigError(f"pe: expected an integer ≥ 1, got {pe!r}")
        self.lanes, self.pe, self.style, self.register_every = lanes, pe, style, register_every
        self.count_width = lanes.bit_length()
        super().__init__({"a": In(lanes), "w": In(pe * lanes), "en": In(1),
                          "count": Out(pe * self.count_width)})

    @property
    def latency(self) -> int:
        """Input registers + tree stages + output register."""
        return popcount_stages(self.lanes, self.style, self.register_every) + 2

    def elaborate(self, platform) -> Module:
        m = Module()
        features = Signal(feature_width(self.lanes, self.style))
        weights = Signal(self.pe * self.lanes)
        with m.If(self.en):
            m.d.sync += [features.eq(activation_features(self.a, self.style)),
                         weights.eq(self.w)]
        counts = []
        for p in range(self.pe):
            count, _ = xnor_popcount(m, features, weights[p * self.lanes:(p + 1) * self.lanes],
                                     style=self.style, register_every=self.register_every,
                                     enable=self.en, name=f"popcount_pe{p}", encoded=True)
            counts.append(count[:self.count_width])
        with m.If(self.en):
            m.d.sync += self.count.eq(Cat(*counts))
        return m
