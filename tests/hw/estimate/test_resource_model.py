"""The resource model: Yosys' memory mapping by hand, the kernels' memories as elaborated,
and estimates against real (small) Yosys runs.

The estimate is a planning bound, not a synthesis result: block RAMs and DSP blocks must
match Yosys exactly; logic cells must be within ``LOGIC_BOUND`` of it.
"""
import dataclasses
import json
import subprocess

import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape
from amaranth.hdl._mem import MemoryInstance
from network_models import int_model

from binaryvit.hw.boards.definitions import yowasp_env
from binaryvit.hw.estimate.network_estimate import kernel_cost, network_resources
from binaryvit.hw.kernels.affine import AffineUnit
from binaryvit.hw.kernels.residual_add import ResidualAdd
from binaryvit.hw.network.folding import fold_network
from binaryvit.hw.network.graph import TensorInfo, infer_tensors
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.estimate.resource_model import (FAMILIES, KernelCost, MemoryShape, Resources,
                                                  fifo_memory, fifo_resources, map_memory)
from binaryvit.golden.intref.intmodel import Step
from binaryvit.hw.streams.stream_fifo import StreamFIFO
from binaryvit.hw.streams.stream_width import element_layout
from binaryvit.hw.verilog import to_verilog

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

ECP5, ICE40 = FAMILIES["ecp5"], FAMILIES["ice40"]
LOGIC_BOUND = 0.35


# -- memory mapping: memory_libmap's costs worked by hand ---------------------------------

def test_a_fifo_of_an_image_takes_three_1024x18_block_rams_on_the_ecp5():
    # 18 bits × 2113 words. DP16KD 1024x18: 3 address blocks, 3 cells, cost 128·3 + ½·2·18
    # (read mux) + ½·3 (write demux) + 2 (separate read port) = 405.5; PDPW16KD 512x36 packs
    # 5 blocks of 18 bits into 3 cells but its 5-way mux costs more (424.5); logic 38034.
    mapping = map_memory(fifo_memory(18, 2114), ECP5)
    assert (mapping.kind, mapping.cells, mapping.geometry) == ("block", 3, "1024x18")
    assert mapping.resources.brams == 3


def test_the_same_fifo_takes_eleven_256x16_block_rams_on_the_ice40():
    # With per-bit write enables a 256x16 SB_RAM40_4K packs 9 blocks of 18 bits into
    # ⌈9·18/16⌉ = 11 cells (cost 782.5); 512x8 without them needs 15.
    mapping = map_memory(fifo_memory(18, 2114), ICE40)
    assert (mapping.kind, mapping.cells, mapping.geometry) == ("block", 11, "256x16")


def test_small_constant_tables_become_logic():
    # A 40-bit × 32-word ROM: logic costs 1280/16 = 80, a PDPW16KD 512x36 needs 2 cells (258).
    rom = MemoryShape("constants", 40, 32, writable=False)
    assert map_memory(rom, ECP5).kind == "logic"
    assert map_memory(rom, ICE40).kind == "logic"
    # Columns equal in every word are dropped first: 36 varying bits fit one cell (130),
    # still above the logic cost of 72.
    assert map_memory(MemoryShape("c", 40, 32, writable=False, varying=36), ECP5).kind == "logic"


def test_read_before_write_emulation_sends_a_small_kernel_ram_to_lut_ram():
    # 23 bits × 64 words. PDPW16KD 512x36 (one cell): 128 + 2 = 130, plus 6 when Yosys must
    # emulate read-before-write; LUT RAM: 4 blocks of 16 words × 24 bits = 24 cells,
    # 96 + ½·3·23 + ½·4 + 2 = 134.5.
    kernel_ram = MemoryShape("buffer", 23, 64, writable=True)
    fifo_like = MemoryShape("buffer", 23, 64, writable=True, collision_free=True)
    assert (map_memory(kernel_ram, ECP5).kind, map_memory(kernel_ram, ECP5).cells) == \
        ("distributed", 24)
    assert map_memory(fifo_like, ECP5).geometry == "512x36"


def test_lut_ram_limits_force_small_rams_out_of_block_ram():
    limited = dataclasses.replace(ECP5, lut_ram_limits=(66, 20))
    small, wide = fifo_memory(18, 66), fifo_memory(33, 66)
    assert map_memory(small, ECP5).kind == "block"
    assert map_memory(small, limited).kind == "distributed"
    assert map_memory(wide, limited).kind == "block"        # wider than the limit
    assert map_memory(MemoryShape("rom", 18, 64, writable=False), limited).kind == "logic"


def test_dsp_blocks_follow_the_magnitude_bits_of_each_operand():
    # measured on synth_ecp5: 24 × 20 → 4, 7 × 20 → 2, 18 × 18 → 1 (one 18×18 signed block)
    for (a, b), blocks in {(24, 20): 4, (7, 20): 2, (18, 18): 1, (19, 18): 1}.items():
        assert KernelCost(multipliers=[(a, b)]).price(ECP5).dsps == blocks
        assert KernelCost(multipliers=[(a, b)]).price(ICE40).dsps == 0


# -- the kernels' memories are the ones they elaborate ------------------------------------

def _elaborated_memories(component):
    found = []

    def walk(fragment):
        if isinstance(fragment, MemoryInstance):
            data = fragment._data
            found.append((Shape.cast(data.shape).width, data.depth, bool(fragment._write_ports),
                          any(p._transparent_for for p in fragment._read_ports)))
            return
        for sub, _, _ in fragment.subfragments:
            walk(sub)
    walk(Fragment.get(component, None))
    return sorted(found)


