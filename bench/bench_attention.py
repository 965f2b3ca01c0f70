"""Cycles per image of BinaryAttention, measured in Amaranth's simulator, beside its formula.

One row per (config, keys per cycle P): cycles per image measured over two back-to-back
images with no bubbles and no back-pressure, the documented ``cycles_per_image``, the ideal
``Tq·h·Tk/P`` (every cycle scores P keys) and the efficiency η = ideal / measured. Configs
are the tiny-digits attention layers (research §6). Each row also checks the output
against ``model()``.
"""
from __future__ import annotations

import torch

from binaryvit.golden import intref
from binaryvit.hw.binary_attention import BinaryAttention
from binaryvit.sim.amaranth_streams import simulate_streams

CONFIGS = {
    "tiny stage 1 (h=2, d=16, Tq=64, Tk=16)": dict(heads=2, head_dim=16, query_tokens=64, key_tokens=16),
    "tiny stage 2 (h=4, d=16, Tq=16, Tk=16)": dict(heads=4, head_dim=16, query_tokens=16, key_tokens=16),
}
IMAGES = 2


def measure(config: dict, keys_per_cycle: int) -> tuple[BinaryAttention, int]:
    dut = BinaryAttention(lut=intref.exp_lut(16, 8, 9).tolist(), theta=8, theta_shift=8,
                          keys_per_cycle=keys_per_cycle, **config)
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randint(0, 2, (IMAGES, tokens, dut.channels), generator=generator).bool()
               for tokens in (dut.query_tokens, dut.key_tokens, dut.key_tokens))
    expected = dut.context_words(dut.model(q, k, v))
    run = simulate_streams(dut, {"q": dut.token_words(q), "k": dut.token_words(k), "v": dut.token_words(v)},
                           {"o": len(expected)}, bubble_prob=0.0, stall_prob=0.0)
    if run.outputs["o"] != expected:
        raise AssertionError(f"{config} P={keys_per_cycle}: output differs from model()")
    # Two images: the last ends with its final head's context word instead of a next load.
    return dut, (run.cycles - dut.head_dim // dut.lanes) // IMAGES


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'config':42} {'P':>3} {'measured':>9} {'formula':>8} {'ideal':>6} {'eta':>6} {'latency':>8}")
    for name, config in CONFIGS.items():
        for keys_per_cycle in (1, 2, 4, 16):
            dut, cycles = measure(config, keys_per_cycle)
            eta = dut.ideal_cycles_per_image / cycles
            print(f"{name:42} {keys_per_cycle:>3} {cycles:>9} {dut.cycles_per_image:>8} "
                  f"{dut.ideal_cycles_per_image:>6} {eta:>6.3f} {dut.latency:>8}")


if __name__ == "__main__":
    main()
