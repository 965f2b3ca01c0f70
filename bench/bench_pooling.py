"""Cycles per image of the pooling kernels and the nearest upsample, next to the ideal.

Streams random images through each kernel in Amaranth's simulator with no bubbles and no
back-pressure, on shapes from the tiny digits network, and prints a markdown table:
measured cycles per image (the difference between runs of 2 and 4 images, so the latency
drops out) against ``max(input words, output words)``, one word per cycle on the busier
port. Run: ``python bench/bench_pooling.py``.
"""
from __future__ import annotations

import torch

from binaryvit.hw.channel_group_avgpool import ChannelGroupAvgPool
from binaryvit.hw.global_avgpool import GlobalAvgPool
from binaryvit.hw.spatial_avgpool import SpatialAvgPool
from binaryvit.hw.strip_avgpool import StripAvgPool
from binaryvit.hw.token_buffer import NearestUpsample
from binaryvit.sim.amaranth_streams import simulate_streams

WIDTH = 12


def kernels():
    common = dict(in_width=WIDTH, out_width=WIDTH)
    yield "SpatialAvgPool r=2, 8×8, C=32, lanes=8", 64, SpatialAvgPool(
        height=8, width=8, channels=32, lanes=8, factor=2, mul=1, shift=2, **common)
    yield "SpatialAvgPool r=4, 8×8, C=32, lanes=32", 64, SpatialAvgPool(
        height=8, width=8, channels=32, lanes=32, factor=4, mul=1, shift=4, **common)
    for kernel_h, kernel_w in [(1, 3), (1, 5), (3, 1), (5, 1)]:
        k = max(kernel_h, kernel_w)
        yield f"StripAvgPool {kernel_h}×{kernel_w}, 8×8, C=32, lanes=8", 64, StripAvgPool(
            height=8, width=8, channels=32, lanes=8, kernel_h=kernel_h, kernel_w=kernel_w,
            mul=11 if k == 3 else 13, shift=5 if k == 3 else 6, **common)
    yield "GlobalAvgPool 16 tokens, C=64, lanes=8", 16, GlobalAvgPool(
        tokens=16, channels=64, lanes=8, mul=1, shift=4, **common)
    yield "ChannelGroupAvgPool g=4, C=128, lanes=16", 64, ChannelGroupAvgPool(
        channels=128, group=4, lanes=16, mul=1, shift=2, **common)
    yield "NearestUpsample f=2, 4×4→8×8, C=32, lanes=8", 16, NearestUpsample(
        height=4, width=4, channels=32, lanes=8, data_width=WIDTH, factor=2)


def cycles(dut, images: int, tokens: int) -> tuple[int, int, int]:
    g = torch.Generator().manual_seed(images)
    bound = 1 << (WIDTH - 1)
    x = torch.randint(-bound, bound, (images, tokens, dut.channels), generator=g)
    words_in = dut.encode_input(x)
    expected = dut.encode_output(dut.model(x))
    run = simulate_streams(dut, {"i": words_in}, {"o": len(expected)},
                           bubble_prob=0.0, stall_prob=0.0)
    assert run.outputs["o"] == expected, "output differs from model()"
    return run.cycles, len(words_in) // images, len(expected) // images


def main() -> None:
    torch.set_num_threads(1)
    print("| kernel | words in / image | words out / image | cycles / image | ideal |")
    print("|---|---|---|---|---|")
    for name, tokens, dut in kernels():
        two, words_in, words_out = cycles(dut, 2, tokens)
        four, _, _ = cycles(dut, 4, tokens)
        per_image = (four - two) // 2
        print(f"| {name} | {words_in} | {words_out} | {per_image} | {max(words_in, words_out)} |")


if __name__ == "__main__":
    main()
