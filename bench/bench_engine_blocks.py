"""iCE40UP5K cost of the engine's building blocks (``hw/engine/``), measured.

Two tables:

* **Yosys** ``synth_ice40 -dsp`` per block, alone (no I/O): SB_LUT4, SB_CARRY, flip-flops,
  EBR (SB_RAM40_4K), SPRAM (SB_SPRAM256KA) and DSP (SB_MAC16) cells.
* **nextpnr-ice40** on the iCEBreaker for two board tops, per seed: ICESTORM_LC, EBR,
  SPRAM, DSP and the post-route Fmax (median and range over the seeds) beside the engine's
  target (≥ 40 MHz):
  - *loader + SPRAM bank*: ``BootLoadedSPRAM`` (4 SPRAMs) on the board's SPI flash pins;
    after ``done`` a counter reads and writes the whole bank, the data folded onto an LED.
  - *vector multiplier*: ``VectorMultiply(lanes=2)`` fed by xorshift32 generators, random
    back-pressure, output folded onto an LED; and the same with 18-bit ``x`` and a 36-bit
    accumulator (the engine's UP5K configuration, two ``SB_MAC16`` a lane).

Run: ``python bench/bench_engine_blocks.py [--seeds 3]`` (about 2 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io

from binaryvit.hw.boards.board_build import build_board, place_and_route
from binaryvit.hw.boards.definitions import get_board, yowasp_env
from binaryvit.hw.boards.uart import baud_divisor
from binaryvit.hw.engine.board.design import EngineDesign
from binaryvit.hw.engine.board.uart_front_end import EngineUARTFrontEnd
from binaryvit.hw.engine.config import UP5K
from binaryvit.hw.engine.flash_reader import FlashReader
from binaryvit.hw.engine.loader import ParameterLoader
from binaryvit.hw.engine.loader_memory import BootLoadedSPRAM
from binaryvit.hw.engine.loader_receiver import ParameterImageReceiver
from binaryvit.hw.engine.parameter_image import design_id
from binaryvit.hw.engine.spram import SPRAMBank
from binaryvit.hw.engine.vector_multiply import VectorMultiply
from binaryvit.hw.verilog import to_verilog

TARGET_MHZ = 40.0


def wide_vector_multiply(lanes: int) -> VectorMultiply:
    """The engine's UP5K vector lane: 18-bit window sums, 36-bit accumulator."""
    return VectorMultiply(lanes=lanes, x_width=18, accumulator_width=36, max_shift=35)
DESIGN = design_id(b"bench_engine_blocks")


def xorshift32(m: Module, seed: int, name: str) -> Signal:
    """A free-running xorshift32 register (distinct bits every cycle, so nothing merges)."""
    state = Signal(32, init=seed, name=name)
    s1, s2, s3 = Signal(32), Signal(32), Signal(32)
    m.d.comb += [s1.eq(state ^ (state << 13)), s2.eq(s1 ^ (s1 >> 17)), s3.eq(s2 ^ (s2 << 5))]
    m.d.sync += state.eq(s3)
    return state


def _led(m: Module, platform, index: int, value) -> None:
    buffer = io.Buffer("o", platform.request("led", index, dir="-"))
    m.submodules[f"led{index}"] = buffer
    m.d.comb += buffer.o.eq(value)


