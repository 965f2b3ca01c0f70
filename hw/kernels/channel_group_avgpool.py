"""``ChannelGroupAvgPool``: average of adjacent channel groups, per token, streaming.

The MLP shortcut ``AvgPool1d_{m/C}`` that brings ``m`` expanded channels back to ``C``.
Integer definition: ``binaryvit.golden.intref.channel_group_avgpool`` (``mul / 2^shift ≈
1/group``).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.golden import intref
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.kernels.average_pool import register_averages
from binaryvit.hw.kernels.multiply_round_shift import check_scale, sum_width
from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.kernels.position_counter import position_counter
from binaryvit.hw.streams.fixed_point_stream import decode_fixed_point, encode_fixed_point, fixed_point_layout


class ChannelGroupAvgPool(wiring.Component):
    """Output channel ``c`` is ``saturate(round_shift(S·mul, shift), out_width)``, ``S`` the sum
    of input channels ``c·group … c·group + group − 1`` of the same token.

    Parameters
    ----------
    channels : int
        Input channels per token; ``group`` divides it, ``channels / group`` come out.
    group : int
        Channels averaged into one (``≥ 2``).
    lanes : int
        Input channels per word. Either a multiple of ``group`` (each input word gives
        one output word of ``out_lanes = lanes / group`` channels) or a divisor of
        ``group`` (``group / lanes`` input words give one output word of
        ``out_lanes = 1`` channel). ``lanes`` divides ``channels``.
    in_width, out_width : int
        Signed element widths of the input and output words, in ``[2, 63]``.
    mul, shift : int
        The divisor as ``mul / 2^shift``; ``shift`` in ``[0, 62]``.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(in_width, lanes)))``
        Tokens of ``channels/lanes`` words; ``last`` is copied to the output word the
        image's final input word completes.
    o : ``Out(stream.Signature(fixed_point_layout(out_width, out_lanes)))``
        Tokens of ``channels/(group·out_lanes)`` words, the same tokens as the input.

    Throughput: one input word per cycle (no stall of its own). Latency: 1 cycle from the
    input word that completes an output word. The kernel does not count tokens, so it
    pools any number of tokens per image.
    """

    def __init__(self, *, channels: int, group: int, lanes: int, in_width: int,
                 out_width: int, mul: int, shift: int):
        self.channels = check_int(channels, "channels", 1)
        self.group = check_int(group, "group", 2)
        if self.channels % self.group:
            raise ConfigError(f"group: must divide channels = {self.channels}; valid values are "
                              f"{divisors(self.channels)[1:]}, got {self.group}")
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        if self.lanes % self.group and self.group % self.lanes:
            raise ConfigError(f"lanes: must be a multiple or a divisor of group = {self.group} "
                              f"(so output words hold whole groups), got {self.lanes}")
        self.in_width = check_width(in_width, "in_width")
        self.out_width = check_width(out_width, "out_width")
        self.mul, self.shift = check_scale(mul, shift)
        self.out_channels = self.channels // self.group
        self.out_lanes = max(self.lanes // self.group, 1)
        self.words_per_output = max(self.group // self.lanes, 1)
        self.sum_width = sum_width(self.in_width, self.group)
        super().__init__({
            "i": In(stream.Signature(fixed_point_layout(self.in_width, self.lanes))),
            "o": Out(stream.Signature(fixed_point_layout(self.out_width, self.out_lanes))),
        })

    @property
    def latency(self) -> int:
        """Cycles from the input word that completes an output word to that word being valid."""
        return 1

    def model(self, x: Any) -> torch.Tensor:
        """Expected output ``[B, T, channels/group]`` for input ``x[B, T, channels]``."""
        return intref.channel_group_avgpool(x, self.group, self.mul, self.shift, self.out_width)

    def encode_input(self, x: Any) -> list[int]:
        """Input tokens ``[B, T, channels]`` → flat input words."""
        return encode_fixed_point(x, self.in_width, self.lanes)

    def encode_output(self, y: Any) -> list[int]:
        """Output tokens ``[B, T, channels/group]`` → flat output words."""
        return encode_fixed_point(y, self.out_width, self.out_lanes)

    def decode_output(self, words: Sequence[int]) -> torch.Tensor:
        """Flat output words → output tokens ``[B, T, channels/group]``."""
        return decode_fixed_point(words, self.out_width, self.out_lanes, self.out_channels)

    def elaborate(self, platform):
        m = Module()
        lanes_per_sum = min(self.lanes, self.group)
        partial_layout = data.ArrayLayout(signed(self.sum_width), self.out_lanes)
        partial = Signal(partial_layout)
        for out_lane in range(self.out_lanes):
            members = [self.i.payload.data[out_lane * lanes_per_sum + j]
                       for j in range(lanes_per_sum)]
            m.d.comb += partial[out_lane].eq(sum(members))

        if self.words_per_output == 1:
            sums, completes = partial, Const(1)
        else:
            # group > lanes: the group spans several input words; keep a running sum,
            # cleared by the word that completes the group.
            running = Signal(partial_layout)
            word = position_counter(self.words_per_output, "word")
            sums = Signal(partial_layout)
            completes = Signal()
            m.d.comb += [
                sums[0].eq(running[0] + partial[0]),
                completes.eq(word == self.words_per_output - 1),
            ]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [running.eq(Mux(completes, 0, sums)),
                             word.eq(Mux(completes, 0, word + 1))]
        output_free = ~self.o.valid | self.o.ready
        # A word that completes no output word never waits for the output register.
        m.d.comb += self.i.ready.eq(output_free if self.words_per_output == 1
                                    else ~completes | output_free)
        register_averages(m, self.o, sums, fire=self.i.valid & self.i.ready & completes,
                          last=self.i.payload.last, mul=self.mul, shift=self.shift)
        return m