@pytest.mark.parametrize("target", [64, 512])
def test_every_kernel_memory_of_the_micro_network_is_in_the_model(target):
    model = int_model("micro")
    folding = fold_network(model, target_cycles=target)
    network = plan_network(model, folding)
    tensors = infer_tensors(model)
    steps = {s.name: s for s in model.steps}
    for name, node in network.nodes.items():
        modelled = sorted((m.width, m.depth, m.writable, m.transparent)
                          for m in kernel_cost(steps[name], folding.folds[name], tensors,
                                               steps).memories)
        assert modelled == _elaborated_memories(node.component), name


def test_network_estimate_adds_kernels_fifos_and_plumbing():
    model = int_model("micro")
    network = plan_network(model, fold_network(model, target_cycles=256))
    estimate = network_resources(network, ECP5)
    assert sum(1 for part in estimate.parts if ".fifo" in part) == len(network.fifos()) > 0
    assert set(network.nodes) <= set(estimate.parts)
    total = Resources()
    for part in estimate.parts.values():
        total = total + part
    assert total == estimate.total
    assert estimate.total.dsps > 0 and estimate.total.brams > 0


# -- against Yosys ------------------------------------------------------------------------

def _yosys_cells(verilog: str, top: str, family: str, tmp_path) -> dict[str, int]:
    env = yowasp_env()
    (tmp_path / f"{top}.v").write_text(verilog)
    stat = tmp_path / f"{top}_{family}.json"
    subprocess.run([env["YOSYS"], "-q", "-p", f"read_verilog {top}.v; synth_{family} -top {top}; "
                    f"tee -q -o {stat.name} stat -json"], cwd=tmp_path, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(stat.read_text())["design"]["num_cells_by_type"]


def _as_resources(cells: dict[str, int], family: str) -> Resources:
    """Yosys' cells as nextpnr counts them (docs/boards.md, "Resource model")."""
    if family == "ecp5":
        luts = (cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
                + 6 * cells.get("TRELLIS_DPR16X4", 0) + 0.75 * cells.get("PFUMX", 0))
        return Resources(luts, cells.get("TRELLIS_FF", 0), cells.get("DP16KD", 0),
                         cells.get("MULT18X18D", 0))
    flops = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    return Resources(cells.get("SB_LUT4", 0) + ICE40.ff_cell_share * flops, flops,
                     cells.get("SB_RAM40_4K", 0), 0)


def _assert_close(estimate: Resources, measured: Resources):
    assert estimate.brams == measured.brams and estimate.dsps == measured.dsps
    assert abs(estimate.luts - measured.luts) <= LOGIC_BOUND * measured.luts, (estimate, measured)
    assert abs(estimate.ffs - measured.ffs) <= LOGIC_BOUND * measured.ffs + 8, (estimate, measured)


@pytest.mark.parametrize("family", ["ecp5", "ice40"])
def test_fifo_estimate_against_yosys(family, tmp_path):
    fifo = StreamFIFO(element_layout("fixed", 17, 1), 1090)   # 18-bit words, 1089 in memory
    measured = _as_resources(_yosys_cells(to_verilog(fifo, "fifo"), "fifo", family, tmp_path),
                             family)
    _assert_close(fifo_resources(18, 1090, FAMILIES[family]), measured)


def _affine_step(in_width: int, mul_width: int, channels: int, seed: int):
    """An affine step with random per-channel constants (every ROM column varies), the
    tensors around it, and the same kernel built for synthesis."""
    g = np.random.default_rng(seed)
    mul = g.integers(-(1 << (mul_width - 1)), 1 << (mul_width - 1), channels)
    bias = g.integers(-(1 << 30), 1 << 30, channels)
    step = Step("affine", "affine", ("x",), {"shift": 18, "width": in_width},
                {"mul": mul, "bias": bias})
    info = TensorInfo("fixed", in_width, channels, 64, (8, 8))
    return step, {"x": info, "affine": info}, mul, bias


@pytest.mark.parametrize("in_width,mul_width,channels,lanes,family", [
    (24, 20, 32, 1, "ecp5"),    # the default formats: a 4-block product
    (17, 18, 64, 2, "ecp5")])   # the ULX3S formats: one block per lane
def test_affine_estimate_against_yosys(in_width, mul_width, channels, lanes, family, tmp_path):
    step, tensors, mul, bias = _affine_step(in_width, mul_width, channels, seed=channels + lanes)
    unit = AffineUnit(channels=channels, lanes=lanes, in_width=in_width, mul=mul.tolist(),
                      bias=bias.tolist(), shift=18, out_width=in_width)
    cells = _yosys_cells(to_verilog(unit, "affine"), "affine", family, tmp_path)
    _assert_close(kernel_cost(step, {"lanes": lanes}, tensors).price(FAMILIES[family]),
                  _as_resources(cells, family))


def test_residual_add_estimate_against_yosys(tmp_path):
    info = TensorInfo("fixed", 17, 32, 64, (8, 8))
    step = Step("sum", "residual_add", ("a", "b"), {"width": 17})
    add = ResidualAdd(channels=32, lanes=4, in_width=17, out_width=17)
    cells = _yosys_cells(to_verilog(add, "add"), "add", "ecp5", tmp_path)
    _assert_close(kernel_cost(step, {"lanes": 4}, {"a": info, "b": info, "sum": info}).price(ECP5),
                  _as_resources(cells, "ecp5"))
