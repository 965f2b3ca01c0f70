"""Patch unfolding of a binary token grid (the patch-merge convolution's input)."""
from __future__ import annotations

from typing import Any

import torch
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.int_network import unfold_patches
from binaryvit.hw.kernels.parameter_checks import check_int, check_lanes
from binaryvit.hw.streams.fixed_point_stream import binary_layout

__all__ = ["PatchUnfold", "patch_permutation"]


def patch_permutation(height: int, width: int, channels: int, size: int) -> list[int]:
    """Input bit index (``token·C + c``, tokens in raster order) of each output bit
    (``patch·C·size² + c·size² + i·size + j``), as ``golden.int_network.unfold_patches``."""
    order = []
    for pi in range(height // size):
        for pj in range(width // size):
            for c in range(channels):
                for i in range(size):
                    for j in range(size):
                        token = (pi * size + i) * width + pj * size + j
                        order.append(token * channels + c)
    return order


class PatchUnfold(wiring.Component):
    """``[H·W, C]`` bits in, ``[(H/s)·(W/s), C·s²]`` bits out (non-overlapping ``s × s`` patches).

    Parameters
    ----------
    height, width, channels : int
        The input grid and channels per token; ``size`` divides both sides.
    size : int
        Patch side ``s ≥ 2``.
    in_simd, out_simd : int
        Bits per input word (divides ``C``) and per output word (divides ``C·s²``).

    Members
    -------
    i : In(stream.Signature(binary_layout(in_simd)))
    o : Out(stream.Signature(binary_layout(out_simd)))
        ``last`` on the final word of an image whose final input word had it.

    A whole image is shifted into a load register (``H·W·C`` bits); once complete and the
    output register is free, the permuted image moves to the output register in one cycle
    and shifts out ``out_simd`` bits per cycle, while the next image loads (double buffer,
    no multiplexers: the permutation is wiring). Cycles per image: ``max(H·W·C/in_simd,
    H·W·C/out_simd) + 1``. Output needs the whole image: latency 2 cycles from its last
    input word. Cost: ``2·H·W·C`` flip-flops (fine for small grids; a line-buffer version
    would be needed for large ones).
    """

    def __init__(self, *, height: int, width: int, channels: int, size: int,
                 in_simd: int, out_simd: int):
        self.height = check_int(height, "height", 1)
        self.width = check_int(width, "width", 1)
        self.channels = check_int(channels, "channels", 1)
        self.size = check_int(size, "size", 2)
        if self.height % self.size or self.width % self.size:
            raise ConfigError(f"size: must divide the grid {self.height}×{self.width}, "
                              f"got {self.size}")
        self.in_simd = check_lanes(in_simd, "in_simd", self.channels, "channels")
        self.out_simd = check_lanes(out_simd, "out_simd", self.channels * self.size ** 2,
                                    "C·size²")
        self.bits = self.height * self.width * self.channels
        super().__init__({"i": In(stream.Signature(binary_layout(self.in_simd))),
                          "o": Out(stream.Signature(binary_layout(self.out_simd)))})

    @staticmethod
    def image_cycles(bits: int, in_simd: int, out_simd: int) -> int:
        """Cycles per image of ``bits`` bits loaded ``in_simd`` and sent ``out_simd`` per
        cycle: ``max(bits/in_simd, bits/out_simd) + 1`` (the move to the shift register)."""
        return max(bits // in_simd, bits // out_simd) + 1

    @property
    def cycles_per_image(self) -> int:
        """Steady-state cycles per image with no bubbles or back-pressure."""
        return self.image_cycles(self.bits, self.in_simd, self.out_simd)

    @property
    def latency(self) -> int:
        """Cycles from the image's last input word to its first output word being valid
        (load register → shift register, then the output), with the shift register free."""
        return 2

    def model(self, bits: Any) -> torch.Tensor:
        """The output bits ``[B, (H/s)·(W/s), C·s²]`` for input bits ``[B, H·W, C]``
        (``golden.intref.int_network.unfold_patches`` of the token grid)."""
        x = torch.as_tensor(bits).to(torch.int64)
        grid = x.reshape(x.shape[0], self.height, self.width, self.channels).permute(0, 3, 1, 2)
        return unfold_patches(grid, self.size)

    def elaborate(self, platform) -> Module:
        m = Module()
        in_words = self.bits // self.in_simd
        out_words = self.bits // self.out_simd
        load = Signal(self.bits)
        load_count = Signal(range(in_words + 1))
        load_last = Signal()
        shift = Signal(self.bits)
        remaining = Signal(range(out_words + 1))
        shift_last = Signal()
        full = load_count == in_words
        permuted = Cat(load[k] for k in patch_permutation(self.height, self.width,
                                                          self.channels, self.size))
        m.d.comb += [
            self.i.ready.eq(~full),
            self.o.valid.eq(remaining != 0),
            self.o.payload.data.eq(shift[:self.out_simd]),
            self.o.payload.last.eq(shift_last & (remaining == 1)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [load.eq(Cat(load[self.in_simd:], self.i.payload.data)),
                         load_count.eq(load_count + 1), load_last.eq(self.i.payload.last)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [shift.eq(shift >> self.out_simd), remaining.eq(remaining - 1)]
        with m.If(full & ((remaining == 0) | ((remaining == 1) & self.o.ready))):
            m.d.sync += [shift.eq(permuted), remaining.eq(out_words), shift_last.eq(load_last),
                         load_count.eq(0)]
        return m
