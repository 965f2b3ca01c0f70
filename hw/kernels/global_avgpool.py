"""``GlobalAvgPool``: the mean over all tokens of an image, per channel, streaming.

The classifier head's GAP. Integer definition: ``binaryvit.golden.intref.global_avgpool``
(``mul / 2^shift ≈ 1/T``).
"""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Module

from binaryvit.golden import intref
from binaryvit.hw.kernels.average_pool import AveragePool, accumulate_windows
from binaryvit.hw.kernels.multiply_round_shift import sum_width
from binaryvit.hw.kernels.parameter_checks import check_int
from binaryvit.hw.kernels.position_counter import position_counter


class GlobalAvgPool(AveragePool):
    """Per-channel ``saturate(round_shift(S·mul, shift), out_width)``, ``S`` the sum over the
    ``tokens`` tokens of an image; one output token per image.

    Parameters
    ----------
    tokens : int
        Tokens per image (``T ≥ 1``).
    channels, lanes : int
        Channels per token and per stream word (``lanes`` divides ``channels``).
    in_width, out_width : int
        Signed element widths of the input and output words, in ``[2, 63]``.
    mul, shift : int
        The divisor as ``mul / 2^shift``; ``shift`` in ``[0, 62]``.

    Members
    -------
    i : ``In(stream.Signature(fixed_point_layout(in_width, lanes)))``
        ``T·C/lanes`` words per image; ``last`` is not used (the kernel counts tokens).
    o : ``Out(stream.Signature(fixed_point_layout(out_width, lanes)))``
        ``C/lanes`` words per image (the pooled token); ``last`` on the final one.

    The ``C/lanes`` running sums (``in_width + ⌈log2 T⌉`` bits per lane) sit in a small
    memory with a synchronous, write-transparent read port (block RAM): taking a word
    issues the read of its sum, and the next cycle adds and writes back. Output word ``w``
    leaves 2 cycles (``latency``) after input word ``w`` of the last token, so the kernel
    takes one input word per cycle with no stall of its own; back-pressure stalls the
    input only behind words of the last token.
    """

    def __init__(self, *, tokens: int, channels: int, lanes: int, in_width: int,
                 out_width: int, mul: int, shift: int):
        self.tokens = check_int(tokens, "tokens", 1)
        super().__init__(channels=channels, lanes=lanes, in_width=in_width, out_width=out_width,
                         mul=mul, shift=shift)

    @property
    def latency(self) -> int:
        """Cycles from an input word of the last token to the matching output word being valid."""
        return 2

    @property
    def input_words_per_image(self) -> int:
        return self.tokens * self.words_per_token

    @property
    def output_words_per_image(self) -> int:
        return self.words_per_token

    def model(self, x: Any) -> torch.Tensor:
        """Expected output ``[B, 1, C]`` (one token per image) for input ``x[B, T, C]``."""
        return intref.global_avgpool(x, self.mul, self.shift, self.out_width).unsqueeze(1)

    def elaborate(self, platform):
        m = Module()
        cw = self.words_per_token
        # The position of the next input word; its running sum is the one of its word.
        word = position_counter(cw, "word")
        token = position_counter(self.tokens, "token")
        accumulate_windows(m, self, sum_width=sum_width(self.in_width, self.tokens), entries=cw,
                           address=word, starts=token == 0,
                           completes=token == self.tokens - 1, last=word == cw - 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += word.eq(word + 1)
            with m.If(word == cw - 1):
                m.d.sync += [word.eq(0), token.eq(token + 1)]
                with m.If(token == self.tokens - 1):
                    m.d.sync += token.eq(0)
        return m
