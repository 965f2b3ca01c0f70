"""`binaryvit build OUT --board B`: the command around the board build, end to end.

OUT is laid out as `binaryvit generate` leaves it (rtl/binaryvit_top.v + rtl/network.json);
the module in it is a real kernel's Verilog (a linear classifier StemUnit over 8×8 digits).
"""
import json
import shutil

import pytest
import torch

from binaryvit.cli import main
from binaryvit.hw.boards.board_build import BUILD_JSON, BuildResult
from binaryvit.hw.kernels.mac import StemUnit
from binaryvit.hw.verilog import to_verilog


def generated_out(tmp_path):
    g = torch.Generator().manual_seed(11)
    stem = StemUnit(weights=torch.randint(-8, 8, (10, 64), generator=g),
                    bias=torch.randint(-200, 200, (10,), generator=g), shift=2, out_width=12,
                    pe=2, simd=4)
    out = tmp_path / "out"
    (out / "rtl").mkdir(parents=True)
    (out / "rtl" / "binaryvit_top.v").write_text(to_verilog(stem, "binaryvit_top"))
    (out / "rtl" / "network.json").write_text(json.dumps({
        "top": "binaryvit_top", "verilog": "binaryvit_top.v", "pixel_width": 5,
        "input_lanes": 4, "logit_width": 12, "logit_lanes": 2, "classes": 10, "pixels": 64}))
    return out


def test_build_without_a_generated_network_says_to_run_generate(tmp_path, capsys):
    assert main(["build", str(tmp_path / "empty"), "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert "has no generated network" in err and "binaryvit generate" in err


def test_build_refuses_a_stale_network_description(tmp_path, capsys):
    out = generated_out(tmp_path)
    description = json.loads((out / "rtl" / "network.json").read_text())
    description["logit_width"] = 16
    (out / "rtl" / "network.json").write_text(json.dumps(description))
    assert main(["build", str(out)]) == 2
    assert "o__payload" in capsys.readouterr().err


def test_build_refuses_a_baud_rate_the_board_clock_cannot_make(tmp_path, capsys):
    out = generated_out(tmp_path)
    assert main(["build", str(out), "--baud", "5000000"]) == 2
    assert "too fast for a 12 MHz clock" in capsys.readouterr().err


@pytest.mark.board
def test_build_leaves_the_bitstream_logs_and_record_in_out_build_board(tmp_path, capsys):
    out = generated_out(tmp_path)
    assert main(["build", str(out), "--board", "icebreaker", "--seed", "2"]) == 0
    folder = out / "build" / "icebreaker"
    for name in ("top.bin", "top.asc", "top.rpt", "top.tim", "top.report.json", "build.log",
                 "binaryvit_top.v"):
        assert (folder / name).is_file(), name
    record = BuildResult.load(folder / BUILD_JSON)
    assert record.ok and record.seed == 2 and record.bitstream == "top.bin"
    printed = capsys.readouterr().out
    assert f"ICESTORM_LC: {record.utilisation['ICESTORM_LC'].used:6d} /   5280" in printed


def test_build_refuses_a_design_the_estimate_says_does_not_fit(tmp_path, capsys):
    out = generated_out(tmp_path)
    (out / "reports").mkdir()
    (out / "reports" / "estimate.json").write_text(json.dumps({"resources": {"ice40": {
        "total": {"luts": 9000, "ffs": 3000, "brams": 45, "dsps": 0}, "lut_ram_limits": None}}}))
    assert main(["build", str(out), "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert "the resource estimate says" in err and "does not fit the 1BitSquared iCEBreaker" in err
    assert "ICESTORM_LC: 9000 needed of 5280 (170 % of 5280): 3720 over" in err
    assert "ICESTORM_RAM: 45 needed of 30 (150 % of 30): 15 over" in err
    assert "binaryvit generate" in err and "--force" in err
    assert not (out / "build").exists()   # refused before any tool ran


@pytest.mark.slow
def test_flow_for_the_ulx3s_falls_back_to_the_engine_when_no_dataflow_folding_fits(
        trained_checkpoint, tmp_path, capsys):
    # The briefly trained fixture (3 epochs), quantized with the ULX3S formats, needs 211
    # DP16KD at its smallest dataflow folding under every LUT-RAM option, 3 more than the
    # LFE5U-85F has. With --arch dataflow the flow stops with one line before any tool runs;
    # by default it targets the layer-sequential engine instead and builds that (issue 12:
    # "flow --board ulx3s works for every trained tiny-digits model").
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(trained_checkpoint, out / "model.pt")
    assert main(["flow", "-o", str(out), "--board", "ulx3s", "--arch", "dataflow",
                 "--images", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no folding fits the Radiona ULX3S" in err
    assert "DP16KD: 211 needed of 208" in err
    assert json.loads((out / "manifest.json").read_text())["formats"]["stream_width"] == 17
    assert not (out / "rtl").exists() and not (out / "build").exists()
    # the iCE40UP5K cannot hold the dataflow either: refused before any tool runs
    assert main(["generate", str(out), "--board", "icebreaker", "--arch", "dataflow"]) == 2
    err = capsys.readouterr().err
    assert "no folding fits the 1BitSquared iCEBreaker" in err
    assert "ICESTORM_LC" in err and "ICESTORM_RAM" in err

    assert main(["flow", "-o", str(out), "--board", "ulx3s", "--images", "1", "--seeds", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "no folding fits the Radiona ULX3S" in printed
    assert "the flow targets the engine instead" in printed
    assert "0 mismatching logits" in printed
    assert (out / "params.bin").is_file() and (out / "rtl" / "engine.json").is_file()
    build = json.loads((out / "build" / "ulx3s" / "build.json").read_text())
    assert build["bitstream"] and (out / "build" / "ulx3s" / build["bitstream"]).is_file()