class LoaderBenchTop(Elaboratable):
    """BootLoadedSPRAM on the iCEBreaker's flash; after the load a counter sweeps the bank."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.memory = memory = BootLoadedSPRAM(design_id=DESIGN, banks=4)
        flash = platform.request("spi_flash_1x", 0, dir={"cs": "-", "clk": "-", "copi": "-", "cipo": "-"})
        for name, direction, port in (("cs", "o", flash.cs), ("clk", "o", flash.clk),
                                      ("copi", "o", flash.copi), ("cipo", "i", flash.cipo)):
            m.submodules[f"flash_{name}"] = io.Buffer(direction, port)
        m.d.comb += [
            m.submodules.flash_cs.o.eq(memory.spi.cs),
            m.submodules.flash_clk.o.eq(memory.spi.sck),
            m.submodules.flash_copi.o.eq(memory.spi.copi),
            memory.spi.cipo.eq(m.submodules.flash_cipo.i),
            memory.start.eq(1),
        ]
        address = Signal(16)
        folded = Signal(16)
        with m.If(memory.done):
            m.d.sync += [address.eq(address + 1), folded.eq(folded ^ memory.read_data)]
        m.d.comb += [memory.addr.eq(address), memory.enable.eq(memory.done),
                     memory.write.eq(address[0]), memory.write_data.eq(folded),
                     memory.write_mask.eq(address[1:5])]
        _led(m, platform, 0, folded.xor())
        _led(m, platform, 1, memory.error)
        return m


class VectorMultiplyBenchTop(Elaboratable):
    """VectorMultiply(lanes=2) fed from xorshift32 generators, random ready, folded to an LED."""

    def __init__(self, **widths):
        self.widths = widths

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.unit = unit = VectorMultiply(lanes=2, **self.widths)
        bits = Cat(*(xorshift32(m, seed, f"prng{k}") for k, seed in
                     enumerate([0x1234_5678, 0x9E37_79B9, 0xDEAD_BEEF, 0x0BAD_F00D, 0x7F4A_7C15])))
        layout = unit.input_layout
        m.d.comb += [
            unit.i.valid.eq(1),
            unit.i.payload.as_value().eq(bits[:layout.size]),
            unit.o.ready.eq(bits[-1]),
        ]
        folded = Signal()
        with m.If(unit.o.valid & unit.o.ready):
            m.d.sync += folded.eq(folded ^ unit.o.payload.as_value().xor())
        _led(m, platform, 0, folded)
        return m


def engine_front_end() -> EngineUARTFrontEnd:
    """The engine board's UART front end for tiny-digits' I/O (64 5-bit pixels, 10 logits of
    two words), 115,200 Bd at 12 MHz, as ``EngineBoard`` builds it."""
    design = EngineDesign(config=UP5K, design_id=DESIGN, program_address=0, input_address=0,
                          pixels=64, pixel_width=5, pixel_signed=False, output_address=64,
                          classes=10, logit_words=2, image_shape=(1, 8, 8), plan={})
    return EngineUARTFrontEnd(design, divisor=baud_divisor(12e6, 115_200))


def yosys_cells(component, name: str, folder: Path) -> dict[str, int]:
    env = yowasp_env()
    (folder / f"{name}.v").write_text(to_verilog(component, name))
    subprocess.run([env["YOSYS"], "-q", "-p", f"read_verilog {name}.v; synth_ice40 -dsp -top {name}; "
                    f"tee -q -o {name}.json stat -json"], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads((folder / f"{name}.json").read_text())["design"]["num_cells_by_type"]


def yosys_table(folder: Path) -> None:
    blocks = [
        ("SPRAMBank (4 × SB_SPRAM256KA)", SPRAMBank(banks=4, implementation="primitive")),
        ("FlashReader", FlashReader()),
        ("ParameterImageReceiver", ParameterImageReceiver(design_id=DESIGN)),
        ("ParameterLoader (FlashReader + receiver)", ParameterLoader(design_id=DESIGN)),
        ("BootLoadedSPRAM (loader + bank + port mux)",
         BootLoadedSPRAM(design_id=DESIGN, implementation="primitive")),
        ("EngineUARTFrontEnd", engine_front_end()),
        ("VectorMultiply, 1 lane", VectorMultiply(lanes=1)),
        ("VectorMultiply, 2 lanes", VectorMultiply(lanes=2)),
        ("VectorMultiply, 1 lane, x 18-bit, acc 36-bit", wide_vector_multiply(lanes=1)),
    ]
    print("Yosys synth_ice40 -dsp, each block alone")
    print(f"{'block':46} {'LUT4':>5} {'CARRY':>5} {'FF':>4} {'EBR':>4} {'SPRAM':>5} {'DSP':>4}")
    for index, (label, block) in enumerate(blocks):
        cells = yosys_cells(block, f"block{index}", folder)
        flops = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
        print(f"{label:46} {cells.get('SB_LUT4', 0):5} {cells.get('SB_CARRY', 0):5} {flops:4} "
              f"{cells.get('SB_RAM40_4K', 0):4} {cells.get('SB_SPRAM256KA', 0):5} "
              f"{cells.get('SB_MAC16', 0):4}", flush=True)


def nextpnr_table(folder: Path, seeds: int) -> None:
    board = get_board("icebreaker")
    print(f"\nnextpnr-ice40 on the iCEBreaker (UP5K-SG48), {seeds} seeds; target Fmax ≥ {TARGET_MHZ:.0f} MHz")
    print(f"{'top':28} {'LC':>11} {'EBR':>4} {'SPRAM':>5} {'DSP':>4} {'Fmax MHz (range)':>22} {'target':>7}")
    for index, (label, top) in enumerate((
            ("loader + SPRAM bank", LoaderBenchTop()),
            ("vector multiplier, 2 lanes", VectorMultiplyBenchTop()),
            ("vector mult., 2 lanes 18/36", VectorMultiplyBenchTop(x_width=18, accumulator_width=36,
                                                                  max_shift=35)))):
        build = folder / f"top{index}"
        first = build_board(top, board, build, seed=1, synth_opts="-dsp")
        results = [first] + [place_and_route(build, board, seed) for seed in range(2, seeds + 1)]
        fmax = sorted(max(f["achieved"] for f in r.fmax_mhz.values()) for r in results)
        use = first.utilisation
        median = statistics.median(fmax)
        print(f"{label:28} {use['ICESTORM_LC'].used:5}/{use['ICESTORM_LC'].available:5} "
              f"{use['ICESTORM_RAM'].used:4} {use['ICESTORM_SPRAM'].used:5} {use['ICESTORM_DSP'].used:4} "
              f"{median:8.1f} ({fmax[0]:.1f}–{fmax[-1]:.1f}) {'≥ 40 ' + ('ok' if median >= TARGET_MHZ else 'MISS'):>9}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engine-blocks-") as tmp:
        yosys_table(Path(tmp))
        nextpnr_table(Path(tmp), args.seeds)


if __name__ == "__main__":
    main()
