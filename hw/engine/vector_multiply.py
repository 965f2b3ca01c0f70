"""The engine's vector multiplier: ``saturate(round_shift(mul·x + bias, shift), out_width)``
per lane, each lane's multiply-add in one iCE40 ``SB_MAC16``.

This is ``binaryvit.golden.intref.affine`` (the affine and RPReLU steps of the integer
program, and any other per-channel scale) with the constants and the shift as run-time
operands, so one unit serves every layer. ``synth_ice40 -dsp`` packs a lane's input
registers, 16×16 signed multiply, 32-bit post-adder and output register into one
``SB_MAC16`` only if those registers have no reset (``ARCHITECTURE.md`` §6): here they are
``reset_less`` and their clock enable becomes the DSP's hold inputs.
"""
from typing import Any

import torch
from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden import intref
from binaryvit.golden.intref.validation import as_int_tensor

__all__ = ["VectorMultiply", "vector_multiply_input_layout"]

MUL_WIDTH = 16          # SB_MAC16's A and B
DSP_ACCUMULATOR = 32    # its post-adder and output register


def _round_and_saturate(doubled: Value, width: int) -> Value:
    """``saturate((doubled >> 1) + doubled[0], width)`` with a ``width``-bit increment only.

    With ``q = doubled >> 1`` and ``r = doubled[0]``: when ``q`` fits in ``width`` bits (its
    bits from ``width − 1`` up all equal), the result is ``q + r`` unless ``q`` is already the
    largest value and ``r`` is 1; when it does not fit, ``q + r`` does not either (a ``q``
    below the range is at most one under it, and the low clamp is the answer then too), so
    the result is the clamp on ``q``'s sign. No carry chain is longer than ``width``.
    """
    q = doubled[1:]
    r = doubled[0]
    top = q[width - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    clamp = Mux(q[-1], Const(low, signed(width)), Const(high, signed(width)))
    at_high = q[:width] == (1 << (width - 1)) - 1
    incremented = (q[:width].as_signed() + r)[:width].as_signed()
    return Mux(fits & ~(at_high & r), incremented, clamp)


def vector_multiply_input_layout(lanes: int, shift_width: int, x_width: int = 16,
                                 accumulator_width: int = DSP_ACCUMULATOR) -> data.StructLayout:
    """One input word: ``x`` (signed ``x_width``), ``mul`` (signed 16-bit), ``bias`` (signed
    ``accumulator_width``) per lane, and the word's ``shift``."""
    return data.StructLayout({
        "x": data.ArrayLayout(signed(x_width), lanes),
        "mul": data.ArrayLayout(signed(MUL_WIDTH), lanes),
        "bias": data.ArrayLayout(signed(accumulator_width), lanes),
        "shift": unsigned(shift_width),
    })


class VectorMultiply(wiring.Component):
    """``lanes`` signed multiply-add-round-shift-saturate lanes on a stream.

    Each lane computes ``saturate(round_shift(mul·x + bias, shift), out_width)`` exactly as
    ``intref.affine`` (round half up: add ``2^(shift−1)``, arithmetic shift right; clamp to
    the signed ``out_width`` range).

    Parameters
    ----------
    lanes : int
        Lanes (the UP5K has 8 ``SB_MAC16``).
    out_width : int
        Signed output width, 2…32.
    max_shift : int
        Largest shift the ``shift`` field can carry (0…63, default 31); sets its width.
    x_width : int
        Signed width of ``x``, 2…18 (default 16). Up to 16 a lane is one ``SB_MAC16``; 17
        and 18 (the engine's pool-branch window sums) take two, Yosys splitting the
        multiply (``mul2dsp``) and adding the halves and the bias in logic.
    accumulator_width : int
        Signed width of ``bias`` and of ``mul·x + bias``, 32…48 (default 32, the DSP's own
        adder; the engine's UP5K configuration uses 36).

    Members
    -------
    i : In(stream.Signature(vector_multiply_input_layout(lanes, shift_width, x_width, accumulator_width)))
        ``x`` signed ``x_width``, ``mul`` signed 16-bit, ``bias`` signed
        ``accumulator_width``, per lane; ``shift`` unsigned. ``mul·x + bias`` must fit the
        accumulator (``model()`` refuses what would wrap); with the defaults any
        ``|bias| < 2^30`` does, whatever ``x`` and ``mul``.
    o : Out(stream.Signature(data.ArrayLayout(signed(out_width), lanes)))

    Timing: ``latency`` = 4 cycles (DSP input registers; DSP multiply-add into its output
    register; the variable shift in logic; round and saturate into the output register);
    one word per cycle. A global stall (``i.ready = ~o.valid | o.ready``) holds every stage while the
    output waits.

    Rounding without an adder in front of the DSP: for ``s ≥ 1``,
    ``(v + 2^(s−1)) >> s == ((v·2 >> s) + 1) >> 1``, and for ``s = 0`` the right side is
    ``v``; so the logic after the DSP shifts ``2v`` by ``s`` (one stage), then halves and adds
    the bit shifted out (the next), with the saturation decided from the high bits so no
    carry chain is longer than ``out_width`` (``_round_and_saturate``). Each stage is
    about 5 logic levels on the iCE40 (see ``docs/engine-hardware.md`` for Fmax).
    """

    latency = 4

    def __init__(self, *, lanes: int = 1, out_width: int = 16, max_shift: int = 31,
                 x_width: int = 16, accumulator_width: int = DSP_ACCUMULATOR):
        for name, value, low, high in (("lanes", lanes, 1, 8), ("out_width", out_width, 2, 32),
                                       ("max_shift", max_shift, 0, 63), ("x_width", x_width, 2, 18),
                                       ("accumulator_width", accumulator_width, 32, 48)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
        self.lanes = lanes
        self.out_width = out_width
        self.max_shift = max_shift
        self.x_width = x_width
        self.accumulator_width = accumulator_width
        self.shift_width = max(max_shift.bit_length(), 1)
        self.input_layout = vector_multiply_input_layout(lanes, self.shift_width, x_width,
                                                         accumulator_width)
        self.output_layout = data.ArrayLayout(signed(out_width), lanes)
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        valid_in = Signal()
        valid_dsp = Signal()
        valid_shifted = Signal()
        shift_in = Signal(self.shift_width, reset_less=True)
        shift_dsp = Signal(self.shift_width, reset_less=True)
        with m.If(advance):
            m.d.sync += [
                valid_in.eq(self.i.valid),
                valid_dsp.eq(valid_in),
                valid_shifted.eq(valid_dsp),
                self.o.valid.eq(valid_shifted),
                shift_in.eq(self.i.payload.shift),
                shift_dsp.eq(shift_in),
            ]

        for lane in range(self.lanes):
            # No reset on anything the DSP absorbs, or Yosys leaves the multiplier in LUTs.
            width = self.accumulator_width
            x = Signal(signed(self.x_width), name=f"lane{lane}_x", reset_less=True)
            mul = Signal(signed(MUL_WIDTH), name=f"lane{lane}_mul", reset_less=True)
            bias = Signal(signed(width), name=f"lane{lane}_bias", reset_less=True)
            accumulator = Signal(signed(width), name=f"lane{lane}_acc", reset_less=True)
            doubled = Signal(signed(width + 1), name=f"lane{lane}_doubled_shifted",
                             reset_less=True)
            result = Signal(signed(self.out_width), name=f"lane{lane}_result", reset_less=True)
            with m.If(advance):
                m.d.sync += [
                    x.eq(self.i.payload.x[lane]),
                    mul.eq(self.i.payload.mul[lane]),
                    bias.eq(self.i.payload.bias[lane]),
                    accumulator.eq(x * mul + bias),
                    doubled.eq((accumulator * 2) >> shift_dsp),
                    result.eq(_round_and_saturate(doubled, self.out_width)),
                ]
            m.d.comb += self.o.payload[lane].eq(result)
        return m

    def model(self, x: Any, mul: Any, bias: Any, shift: int) -> torch.Tensor:
        """Bit-exact output for ``x``, ``mul``, ``bias`` of one shape (``[..., lanes]`` or any)
        and one ``shift``: ``intref.affine`` with each element its own channel.

        Raises ``DataError`` for an operand outside its width or a ``mul·x + bias`` that
        does not fit the accumulator (the hardware would wrap).
        """
        tx, tm, tb = (as_int_tensor(v, n) for v, n in
                      ((x, "x"), (mul, "mul"), (bias, "bias")))
        if not tx.shape == tm.shape == tb.shape:
            raise DataError(f"x, mul, bias: expected one shape, got {tuple(tx.shape)}, "
                            f"{tuple(tm.shape)}, {tuple(tb.shape)}")
        if not 0 <= shift <= self.max_shift:
            raise DataError(f"shift: expected 0 to {self.max_shift}, got {shift}")
        for tensor, name, width in ((tx, "x", self.x_width), (tm, "mul", MUL_WIDTH),
                                    (tb, "bias", self.accumulator_width)):
            low, high = intref.signed_range(width)
            if tensor.numel() and (tensor.min() < low or tensor.max() > high):
                raise DataError(f"{name}: outside the signed {width}-bit range")
        low, high = intref.signed_range(self.accumulator_width)
        total = tm * tx + tb
        if total.numel() and (total.min() < low or total.max() > high):
            raise DataError(f"mul·x + bias: outside the signed {self.accumulator_width}-bit accumulator")
        flat = intref.affine(tx.reshape(-1), tm.reshape(-1), tb.reshape(-1), shift, self.out_width)
        return flat.reshape(tx.shape)
