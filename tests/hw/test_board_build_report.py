"""`binaryvit report OUT`: tables and plots from whatever OUT holds, and what is missing."""
import json

from binaryvit.cli import main
from binaryvit.hw.board_build import BUILD_JSON, BuildResult, Usage

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
    # 50 MHz / 1000 cycles = 50,000 images/s; 2·64·50e6·0.5 / 5 kLUT = 0.64 GOPS/kLUT
    assert "| icebreaker | 5000/5280 | ICESTORM_RAM 12/30 | 50.0 (meets 40) | 50,000 | 0.6 | fits |" in text
    assert "TRELLIS_COMB: 90000 used of 83640 available (108 %, 6360 over)" in text
    assert "LUT4 6000 of 5280 (does not fit: 720 over, 114 %)" in text
    # 130,000 bits against 30 EBR · 4096 = 122,880: 7,120 over
    assert "memory bits 130000 of 122880 (does not fit: 7120 over, 106 %)" in text
    assert "LUT4 6000 of 83640 (fits, 7 %); memory bits 130000 of 3833856 (fits, 3 %)" in text
    for png in ("cycles_per_layer.png", "luts_per_layer.png", "utilisation.png"):
        assert (out / "reports" / png).read_bytes()[:8] == PNG_MAGIC
        assert f"]({png})" in text
