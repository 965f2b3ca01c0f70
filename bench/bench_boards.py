"""Board performance table: LUTs, block RAMs, Fmax, images/s and binary GOPS/kLUT per board.

For each of the iCEBreaker (iCE40UP5K) and the ULX3S (ECP5-85F) the design is placed and
routed with the YoWASP nextpnr at several seeds; the table gives the median post-route
Fmax (and the range), the resources of the median-seed build, cycles per image, images per
second at that Fmax, and binary GOPS per kLUT = 2 · XNOR lanes · Fmax · lane utilisation /
kLUT (one XNOR and one popcount add per lane per cycle), next to the project's targets
(UP5K ≥ 40 MHz and ≥ 25 GOPS/kLUT; ECP5-85F ≥ 100 MHz and ≥ 80 GOPS/kLUT). The last row
is the integer model on this CPU (one thread).

Design: the generated network of OUT (`binaryvit generate`) inside the UART wrapper when
OUT/rtl exists; otherwise — clearly labelled — one XnorPopcountMVU at the size of the
tiny-digits model's stage-1 MLP (K=32 → N=128 over 64 tokens, pe=2, simd=32: the
quantizer's default folding), fed by an xorshift32 generator, output folded onto an LED.

Run: ``python bench/bench_boards.py [OUT] [--seeds 3] [--boards icebreaker ulx3s]``
(a few minutes: one place and route per seed and board).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io

from binaryvit.golden import intref
from binaryvit.hw.board_build import BuildResult, build_board
from binaryvit.hw.board_wrapper import UARTBoardWrapper
from binaryvit.hw.boards import BoardTop, get_board
from binaryvit.hw.mvu import XnorPopcountMVU
from binaryvit.hw.uart import baud_divisor

MVU_K, MVU_N, MVU_PE, MVU_SIMD, MVU_TOKENS = 32, 128, 2, 32, 64


class MVUBenchTop(Elaboratable):
    """An XnorPopcountMVU fed one fresh xorshift32 word per cycle (distinct bits, so Yosys
    cannot merge the datapath away), its output XOR-folded onto LED 0, always ready."""

    def __init__(self, mvu: XnorPopcountMVU):
        self.mvu = mvu

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mvu = mvu = self.mvu
        state = Signal(32, init=0x1234_5678)
        s1, s2, s3 = Signal(32), Signal(32), Signal(32)
        m.d.comb += [s1.eq(state ^ (state << 13)), s2.eq(s1 ^ (s1 >> 17)), s3.eq(s2 ^ (s2 << 5))]
        m.d.sync += state.eq(s3)
        words = MVU_K // MVU_SIMD * MVU_TOKENS     # a power of two: the counter wraps per image
        count = Signal(range(words))
        with m.If(mvu.i.ready):
            m.d.sync += count.eq(count + 1)
        m.d.comb += [mvu.i.valid.eq(1), mvu.i.payload.data.eq(state[:MVU_SIMD]),
                     mvu.i.payload.last.eq(count == words - 1), mvu.o.ready.eq(1)]
        folded = Signal()
        with m.If(mvu.o.valid):
            m.d.sync += folded.eq(folded ^ Cat(mvu.o.payload.as_value()).xor())
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(folded)
        return m


def mvu_design():
    g = torch.Generator().manual_seed(3)
    weights = torch.randint(0, 2, (MVU_N, MVU_K), generator=g).bool()
    mvu = XnorPopcountMVU(MVU_K, MVU_N, MVU_PE, MVU_SIMD, weights)
    cycles = mvu.cycles_per_vector * MVU_TOKENS
    figures = {"label": f"MVU only (K={MVU_K}, N={MVU_N}, pe={MVU_PE}, simd={MVU_SIMD}, "
                        f"{MVU_TOKENS} tokens; no network generated)",
               "lanes": MVU_PE * MVU_SIMD, "cycles": cycles,
               "utilisation": MVU_K * MVU_N * MVU_TOKENS / (MVU_PE * MVU_SIMD * cycles),
               "binary_macs": MVU_K * MVU_N * MVU_TOKENS}
    return (lambda board: MVUBenchTop(XnorPopcountMVU(MVU_K, MVU_N, MVU_PE, MVU_SIMD, weights))), \
        figures, weights


def network_design(out: Path):
    from binaryvit.hw.verilog_accelerator import load_generated_accelerator
    from binaryvit.quantize.intmodel import load_intmodel
    estimate = json.loads((out / "reports" / "estimate.json").read_text())
    sim = out / "reports" / "sim.json"
    measured = json.loads(sim.read_text())["totals"].get("cycles_per_image_measured") \
        if sim.is_file() else None
    model = load_intmodel(out / "intmodel.npz")
    c = model.config
    pixels = c.in_channels * c.image_size[0] * c.image_size[1]

    def top(board):
        accelerator, description = load_generated_accelerator(out)
        return BoardTop(UARTBoardWrapper(accelerator, pixels=pixels,
                                         num_logits=int(description["classes"]),
                                         divisor=baud_divisor(board.clock_hz, 115200)))
    macs = round(estimate["xnor_utilisation"] * estimate["xnor_lanes"] * estimate["cycles_per_image"])
    figures = {"label": f"generated network {c.name} + UART wrapper ({out})",
               "lanes": estimate["xnor_lanes"],
               "cycles": measured or estimate["cycles_per_image"],
               "utilisation": estimate["xnor_utilisation"] * estimate["cycles_per_image"]
               / (measured or estimate["cycles_per_image"]),
               "binary_macs": macs}
    return top, figures, model


def cpu_row(design, figures) -> tuple[float, float]:
    """Images per second and binary GOPS of the integer model on this CPU (one thread)."""
    torch.set_num_threads(1)
    if isinstance(design, torch.Tensor):   # the MVU layer alone
        a = torch.randint(0, 2, (MVU_TOKENS, MVU_K), generator=torch.Generator().manual_seed(4)).bool()
        run = lambda: intref.xnor_popcount_dot(a, design)   # noqa: E731
    else:
        from binaryvit.golden.data import load_dataset
        from binaryvit.golden.int_network import run_int_network
        images = torch.as_tensor(load_dataset(None).test_images[:16]).to(torch.int64)
        run = lambda: run_int_network(design, images[:1])   # noqa: E731
    run()
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        run()
        repeats += 1
    ips = repeats / (time.perf_counter() - start)
    return ips, 2 * figures["binary_macs"] * ips / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="out")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--boards", nargs="+", default=["icebreaker", "ulx3s"])
    args = parser.parse_args()
    out = Path(args.out)
    if (out / "rtl" / "network.json").is_file() and (out / "reports" / "estimate.json").is_file():
        make_top, figures, design = network_design(out)
    else:
        make_top, figures, design = mvu_design()
    print(f"design: {figures['label']}")
    print(f"XNOR lanes {figures['lanes']}, cycles/image {figures['cycles']:.0f}, "
          f"lane utilisation {figures['utilisation']:.3f}; seeds 1..{args.seeds}; "
          f"nextpnr from YoWASP\n")
    header = (f"{'target':<22} {'LUT4/LC':>8} {'BRAM':>6} {'Fmax MHz (range)':>22} "
              f"{'img/s @Fmax':>12} {'GOPS/kLUT':>10} {'targets':>18} {'P&R s':>6}")
    print(header)
    print("-" * len(header))
    for name in args.boards:
        board = get_board(name)
        results: list[BuildResult] = []
        for seed in range(1, args.seeds + 1):
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                results.append(build_board(make_top(board), board, Path(tmp) / "b", seed=seed))
        fmaxes = [max(f["achieved"] for f in r.fmax_mhz.values()) for r in results if r.ok]
        if not fmaxes:
            print(f"{name:<22} did not build: {'; '.join(results[0].overflows) or results[0].error}")
            continue
        fmax = statistics.median(fmaxes)
        median_build = min((r for r in results if r.ok),
                           key=lambda r: abs(max(f["achieved"] for f in r.fmax_mhz.values()) - fmax))
        luts = median_build.utilisation[board.lut_resource].used
        brams = sum(u.used for res, u in median_build.utilisation.items()
                    if res in ("ICESTORM_RAM", "DP16KD"))
        ips = fmax * 1e6 / figures["cycles"]
        gops = 2 * figures["lanes"] * fmax * 1e-3 * figures["utilisation"] / (luts / 1000)
        targets = f"≥{board.fmax_target_mhz:g} MHz, ≥{board.gops_per_klut_target:g}"
        seconds = statistics.median(r.seconds for r in results)
        print(f"{board.name + ' (' + board.family + ')':<22} {luts:>8} {brams:>6} "
              f"{fmax:>8.1f} ({min(fmaxes):.1f}–{max(fmaxes):.1f}) {ips:>12,.0f} {gops:>10.1f} "
              f"{targets:>18} {seconds:>6.0f}")
    ips, gops = cpu_row(design, figures)
    print(f"{'integer model, CPU':<22} {'—':>8} {'—':>6} {'—':>22} {ips:>12,.0f} "
          f"{'—':>10} {f'{gops:.3f} GOPS':>18} {'—':>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
