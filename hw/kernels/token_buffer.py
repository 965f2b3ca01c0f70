"""``TokenBuffer`` and ``NearestUpsample``: store one token map, replay it enlarged.

Attention's ``up(k̃)`` / ``up(ṽ)``: keys and values computed on the SR-pooled grid are
brought back to the full grid by nearest-neighbour upsampling. Integer definition:
``binaryvit.golden.intref.nearest_upsample``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from binaryvit.golden import intref
from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes, check_width
from binaryvit.hw.kernels.position_counter import position_counter
from binaryvit.hw.streams.fixed_point_stream import decode_fixed_point, encode_fixed_point, fixed_point_layout


class TokenBuffer(wiring.Component):
    """Stores an ``h × w`` token map and replays it as the ``(h·f) × (w·f)`` map in raster
    order, token ``(i, j)`` copying stored token ``(i div f, j div f)`` (``f = 1``: a frame
    buffer that replays the map as it came).

    Parameters
    ----------
    height, width : int
        The stored grid ``h × w``.
    channels, lanes : int
        Channels per token and per stream word (``lanes`` divides ``channels``).
    data_width : int
        Signed element width, in ``[2, 63]``; values pass through unchanged.
    factor : int
        ``f ≥ 1``, the upsampling factor along both axes.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(data_width, lanes)))``
        ``h·w·C/lanes`` words per image; ``last`` is not used (the kernel counts words).
    o : ``Out(stream.Signature(fixed_point_layout(data_width, lanes)))``
        ``h·f·w·f·C/lanes`` words per image; ``last`` on the final one.

    Two banks of ``h·w·C/lanes`` words each (ping-pong), in one memory with a synchronous
    read port (block RAM) whose read register is the output register: the next image
    loads into one bank while the other replays, and a bank takes a new image once its
    replay has been issued. Cycles per image with no stalls: ``h·w·C/lanes·f²``
    (``cycles_per_image``: the output, one word per cycle; the load hides behind the
    replay). ``latency``: 2 cycles from an image's last input word to its first output
    word when the replay is idle; a stream's first image pays its load once.
    """

    def __init__(self, *, height: int, width: int, channels: int, lanes: int,
                 data_width: int, factor: int = 1):
        self.height = check_int(height, "height", 1)
        self.width = check_int(width, "width", 1)
        self.channels = check_int(channels, "channels", 1)
        self.lanes = check_lanes(lanes, "lanes", self.channels, "channels")
        self.data_width = check_width(data_width, "data_width")
        self.factor = self._check_factor(factor)
        self.words_per_token = self.channels // self.lanes
        layout = fixed_point_layout(self.data_width, self.lanes)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    @staticmethod
    def _check_factor(factor: Any) -> int:
        return check_int(factor, "factor", 1)

    @property
    def latency(self) -> int:
        """Cycles from the image's last input word to its first output word being valid."""
        return 2

    @property
    def input_words_per_image(self) -> int:
        return self.height * self.width * self.words_per_token

    @property
    def output_words_per_image(self) -> int:
        return self.input_words_per_image * self.factor * self.factor

    @staticmethod
    def image_cycles(input_words: int, factor: int) -> int:
        """Cycles per image of a buffer loading ``input_words`` words per image, enlarged
        ``factor`` times along both axes: the replay, ``input_words·factor²``."""
        return input_words * factor * factor

    @property
    def cycles_per_image(self) -> int:
        """Cycles per image in steady state with no bubbles or back-pressure: the replay."""
        return self.image_cycles(self.input_words_per_image, self.factor)

    def model(self, x: Any) -> torch.Tensor:
        """Expected output ``[B, h·f·w·f, C]`` for input ``x[B, h·w, C]``."""
        return intref.nearest_upsample(x, self.height, self.width, self.factor)

    def encode_input(self, x: Any) -> list[int]:
        """Input tokens ``[B, h·w, C]`` → flat input words."""
        return encode_fixed_point(x, self.data_width, self.lanes)

    def encode_output(self, y: Any) -> list[int]:
        """Output tokens ``[B, h·f·w·f, C]`` → flat output words."""
        return encode_fixed_point(y, self.data_width, self.lanes)

    def decode_output(self, words: Sequence[int]) -> torch.Tensor:
        """Flat output words → output tokens ``[B, h·f·w·f, C]``."""
        return decode_fixed_point(words, self.data_width, self.lanes, self.channels)

    def elaborate(self, platform):
        m = Module()
        cw, f, words = self.words_per_token, self.factor, self.input_words_per_image
        m.submodules.tokens = tokens = Memory(
            shape=data.ArrayLayout(signed(self.data_width), self.lanes), depth=2 * words, init=[])
        read = tokens.read_port()
        write = tokens.write_port()
        full = [Signal(name=f"bank{bank}_full") for bank in range(2)]

        # Load: word by word into the bank that is not full.
        load_bank = Signal()
        loaded = Signal()
        m.d.comb += [
            self.i.ready.eq(~Mux(load_bank, full[1], full[0])),
            write.data.eq(self.i.payload.data),
            write.en.eq(self.i.valid & self.i.ready),
        ]
        if words > 1:
            load_address = position_counter(words, "load_address")
            m.d.comb += [write.addr.eq(Mux(load_bank, words + load_address, load_address)),
                         loaded.eq(write.en & (load_address == words - 1))]
            with m.If(write.en):
                m.d.sync += load_address.eq(Mux(load_address == words - 1, 0, load_address + 1))
        else:  # one word per image: the bank is the address
            m.d.comb += [write.addr.eq(load_bank), loaded.eq(write.en)]
        with m.If(loaded):
            m.d.sync += load_bank.eq(~load_bank)

        # Replay of the full bank: source row, its repeat, source column, its repeat, word.
        play_bank = Signal()
        word = position_counter(cw, "word")
        column_repeat = position_counter(f, "column_repeat")
        column = position_counter(self.width, "column")
        row_repeat = position_counter(f, "row_repeat")
        row = position_counter(self.height, "row")
        issue = Signal()
        final = Signal()
        source = (row * self.width + column) * cw + word
        m.d.comb += [
            final.eq((row == self.height - 1) & (row_repeat == f - 1)
                     & (column == self.width - 1) & (column_repeat == f - 1) & (word == cw - 1)),
            read.addr.eq(Mux(play_bank, words + source, source)),
            read.en.eq(~self.o.valid | self.o.ready),
            issue.eq(read.en & Mux(play_bank, full[1], full[0])),
            self.o.payload.data.eq(read.data),
        ]
        for bank, flag in enumerate(full):
            with m.If(loaded & (load_bank == bank)):
                m.d.sync += flag.eq(1)
            with m.If(issue & final & (play_bank == bank)):
                m.d.sync += flag.eq(0)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(issue):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.last.eq(final), word.eq(word + 1)]
            with m.If(word == cw - 1):
                m.d.sync += [word.eq(0), column_repeat.eq(column_repeat + 1)]
                with m.If(column_repeat == f - 1):
                    m.d.sync += [column_repeat.eq(0), column.eq(column + 1)]
                    with m.If(column == self.width - 1):
                        m.d.sync += [column.eq(0), row_repeat.eq(row_repeat + 1)]
                        with m.If(row_repeat == f - 1):
                            m.d.sync += [row_repeat.eq(0), row.eq(row + 1)]
                            with m.If(row == self.height - 1):
                                m.d.sync += [row.eq(0), play_bank.eq(~play_bank)]
        return m


class NearestUpsample(TokenBuffer):
    """A ``TokenBuffer`` that enlarges: ``factor ≥ 2`` (see ``TokenBuffer`` for the contract)."""

    def __init__(self, *, height: int, width: int, channels: int, lanes: int,
                 data_width: int, factor: int):
        super().__init__(height=height, width=width, channels=channels, lanes=lanes,
                         data_width=data_width, factor=factor)

    @staticmethod
    def _check_factor(factor: Any) -> int:
        return check_int(factor, "factor", 2)
