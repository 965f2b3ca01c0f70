"""Board performance table: the generated network per board, and the MVU kernel alone.

For each of the iCEBreaker (iCE40UP5K) and the ULX3S (ECP5-85F):

* **the network** of an OUT folder (`binaryvit generate OUT --board B`, else the first OUT
  given) inside the UART wrapper: its build `OUT/build/<board>` (made by `binaryvit build`
  when absent), nextpnr again on that netlist for the other seeds (Yosys does not depend on
  the seed), and per row: logic cells, block RAMs and DSPs of the median-Fmax seed, the
  median post-route Fmax and its range, cycles per image (measured in Verilator when
  `sim.json` has it, else the cost model's), images/s at Fmax, and binary GOPS per kLUT =
  2 · XNOR lanes · Fmax / kLUT (one XNOR and one popcount add per lane per cycle), next to
  the project's targets (UP5K ≥ 40 MHz, ≥ 25 GOPS/kLUT; ECP5-85F ≥ 100 MHz, ≥ 80). A network
  that the estimate says does not fit is not built (`binaryvit build --force` measures it);
  its row gives the overflow instead.
* **the MVU kernel alone** (labelled as such): one XnorPopcountMVU at the tiny-digits
  stage-1 MLP size (K=32 → N=128 over 64 tokens, pe=2, simd=32), fed by an xorshift32
  generator, output folded onto an LED — the density of the XNOR datapath without the rest
  of the network.

The last row is the integer model on this CPU (one thread).

Run: ``python bench/bench_boards.py OUT [OUT ...] [--seeds 3] [--boards icebreaker ulx3s]``
(a whole-network ECP5 build takes about an hour on a 2-core machine; seeds reuse it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io

from binaryvit.golden import intref
from binaryvit.hw.boards.board_build import BUILD_JSON, BuildResult, build_board, place_and_route
from binaryvit.hw.boards.definitions import Board, get_board
from binaryvit.hw.kernels.mvu import XnorPopcountMVU

MVU_K, MVU_N, MVU_PE, MVU_SIMD, MVU_TOKENS = 32, 128, 2, 32, 64
OPS_PER_LANE = 2


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


@dataclass
class Row:
    """One table row: what was built and what it measured (``results`` one per seed)."""

    label: str
    board: Board
    lanes: int
    cycles: float
    results: list[BuildResult]
    note: str = ""


def _fmax(result: BuildResult) -> float:
    return max(f["achieved"] for f in result.fmax_mhz.values())


def mvu_row(board: Board, seeds: int) -> Row:
    g = torch.Generator().manual_seed(3)
    weights = torch.randint(0, 2, (MVU_N, MVU_K), generator=g).bool()
    results = []
    for seed in range(1, seeds + 1):
        with tempfile.TemporaryDirectory(prefix=f"bench-{board.name}-") as tmp:
            top = MVUBenchTop(XnorPopcountMVU(MVU_K, MVU_N, MVU_PE, MVU_SIMD, weights))
            results.append(build_board(top, board, Path(tmp) / "b", seed=seed))
    mvu = XnorPopcountMVU(MVU_K, MVU_N, MVU_PE, MVU_SIMD, weights)
    return Row(f"MVU kernel alone ({MVU_K}→{MVU_N}, pe {MVU_PE}, simd {MVU_SIMD})", board,
               MVU_PE * MVU_SIMD, mvu.cycles_per_vector * MVU_TOKENS, results)


def network_row(out: Path, board: Board, seeds: int) -> Row:
    from binaryvit.commands.build import build_out, estimated_fit
    estimate = json.loads((out / "reports" / "estimate.json").read_text())
    sim = out / "reports" / "sim.json"
    measured = json.loads(sim.read_text())["totals"].get("cycles_per_image_measured") \
        if sim.is_file() else None
    label = f"network {out.name} ({estimate['cycles_per_image']} cycles folding)"
    row = Row(label, board, estimate["xnor_lanes"], measured or estimate["cycles_per_image"], [])
    folder = out / "build" / board.name
    record = folder / BUILD_JSON
    if not record.is_file():
        fit, _ = estimated_fit(out, board)
        if fit is not None and not fit.ok:
            row.note = "estimate: " + "; ".join(o.line() for o in fit.overflows)
            return row
        build_out(out, board, seed=1)
    first = BuildResult.load(record)
    if not first.ok:
        row.note = "nextpnr: " + "; ".join(first.overflows)
        return row
    row.results = [first] + [place_and_route(folder, board, seed)
                             for seed in range(1, seeds + 1) if seed != first.seed]
    return row


def cpu_row(out: Path | None) -> tuple[float, str]:
    """Images per second of the integer model (or the MVU layer) on this CPU, one thread."""
    torch.set_num_threads(1)
    if out is not None and (out / "intmodel.npz").is_file():
        from binaryvit.golden.intref.int_network import run_int_network
        from binaryvit.golden.intref.intmodel import load_intmodel
        from binaryvit.golden.train.data import load_dataset
        model = load_intmodel(out / "intmodel.npz")
        image = torch.as_tensor(load_dataset(None).test_images[:1]).to(torch.int64)
        run, what = (lambda: run_int_network(model, image)), "integer network"   # noqa: E731
    else:
        g = torch.Generator().manual_seed(4)
        weights = torch.randint(0, 2, (MVU_N, MVU_K), generator=g).bool()
        a = torch.randint(0, 2, (MVU_TOKENS, MVU_K), generator=g).bool()
        run, what = (lambda: intref.xnor_popcount_dot(a, weights)), "MVU layer"  # noqa: E731
    run()
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        run()
        repeats += 1
    return repeats / (time.perf_counter() - start), what


def print_row(row: Row) -> None:
    board = row.board
    targets = f"≥{board.fmax_target_mhz:g} MHz, ≥{board.gops_per_klut_target:g}"
    name = f"{board.name}: {row.label}"
    if not row.results:
        print(f"{name}\n    does not fit — {row.note}")
        return
    fmaxes = sorted(_fmax(r) for r in row.results)
    fmax = statistics.median(fmaxes)
    median = min(row.results, key=lambda r: abs(_fmax(r) - fmax))
    used = {k: u.used for k, u in median.utilisation.items()}
    luts = used.get(board.lut_resource, 0)
    brams = used.get("ICESTORM_RAM", used.get("DP16KD", 0))
    dsps = used.get("ICESTORM_DSP", used.get("MULT18X18D", 0))
    gops = OPS_PER_LANE * row.lanes * fmax * 1e-3 / (luts / 1000)
    met = (f"{'✓' if fmax >= board.fmax_target_mhz else '✗'} Fmax, "
           f"{'✓' if gops >= board.gops_per_klut_target else '✗'} GOPS/kLUT")
    print(f"{name}\n    {luts:>7} {brams:>5} {dsps:>5}  {fmax:6.1f} ({fmaxes[0]:.1f}–{fmaxes[-1]:.1f}, "
          f"{len(fmaxes)} seeds)  {row.cycles:>8.0f} {fmax * 1e6 / row.cycles:>10,.0f} "
          f"{row.lanes:>6} {gops:>8.2f}   {targets} {met}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outs", nargs="*", metavar="OUT", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--boards", nargs="+", default=["icebreaker", "ulx3s"])
    parser.add_argument("--no-mvu", action="store_true", help="skip the MVU-kernel rows")
    args = parser.parse_args()
    outs = [o for o in args.outs if (o / "rtl" / "network.json").is_file()]
    print("per row: logic cells, block RAMs, DSPs, Fmax MHz median (range, seeds), cycles/image, "
          "images/s at Fmax, XNOR lanes, binary GOPS/kLUT (2 · lanes · Fmax / kLUT), targets\n")
    for name in args.boards:
        board = get_board(name)
        for_board = [o for o in outs if json.loads((o / "reports" / "estimate.json")
                                                   .read_text()).get("device", {})
                     .get("board") == name] or outs[:1]
        for out in for_board:
            print_row(network_row(out, board, args.seeds))
        if not args.no_mvu:
            print_row(mvu_row(board, args.seeds))
    ips, what = cpu_row(outs[0] if outs else None)
    print(f"\nCPU, one thread: {ips:,.0f} images/s ({what}, the integer reference)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
