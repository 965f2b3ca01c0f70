"""Throughput of the integer reference on a digits-sized batch (tiny-digits shapes, one CPU thread).

Prints one row per op: milliseconds per call for the whole test split (B = 360 images,
64 tokens, C = 32, MLP 128, 2 heads of d = 16).
"""
from __future__ import annotations

import time

import torch

from binaryvit.golden import intref


def _time_ms(fn, repeats: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    batch, tokens, channels, hidden, heads, d = 360, 64, 32, 128, 2, 16
    x = torch.randint(-2000, 2000, (batch, tokens, channels), generator=gen)
    bits_c = intref.sign_bits(x)
    bits_h = torch.randint(0, 2, (batch, tokens, hidden), generator=gen).bool()
    w_up = torch.randint(0, 2, (hidden, channels), generator=gen).bool()
    w_down = torch.randint(0, 2, (channels, hidden), generator=gen).bool()
    mul = torch.randint(-300, 300, (channels,), generator=gen)
    bias = torch.randint(-9999, 9999, (channels,), generator=gen)
    grid = intref.tokens_to_grid(x, 8, 8)
    q = torch.randint(0, 2, (batch, heads, tokens, d), generator=gen).bool()
    k = torch.randint(0, 2, (batch, heads, 16, d), generator=gen).bool()
    lut = intref.exp_lut(d, 11, 12)
    scores = intref.attention_scores(q, k)
    mask = intref.attention_mask(scores, lut, 1, 6)
    cases = {
        "sign_bits": lambda: intref.sign_bits(x),
        f"xnor_popcount_dot {channels}->{hidden}": lambda: intref.xnor_popcount_dot(bits_c, w_up),
        f"xnor_popcount_dot {hidden}->{channels}": lambda: intref.xnor_popcount_dot(bits_h, w_down),
        "affine": lambda: intref.affine(x, mul, bias, 8, 16),
        "rprelu": lambda: intref.rprelu(x, bias, mul, mul, bias, 8, 16),
        "threshold": lambda: intref.threshold(x, bias, torch.zeros(channels, dtype=torch.bool)),
        "avgpool2d 1x5": lambda: intref.avgpool2d(grid, 1, 5, 1, 0, 2, 13, 6, 16),
        "attention_scores": lambda: intref.attention_scores(q, k),
        "attention_mask": lambda: intref.attention_mask(scores, lut, 1, 6),
        "and_popcount_context": lambda: intref.and_popcount_context(mask, k),
    }
    print(f"{'op (B=360, T=64)':32s} {'ms/call':>8s}")
    for name, fn in cases.items():
        print(f"{name:32s} {_time_ms(fn):8.2f}")


if __name__ == "__main__":
    main()
