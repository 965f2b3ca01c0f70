"""lint_verilog: clean on Amaranth output (waivers cover only its style), and it reports
real problems in hand-written Verilog."""
from stream_duts import PairSummer, RegisterSlice

from binaryvit.hw.verilog import to_verilog, write_verilog
from binaryvit.sim.lint import lint_verilog


def test_amaranth_output_is_clean(tmp_path):
    path = write_verilog(RegisterSlice(), "register_slice", tmp_path / "any_file_name.v")
    assert lint_verilog(path, "register_slice") == []
    assert lint_verilog(to_verilog(PairSummer(), "pair_summer"), "pair_summer") == []


def test_real_problems_are_reported():
    widening = "module m(input a, output [3:0] b);\n  assign b = a;\nendmodule\n"
    assert any(p.startswith("WIDTHEXPAND") for p in lint_verilog(widening, "m"))
    unused = ("module m(input a, output b);\n  wire [3:0] spare;\n"
              "  assign spare = {4{a}};\n  assign b = a;\nendmodule\n")
    assert any(p.startswith("UNUSEDSIGNAL") and "spare" in p
               for p in lint_verilog(unused, "m"))


def test_a_concatenation_of_nets_is_an_alias():
    # Amaranth names a payload whose fields arrive as separate nets `{ \port$7 , \port$6 }`
    concatenation = ("module m(input a, input c, output [1:0] b);\n  wire [1:0] named;\n"
                     "  assign named = { a , c };\n  assign b = { a , c };\nendmodule\n")
    assert lint_verilog(concatenation, "m") == []
    expression = ("module m(input a, input c, output [1:0] b);\n  wire [1:0] named;\n"
                  "  assign named = { a , a & c };\n  assign b = { a , c };\nendmodule\n")
    assert any(p.startswith("UNUSEDSIGNAL") and "named" in p
               for p in lint_verilog(expression, "m"))


def test_broken_verilog_is_an_error():
    problems = lint_verilog("module m(input a, output b);\n  assign b = ;\nendmodule\n", "m")
    assert any(p.startswith("ERROR") for p in problems)


def test_verilog_is_deterministic():
    assert to_verilog(RegisterSlice(), "r") == to_verilog(RegisterSlice(), "r")
