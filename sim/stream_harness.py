"""A Verilog testbench that streams stimulus in and results out on the simulator side.

Moving every word from Python on every cycle (cocotb's usual way) bounds a simulation to a
few thousand cycles per second. ``harness_verilog`` writes a small Verilog module that
wraps a top and does that work inside the simulator: it reads the input words from a hex
file (``$fscanf``, one word per line, so any number of images fits), offers them on the
top's input stream with pseudo-random bubbles, applies pseudo-random back-pressure on its
output stream, and writes every output word and the cycle on which each image's last one
left to a result file (``$fwrite``). cocotb only starts the clock and awaits the
harness's ``done`` or ``stalled`` flag (and wakes up every ``progress_cycles`` to report
progress): the Verilator model then runs at its own speed.

Harness contract (what a top must provide; the dataflow accelerator and any future top,
such as an engine, that follows it can use this harness unchanged):

- ports ``clk`` and ``rst`` (synchronous, active high);
- an input stream ``i``: ``i__valid``, ``i__ready`` (out), ``i__payload`` (``in_width`` bits);
- an output stream ``o``: ``o__valid``, ``o__ready`` (in), ``o__payload`` (``out_width``);
- optionally further output streams (``side``, e.g. the accelerator's ``cls``) that are
  always ready and captured;
- every image is a fixed number of input words and a fixed number of output words on ``o``
  (and on each side stream); valid/ready handshake, a transfer on each cycle where both
  are high at the rising edge.

Optional monitors observe internal streams by hierarchical name (``<path>.o__valid`` and
``<path>.o__ready``, e.g. a kernel's output inside the accelerator) and record the cycles
of each image's first and last word there; they measure per-layer timing without changing
the design under test.

Run-time settings are plusargs (so one build serves every run): ``+stimulus=FILE``,
``+result=FILE``, ``+in_words=N`` (total), ``+in_per_image=N``, ``+out_per_image=N``,
``+images=N``, ``+bubble=P`` and ``+stall=P`` (probabilities in 1/65536), ``+seed=S``,
``+idle_limit=N`` (cycles without a transfer on any port before ``stalled``),
``+period=N`` (image ``n`` is not offered before cycle ``n · N``; 0: back to back),
``+monitor_images=N`` (monitors record the first ``N`` images only).

The harness holds ``rst`` itself for the first ``RESET_CYCLES`` cycles: its only input is
``clk``. (Were the reset a top-level input, Verilator would re-evaluate every piece of
logic that reads it on each clock edge, before the clocked logic: measured on tiny-digits,
that took 60 % of the simulation time.)

Result file lines (cycles count rising edges after reset, from 0): ``f C`` the first input
transfer; ``o HEX`` an output word; ``d C`` the cycle of an image's last ``o`` word;
``s<k> HEX`` a word on side stream ``k``; ``m<k> IMAGE FIRST LAST`` a monitor's image;
``x`` an ``o`` word beyond the expected ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from binaryvit.errors import ConfigError

__all__ = ["Monitor", "StreamTop", "harness_verilog", "HARNESS_PREFIX", "PROBABILITY_ONE",
           "RESET_CYCLES"]

HARNESS_PREFIX = "harness_"
PROBABILITY_ONE = 1 << 16
RESET_CYCLES = 3


@dataclass(frozen=True)
class Monitor:
    """An internal stream to time: the instance path of a module whose output stream is
    ``o`` (e.g. ``u_stem_norm``) and its words per image."""

    path: str
    words_per_image: int


@dataclass(frozen=True)
class StreamTop:
    """A top module following the harness contract (see the module docstring)."""

    name: str
    in_width: int
    out_width: int
    side: dict[str, int] = field(default_factory=dict)
    monitors: tuple[Monitor, ...] = ()

    @property
    def harness_name(self) -> str:
        return HARNESS_PREFIX + self.name


def _bits(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def harness_verilog(top: StreamTop) -> str:
    """The harness module ``harness_<top>`` (ports ``clk``, ``done``, ``stalled``,
    ``images_out[31:0]``) around ``top``; it resets ``top`` for its first ``RESET_CYCLES``
    cycles."""
    for label, width in (("in_width", top.in_width), ("out_width", top.out_width),
                         *top.side.items()):
        if width < 1:
            raise ConfigError(f"harness of {top.name}: {label} must be at least 1, not {width}")
    side = list(top.side.items())
    lines = [
        "`timescale 1ns/1ps",
        f"module {top.harness_name} (",
        "  input wire clk,",
        "  output reg done,",
        "  output reg stalled,",
        "  output reg [31:0] images_out",
        ");",
        "  // Reset for the first RESET_CYCLES cycles, generated here: a top-level reset input",
        "  // would make Verilator re-evaluate all logic that reads it on every clock edge.",
        "  reg [1:0] reset_count = 2'd0;",
        "  wire rst = reset_count != 2'd3;",
        "  always @(posedge clk) if (rst) reset_count <= reset_count + 2'd1;",
        "  reg [1023:0] stimulus_path, result_path;",
        "  integer stimulus, result, scanned;",
        "  reg [63:0] in_words, in_per_image, out_per_image, images, idle_limit, period;",
        "  reg [63:0] monitor_images;",
        "  reg [31:0] bubble, stall, seed;",
        "  initial begin",
        '    if (!$value$plusargs("stimulus=%s", stimulus_path)) $fatal(1, "+stimulus= missing");',
        '    if (!$value$plusargs("result=%s", result_path)) $fatal(1, "+result= missing");',
        '    if (!$value$plusargs("in_words=%d", in_words)) $fatal(1, "+in_words= missing");',
        '    if (!$value$plusargs("in_per_image=%d", in_per_image)) $fatal(1, "+in_per_image= missing");',
        '    if (!$value$plusargs("out_per_image=%d", out_per_image)) $fatal(1, "+out_per_image= missing");',
        '    if (!$value$plusargs("images=%d", images)) $fatal(1, "+images= missing");',
        '    if (!$value$plusargs("idle_limit=%d", idle_limit)) idle_limit = 64\'d100000;',
        '    if (!$value$plusargs("period=%d", period)) period = 0;',
        '    if (!$value$plusargs("monitor_images=%d", monitor_images)) monitor_images = 0;',
        '    if (!$value$plusargs("bubble=%d", bubble)) bubble = 0;',
        '    if (!$value$plusargs("stall=%d", stall)) stall = 0;',
        '    if (!$value$plusargs("seed=%d", seed)) seed = 1;',
        '    stimulus = $fopen(stimulus_path, "r");',
        '    if (stimulus == 0) $fatal(1, "cannot open the stimulus file");',
        '    result = $fopen(result_path, "w");',
        '    if (result == 0) $fatal(1, "cannot open the result file");',
        "  end",
        "  final begin",
        "    $fclose(result);",
        "    $fclose(stimulus);",
        "  end",
        "",
        "  // Two xorshift32 generators: input bubbles and output back-pressure.",
        "  reg [31:0] rng_in, rng_out;",
        "  function [31:0] xorshift32(input [31:0] x);",
        "    reg [31:0] y;",
        "    begin",
        "      y = x ^ (x << 13);",
        "      y = y ^ (y >> 17);",
        "      xorshift32 = y ^ (y << 5);",
        "    end",
        "  endfunction",
        "",
        f"  reg {_bits(top.in_width)}i_payload;",
        f"  reg {_bits(top.in_width)}scanned_word;",
        "  reg i_valid;",
        "  wire i_ready;",
        "  wire o_valid;",
        f"  wire {_bits(top.out_width)}o_payload;",
        "  wire o_ready = {1'b0, rng_out[15:0]} >= stall[16:0];",
    ]
    for k, (name, width) in enumerate(side):
        lines += [f"  wire s{k}_valid;", f"  wire {_bits(width)}s{k}_payload;"]
    ports = [".clk(clk)", ".rst(rst)", ".i__valid(i_valid)", ".i__ready(i_ready)",
             ".i__payload(i_payload)", ".o__valid(o_valid)", ".o__ready(o_ready)",
             ".o__payload(o_payload)"]
    for k, (name, _) in enumerate(side):
        ports += [f".{name}__valid(s{k}_valid)", f".{name}__ready(1'b1)",
                  f".{name}__payload(s{k}_payload)"]
    lines += [f"  {top.name} dut (", *[f"    {p}," for p in ports[:-1]], f"    {ports[-1]}",
              "  );", ""]
    lines += [
        "  reg [63:0] cycle, loaded, sent, out_words, out_in_image, idle, next_image_at;",
        "  reg [63:0] in_image_word;",
        *[f"  reg [63:0] s{k}_words;" for k in range(len(side))],
        "  wire in_fire = i_valid & i_ready;",
        "  wire out_fire = o_valid & o_ready;",
        "  wire bubble_now = {1'b0, rng_in[15:0]} < bubble[16:0];",
        "  wire slot_free = !i_valid || i_ready;",
        "  wire may_offer = loaded < in_words && !bubble_now &&",
        "                   (in_image_word != 0 || cycle >= next_image_at);",
    ]
    moved = ["in_fire", "out_fire", *[f"s{k}_valid" for k in range(len(side))]]
    complete = ["out_words >= out_per_image * images",
                *[f"s{k}_words >= images" for k in range(len(side))]]
    monitor_lines: list[str] = []
    for k, monitor in enumerate(top.monitors):
        lines += [f"  wire m{k}_fire = dut.{monitor.path}.o__valid & dut.{monitor.path}.o__ready;",
                  f"  reg [63:0] m{k}_words, m{k}_image, m{k}_first;"]
        monitor_lines += [
            f"      if (m{k}_fire && m{k}_image < monitor_images) begin",
            f"        if (m{k}_words == 0) m{k}_first <= cycle;",
            f"        if (m{k}_words == {monitor.words_per_image - 1}) begin",
            f"          $fwrite(result, \"m{k} %0d %0d %0d\\n\", m{k}_image,"
            f" m{k}_words == 0 ? cycle : m{k}_first, cycle);",
            f"          m{k}_words <= 0;",
            f"          m{k}_image <= m{k}_image + 1;",
            f"        end else m{k}_words <= m{k}_words + 1;",
            "      end",
        ]
    resets = ["i_valid", "cycle", "loaded", "sent", "out_words", "out_in_image", "idle",
              "next_image_at", "in_image_word", "done", "stalled", "images_out",
              *[f"s{k}_words" for k in range(len(side))],
              *[f"m{k}_{r}" for k in range(len(top.monitors)) for r in ("words", "image",
                                                                         "first")]]
    lines += [
        "",
        "  always @(posedge clk) begin",
        "    if (rst) begin",
        *[f"      {name} <= 0;" for name in resets],
        "      rng_in <= seed == 0 ? 32'h9e3779b9 : seed;",
        "      rng_out <= (seed == 0 ? 32'h9e3779b9 : seed) ^ 32'h5bd1e995;",
        "    end else begin",
        "      cycle <= cycle + 1;",
        "      rng_in <= xorshift32(rng_in);",
        "      rng_out <= xorshift32(rng_out);",
        "      if (in_fire) begin",
        "        if (sent == 0) $fwrite(result, \"f %0d\\n\", cycle);",
        "        sent <= sent + 1;",
        "      end",
        "      if (slot_free) begin",
        "        if (may_offer) begin",
        "          scanned = $fscanf(stimulus, \"%h\\n\", scanned_word);",
        "          if (scanned != 1) $fatal(1, \"the stimulus file ended early\");",
        "          i_payload <= scanned_word;",
        "          i_valid <= 1;",
        "          loaded <= loaded + 1;",
        "          if (in_image_word == 0) next_image_at <= next_image_at + period;",
        "          in_image_word <= in_image_word + 1 == in_per_image ? 0 : in_image_word + 1;",
        "        end else i_valid <= 0;",
        "      end",
        "      if (out_fire) begin",
        "        if (out_words >= out_per_image * images) $fwrite(result, \"x\\n\");",
        "        else $fwrite(result, \"o %h\\n\", o_payload);",
        "        out_words <= out_words + 1;",
        "        if (out_in_image + 1 == out_per_image) begin",
        "          $fwrite(result, \"d %0d\\n\", cycle);",
        "          out_in_image <= 0;",
        "          images_out <= images_out + 1;",
        "        end else out_in_image <= out_in_image + 1;",
        "      end",
    ]
    for k in range(len(side)):
        lines += [f"      if (s{k}_valid) begin",
                  f"        $fwrite(result, \"s{k} %h\\n\", s{k}_payload);",
                  f"        s{k}_words <= s{k}_words + 1;",
                  "      end"]
    lines += monitor_lines
    lines += [
        f"      idle <= ({' || '.join(moved)}) ? 0 : idle + 1;",
        "      if (idle >= idle_limit && !done) begin",
        "        stalled <= 1;",
        "        $fflush(result);",
        "      end",
        f"      if ({' && '.join(complete)} && !done) begin",
        "        done <= 1;",
        "        $fflush(result);",
        "      end",
        "    end",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)
