"""`binaryvit report OUT`: tables and plots from whatever OUT holds, and what is missing."""
import json

from binaryvit.cli import main
from binaryvit.hw.boards.board_build import BUILD_JSON, BuildResult, Usage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_an_empty_out_gives_a_report_that_names_every_missing_input(tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(out)]) == 0
    text = (out / "reports" / "report.md").read_text()
    for needed in ("manifest.json", "binaryvit quantize", "estimate.json", "binaryvit generate",
                   "sim.json", "binaryvit sim", BUILD_JSON, "binaryvit build"):
        assert needed in text, needed


def test_report_tables_hold_hand_computed_figures_and_the_overflow(tmp_path):
    out = tmp_path / "out"
    write(out / "manifest.json", {"config": {"name": "tiny-digits"},
                                  "checkpoint": {"metrics": {"test_accuracy": 0.9525}}})
    write(out / "reports" / "estimate.json", {
        "cycles_per_image": 1200, "ideal_cycles_per_image": 1000, "bottleneck": "block0.mlp",
        "luts": 6000, "xnor_lanes": 64, "xnor_utilisation": 0.5, "weight_bits": 100000,
        "fifo_bits": 30000,
        "resources": {
            "ice40": {"total": {"luts": 6000, "ffs": 2000, "brams": 12, "dsps": 0},
                      "memories": [{"part": "block0.norm", "memory": "constants", "width": 40,
                                    "depth": 32, "rom": True, "kind": "logic", "cells": 0,
                                    "geometry": "", "reason": "soft logic costs 80"},
                                   {"part": "x.fifo0", "memory": "storage", "width": 18,
                                    "depth": 2113, "rom": False, "kind": "block", "cells": 11,
                                    "geometry": "256x16", "reason": "SB_RAM40_4K"}]},
            "ecp5": {"total": {"luts": 90000, "ffs": 40000, "brams": 100, "dsps": 50},
                     "memories": []}},
        "layers": [{"name": "stem", "op": "fixed_mac", "fold": {"pe": 2, "simd": 1},
                    "cycles_per_image": 1024, "ideal_cycles_per_image": 1000, "luts": 900},
                   {"name": "block0.mlp", "op": "xnor_popcount_dot", "fold": {"pe": 4, "simd": 16},
                    "cycles_per_image": 1200, "ideal_cycles_per_image": 1000, "luts": 5100}]})
    write(out / "reports" / "sim.json", {"totals": {
        "images": 20, "mismatches": 0, "hw_top1": 0.95, "ref_top1": 0.95,
        "cycles_per_image_measured": 1000.0}})
    ice = BuildResult(board="icebreaker", utilisation={"ICESTORM_LC": Usage(5000, 5280),
                                                       "ICESTORM_RAM": Usage(12, 30)},
                      fmax_mhz={"clk": {"achieved": 50.0, "constraint": 12.0}}, ok=True,
                      bitstream="top.bin")
    ecp = BuildResult(board="ulx3s", utilisation={"TRELLIS_COMB": Usage(90000, 83640)},
                      overflows=["TRELLIS_COMB: 90000 used of 83640 available (108 %, 6360 over)"])
    for build in (ice, ecp):
        write(out / "build" / build.board / BUILD_JSON, build.to_json())
    assert main(["report", str(out)]) == 0
    text = (out / "reports" / "report.md").read_text()
    assert "Missing inputs" not in text
    assert "| float (PyTorch) | 95.25 % |" in text
    assert "| RTL (Verilator) | 95.00 % | 20 test images |" in text
    assert "| block0.mlp | xnor_popcount_dot | pe=4 simd=16 | 1200 | 1000 | — | 5100 |" in text
    # 50 MHz / 1000 cycles = 50,000 images/s; 2·64·50e6 / 5 kLUT = 1.28 GOPS/kLUT peak, 0.64
    # at the lanes' utilisation of 0.5
    assert ("| icebreaker | 5000/5280 | ICESTORM_RAM 12/30 | 50.0 (meets 40) | 50,000 | "
            "1.28 (0.64) | fits |") in text
    assert "TRELLIS_COMB: 90000 used of 83640 available (108 %, 6360 over)" in text
    # estimate against the device, and nextpnr's count beside it once built
    assert "| icebreaker | ICESTORM_LC | 6000 | 5000 | 5280 | 114 % | **720 over** |" in text
    assert "| icebreaker | ICESTORM_RAM | 12 | 12 | 30 | 40 % | fits |" in text
    assert ("| ulx3s | TRELLIS_COMB | 90000 | 90000 | 83640 | 108 % | **6360 over**; built: "
            "**6360 over** |") in text
    assert "| ulx3s | MULT18X18D | 50 | — | 156 | 32 % | fits |" in text
    assert "- ice40 memories: 1 block (11 cells), 1 in logic." in text
    assert "  - block0.norm.constants (ROM 40 × 32): soft logic costs 80" in text
    for png in ("cycles_per_layer.png", "luts_per_layer.png", "utilisation.png"):
        assert (out / "reports" / png).read_bytes()[:8] == PNG_MAGIC
        assert f"]({png})" in text
