"""A generated accelerator's Verilog as an Amaranth component, for the board wrapper.

``binaryvit generate`` writes the network as one Verilog module (``OUT/rtl/<top>.v``) and
describes its ports in ``OUT/rtl/network.json``. Building the board from that very file
(rather than elaborating the network again) puts exactly the simulated RTL on the board.
:class:`VerilogAccelerator` instantiates the module and exposes its pixel input ``i`` and
logits output ``o`` as ``lib.stream`` ports; every other output stream of the module (the
class stream ``cls``, debug taps) is drained with ``ready`` held high.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import DataError, OutputPathError
from binaryvit.hw.streams.fixed_point_stream import fixed_point_layout

__all__ = ["VerilogAccelerator", "verilog_ports", "load_generated_accelerator"]

_DECLARATION = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s+)?"
                          r"\\?([A-Za-z_][\w$]*)\s*;", re.MULTILINE)


def verilog_ports(verilog: str, module: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of ``module`` in ``verilog`` (Amaranth's output style:
    one ``input``/``output`` declaration per port)."""
    match = re.search(rf"^module\s+\\?{re.escape(module)}\s*\(", verilog, re.MULTILINE)
    if match is None:
        raise DataError(f"the Verilog has no module {module!r}")
    end = verilog.find("endmodule", match.end())
    body = verilog[match.end():end if end >= 0 else None]
    return {name: (direction, int(msb) + 1 if msb else 1)
            for direction, msb, name in _DECLARATION.findall(body)}


class VerilogAccelerator(wiring.Component):
    """The generated network module behind ``i`` (pixels) and ``o`` (logits) stream ports.

    Parameters
    ----------
    verilog : str
        The Verilog text holding ``module``.
    module : str
        The top module's name.
    pixel_width, input_lanes : int
        Input elements (unsigned pixels) and elements per word.
    logit_width, logit_lanes : int
        Output elements (signed logits) and elements per word.

    Members
    -------
    i : In(stream.Signature(fixed_point_layout(pixel_width, input_lanes, is_signed=False)))
    o : Out(stream.Signature(fixed_point_layout(logit_width, logit_lanes)))

    The module's ``rst`` follows the domain's reset; on a board whose default domain has no
    reset (the ECP5 platforms reset through GSR and initial values) it is tied low.

    The module's port widths are checked against these layouts, so a stale
    ``network.json`` cannot silently misconnect the design.
    """

    def __init__(self, verilog: str, module: str, *, pixel_width: int, input_lanes: int,
                 logit_width: int, logit_lanes: int):
        self.verilog, self.module = verilog, module
        in_layout = fixed_point_layout(pixel_width, input_lanes, is_signed=False)
        out_layout = fixed_point_layout(logit_width, logit_lanes)
        self.ports = verilog_ports(verilog, module)
        expected = {"i__payload": ("input", in_layout.size), "i__valid": ("input", 1),
                    "i__ready": ("output", 1), "o__payload": ("output", out_layout.size),
                    "o__valid": ("output", 1), "o__ready": ("input", 1),
                    "clk": ("input", 1), "rst": ("input", 1)}
        for port, want in expected.items():
            if self.ports.get(port) != want:
                raise DataError(f"module {module}: port {port} is {self.ports.get(port)}, "
                                f"network.json implies {want}; regenerate (binaryvit generate)")
        super().__init__({"i": In(stream.Signature(in_layout)),
                          "o": Out(stream.Signature(out_layout))})

    def elaborate(self, platform) -> Module:
        m = Module()
        connections = {
            "i_clk": ClockSignal(), "i_rst": ResetSignal(allow_reset_less=True),
            "i_i__payload": self.i.payload, "i_i__valid": self.i.valid, "o_i__ready": self.i.ready,
            "o_o__payload": self.o.payload, "o_o__valid": self.o.valid, "i_o__ready": self.o.ready,
        }
        for port, (direction, width) in self.ports.items():
            stream_name = port[:-len("__ready")] if port.endswith("__ready") else None
            if stream_name in (None, "i", "o") or direction != "input":
                continue
            if f"{stream_name}__valid" in self.ports:   # another output stream: drain it
                connections[f"i_{port}"] = 1
        for port, (direction, width) in self.ports.items():
            if direction == "input" and f"i_{port}" not in connections:
                raise DataError(f"module {self.module}: input port {port} has no driver in the "
                                "board wrapper")
        m.submodules.network = Instance(self.module, **connections)
        if platform is not None:
            platform.add_file(f"{self.module}.v", self.verilog)
        return m


def load_generated_accelerator(out_dir: str | Path) -> tuple[VerilogAccelerator, dict]:
    """The accelerator ``binaryvit generate`` wrote into ``out_dir`` and its description
    (``network.json``); ``OutputPathError`` saying to run ``binaryvit generate`` when absent."""
    rtl = Path(out_dir) / "rtl"
    description_path = rtl / "network.json"
    if not description_path.is_file():
        raise OutputPathError(f"{out_dir} has no generated network ({description_path} not "
                              f"found): run `binaryvit generate {out_dir}` first")
    try:
        description = json.loads(description_path.read_text())
        verilog_path = rtl / description["verilog"]
        accelerator = VerilogAccelerator(
            verilog_path.read_text(), description["top"],
            pixel_width=int(description["pixel_width"]),
            input_lanes=int(description["input_lanes"]),
            logit_width=int(description["logit_width"]),
            logit_lanes=int(description["logit_lanes"]))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{description_path}: cannot load the generated network ({exc})") from None
    return accelerator, description
