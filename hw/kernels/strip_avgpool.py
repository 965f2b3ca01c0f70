"""``StripAvgPool``: 1×k and k×1 average pooling, stride 1, zero padding (k−1)/2, streaming.

The multi-pooling branches of the BinaryViT MLP (1×3, 3×1, 1×5, 5×1). Integer definition:
``binaryvit.golden.intref.avgpool2d`` with stride 1 and padding ``(k−1)/2`` on the long side
of the window; padding is zero and counts in the divisor (``mul / 2^shift ≈ 1/k``).
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory

from binaryvit.errors import ConfigError
from binaryvit.golden import intref
from binaryvit.hw.kernels.average_pool import AveragePool, register_averages
from binaryvit.hw.kernels.multiply_round_shift import sum_width
from binaryvit.hw.kernels.parameter_checks import check_int
from binaryvit.hw.kernels.position_counter import position_counter


def strip_geometry(height: int, width: int, words_per_token: int, kernel_h: int,
                   kernel_w: int) -> tuple[int, int]:
    """``(q, U)`` of a ``StripAvgPool``: the units its output lags its input (``q``, 0 when
    the pooled axis is one long: no delay line, no flush) and the words of a unit (``U``:
    a token's words for 1×k, a grid row's for k×1)."""
    vertical = kernel_w == 1
    length, axis = (kernel_h, height) if vertical else (kernel_w, width)
    return min((length - 1) // 2, axis - 1), width * words_per_token if vertical else words_per_token


class StripAvgPool(AveragePool):
    """Average pooling over a ``kernel_h × kernel_w`` strip (one side 1, the other odd k ≥ 3).

    Output token ``(i, j)`` (same ``H × W`` grid) is ``saturate(round_shift(S·mul, shift),
    out_width)`` per channel, ``S`` the sum of the ``k`` inputs centred on ``(i, j)`` along
    the row (1×k) or the column (k×1), inputs outside the grid counting as zero.

    Parameters
    ----------
    height, width : int
        The token grid.
    channels, lanes : int
        Channels per token and per stream word (``lanes`` divides ``channels``).
    kernel_h, kernel_w : int
        ``(1, k)`` pools along rows, ``(k, 1)`` along columns; ``k`` odd, ``3 ≤ k``. ``k``
        may exceed the grid: the window then covers the whole row (column).
    in_width, out_width : int
        Signed element widths of the input and output words, in ``[2, 63]``.
    mul, shift : int
        The divisor as ``mul / 2^shift``; ``shift`` in ``[0, 62]``.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(in_width, lanes)))``
        ``H·W·C/lanes`` words per image in raster order; ``last`` is not used.
    o : ``Out(stream.Signature(fixed_point_layout(out_width, lanes)))``
        ``H·W·C/lanes`` words per image in raster order; ``last`` on the final one.

    Along the pooled axis (columns for 1×k, rows for k×1, ``A`` positions) a *unit* is the
    ``U`` words at one position: a token's ``C/lanes`` words (1×k) or a grid row's
    ``W·C/lanes`` words (k×1). Output unit ``n`` (raster order) needs input units up to
    ``n + q``, ``q = min((k − 1)/2, A − 1)`` (a window never reaches further inside the
    grid), so the output lags the input by exactly ``lag = q·U`` words: each step takes an
    input word and emits the output word ``lag`` words back, across rows and images too
    (the next row's or image's first ``q`` units carry the previous one's last ``q``
    output units). A delay line keeps the previous ``2q`` inputs of each of the ``U`` word
    positions, ``2q·lanes`` elements per entry, in a memory with a synchronous read port
    (block RAM; a register when ``U = 1``): a step issues the read of its entry, and the
    next cycle sums the window (taps outside the output's row or column masked to zero:
    the padding) and writes the shifted entry back.

    When no input is waiting at an image boundary (after the last image of a stream, or
    while the producer pauses) the kernel emits the image's last ``q`` output units by
    itself, flushing zero steps a unit at a time, so an image never waits for the next
    one; the units of the tail left when input arrives ride on the next image's first
    units as usual, and an image that follows a whole flush starts with ``q`` units that
    emit nothing.

    Cycles per image with no stalls: ``H·W·C/lanes`` (``cycles_per_image``), one word in
    and one out per cycle. ``latency`` = ``lag + 2``: cycles from an input word to the
    output word at the same position, with no stalls (the one-time fill of a stream).
    """

    def __init__(self, *, height: int, width: int, channels: int, lanes: int, kernel_h: int,
                 kernel_w: int, in_width: int, out_width: int, mul: int, shift: int):
        self.height = check_int(height, "height", 1)
        self.width = check_int(width, "width", 1)
        self.kernel_h = check_int(kernel_h, "kernel_h", 1)
        self.kernel_w = check_int(kernel_w, "kernel_w", 1)
        if (self.kernel_h == 1) == (self.kernel_w == 1):
            raise ConfigError(f"kernel_h, kernel_w: exactly one must be 1 (a 1×k or k×1 strip), "
                              f"got {self.kernel_h}×{self.kernel_w}")
        self.vertical = self.kernel_w == 1
        self.length = self.kernel_h if self.vertical else self.kernel_w
        name = "kernel_h" if self.vertical else "kernel_w"
        if self.length % 2 == 0:
            raise ConfigError(f"{name}: the strip length must be odd (3, 5, 7, …) so the window "
                              f"centres on its token, got {self.length}")
        super().__init__(channels=channels, lanes=lanes, in_width=in_width, out_width=out_width,
                         mul=mul, shift=shift)
        self.pad = (self.length - 1) // 2
        self.axis_length = self.height if self.vertical else self.width
        self.reach, self.unit_words = strip_geometry(self.height, self.width,
                                                     self.words_per_token, self.kernel_h,
                                                     self.kernel_w)

    @property
    def lag(self) -> int:
        """Words between an input word and the output word the same step emits: ``q·U``."""
        return self.reach * self.unit_words

    @property
    def latency(self) -> int:
        """Cycles from an input word to the output word at its position (no stalls): ``lag + 2``."""
        return self.lag + 2

    @property
    def words_per_image(self) -> int:
        """Input and output words per image (the grid does not change)."""
        return self.height * self.width * self.words_per_token

    @property
    def cycles_per_image(self) -> int:
        """Cycles per image in steady state with no bubbles or back-pressure."""
        return self.words_per_image

    def model(self, x: Any) -> torch.Tensor:
        """Expected output tokens ``[B, H·W, C]`` for input tokens ``x[B, H·W, C]``."""
        grid = intref.tokens_to_grid(x, self.height, self.width)
        pooled = intref.avgpool2d(grid, self.kernel_h, self.kernel_w, 1,
                                  (self.kernel_h - 1) // 2, (self.kernel_w - 1) // 2,
                                  self.mul, self.shift, self.out_width)
        return intref.grid_to_tokens(pooled)

    def elaborate(self, platform):
        m = Module()
        q, units, unit_words = self.reach, self.axis_length, self.unit_words
        lines = 1 if self.vertical else self.height
        delays = 2 * q  # q = 0 exactly when the pooled axis is one long: no delay line
        element = data.ArrayLayout(signed(self.in_width), self.lanes)

        # Positions (a position of extent 1 has no counter: None, always 0): ``step`` the
        # word within the unit (the delay-line entry), shared by every step; ``in_*`` the
        # unit the next input word belongs to, ``out_*`` the unit of the next output word
        # (``line``: rows for 1×k, the whole image for k×1).
        step = _counter(unit_words, "step")
        in_axis, in_line = (_counter(units, "in_axis"), _counter(lines, "in_line")) if q else (None, None)
        out_axis, out_line = _counter(units, "out_axis"), _counter(lines, "out_line")
        first_step, final_step = _is(step, 0), _is(step, unit_words - 1)
        out_final = _all(_is(out_axis, units - 1), _is(out_line, lines - 1))

        # ``lead``: units the delay line runs ahead of the output, within the output's
        # image. A step emits once it is ``q``. At an image boundary with no input waiting,
        # the kernel flushes zero units to finish the image (``flush``; ``flushing`` holds
        # it for the rest of the unit).
        issue = Signal()
        advance = Signal()
        lead = emits = flush = flushing = None
        if q:
            lead = Signal(range(q + 1))
            emits = lead == q
            flush = Signal()
            flushing = Signal(name="flushing") if unit_words > 1 else None
            may_flush = _all(emits, in_axis == 0, _is(in_line, 0), first_step, ~self.i.valid)
            m.d.comb += flush.eq(may_flush if flushing is None else flushing | may_flush)
        m.d.comb += [
            self.i.ready.eq(advance if flushing is None else advance & ~flushing),
            issue.eq(advance & (self.i.valid if flush is None else self.i.valid | flush)),
        ]

        # Stage A issues the step (and the read of its delay-line entry); stage B sums the
        # window into the output register and shifts the new word into the entry.
        b_valid = Signal()
        b_newest = Signal(element)
        b_emits = Signal(name="b_emits") if q else None
        b_last = Signal()
        b_fires = Signal()
        output_free = ~self.o.valid | self.o.ready
        m.d.comb += [
            b_fires.eq(b_valid & (output_free if b_emits is None else ~b_emits | output_free)),
            advance.eq(~b_valid | b_fires),
        ]
        taps = [b_newest]
        if delays:
            history_layout = data.ArrayLayout(element, delays)
            if unit_words > 1:
                m.submodules.history = history = Memory(shape=history_layout, depth=unit_words,
                                                        init=[])
                write = history.write_port()
                read = history.read_port()
                b_address = Signal.like(read.addr)
                m.d.comb += [read.en.eq(advance), read.addr.eq(step), write.addr.eq(b_address),
                             write.en.eq(b_fires), write.data[0].eq(b_newest)]
                m.d.comb += [write.data[d].eq(read.data[d - 1]) for d in range(1, delays)]
                with m.If(issue):
                    m.d.sync += b_address.eq(step)
                entry = read.data
            else:
                # One word per unit: the delay line is a single entry, a register.
                entry = Signal(history_layout)
                with m.If(b_fires):
                    m.d.sync += [entry[0].eq(b_newest)]
                    m.d.sync += [entry[d].eq(entry[d - 1]) for d in range(1, delays)]
            taps += [entry[d] for d in range(delays)]

            # Tap d of the output at axis position a is the input at a + q − d: inside the
            # output's line (else zero padding) when 0 ≤ a + q − d ≤ A − 1; bounds that
            # always hold are left out.
            b_inside = Signal(delays + 1)
            inside = [_all(out_axis >= d - q if d > q else None,
                           out_axis <= units - 1 - q + d if d < q else None)
                      for d in range(delays + 1)]
            with m.If(issue):
                m.d.sync += b_inside.eq(Cat(_value(bit) for bit in inside))

        sums = Signal(data.ArrayLayout(signed(sum_width(self.in_width, delays + 1)), self.lanes))
        for lane in range(self.lanes):
            terms = [Mux(b_inside[d], tap[lane], 0) for d, tap in enumerate(taps)] if delays \
                else [b_newest[lane]]
            m.d.comb += sums[lane].eq(sum(terms))
        register_averages(m, self.o, sums, fire=b_fires if b_emits is None else b_fires & b_emits,
                          last=b_last, mul=self.mul, shift=self.shift)

        with m.If(advance):
            m.d.sync += b_valid.eq(issue)
        with m.If(issue):
            m.d.sync += [b_newest.eq(self.i.payload.data if flush is None
                                     else Mux(flush, 0, self.i.payload.data)),
                         b_last.eq(_value(_all(emits, out_final, final_step)))]
            _increment(m, [(step, unit_words)])
            if q:
                m.d.sync += b_emits.eq(emits)
                if flushing is not None:
                    m.d.sync += flushing.eq(flush & ~final_step)
                with m.If(_all(~flush, final_step)):
                    _increment(m, [(in_axis, units), (in_line, lines)])
                # The image's last output unit: the lead restarts at the units of the next
                # image already taken (none after a flush).
                with m.If(_all(emits, out_final, final_step)):
                    m.d.sync += lead.eq(Mux(flush, 0, in_axis + 1))
                with m.Elif(_all(~flush, ~emits, final_step)):
                    m.d.sync += lead.eq(lead + 1)
            with _when(m, _all(emits, final_step)):
                _increment(m, [(out_axis, units), (out_line, lines)])
        return m


def _counter(extent: int, name: str) -> Signal | None:
    """A position counter for ``0 … extent − 1``, or None when the extent is 1 (always 0)."""
    return position_counter(extent, name) if extent > 1 else None


def _is(counter: Signal | None, value: int) -> Value | None:
    """``counter == value``; None (true) for a missing counter."""
    return None if counter is None else counter == value


def _all(*terms: Value | None) -> Value | None:
    """The AND of the terms that exist; None (true) when none does. Keeps constant
    conditions out of the Verilog (an unused constant wire is a lint warning)."""
    present = [term for term in terms if term is not None]
    if not present:
        return None
    result = present[0]
    for term in present[1:]:
        result = result & term
    return result


def _when(m: Module, condition: Value | None):
    """``m.If(condition)``, or no condition when it always holds (None)."""
    return contextlib.nullcontext() if condition is None else m.If(condition)


def _value(condition: Value | None) -> Value:
    """A condition as a value: 1 for a missing (always true) one."""
    return Const(1) if condition is None else condition


def _increment(m: Module, digits: list[tuple[Signal | None, int]]) -> None:
    """Add one to a position written as digits (fastest first, each wrapping at its extent)."""
    digits = [(digit, extent) for digit, extent in digits if digit is not None]
    if not digits:
        return
    (digit, extent), rest = digits[0], digits[1:]
    m.d.sync += digit.eq(Mux(digit == extent - 1, 0, digit + 1))
    if rest:
        with m.If(digit == extent - 1):
            _increment(m, rest)
