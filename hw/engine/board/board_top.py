"""The engine on a board: parameters loaded at boot, images and logits over the UART protocol.

:class:`EngineBoard` is the whole design, pins as ports (simulated as it is in Verilator):

```
 flash pins ─▶ ParameterLoader ──(writes, until done)──┐
                  │ done / error / code                ▼
 rx ─▶ EngineUARTFrontEnd ──(host port, start)──▶ Engine (core + SPRAM / block RAM)
 tx ◀─   (protocol)      ◀─(pixels in, logits out)─
```

At reset the :class:`~binaryvit.hw.engine.loader.ParameterLoader` reads the parameter image
from the SPI flash and writes its payload through the engine's host port (it owns the port
until ``done``). Its checks (magic, version, design id, segment bounds, CRC) are the
bitstream's guard: after ``error`` the port never passes to the UART front end, every classify
request is answered with ``STATUS_PARAMETERS`` and the :class:`LoaderError` code in the class
byte, and the red LED lights; the green LED lights once the image has loaded. With
``boot="preloaded"`` (the ECP5, whose block RAM the bitstream initialises) there is no loader:
the engine's memories start with the payload (``init``) and the green LED is on from reset.

:class:`EngineBoardTop` puts it on a board's pins (UART 0, ``spi_flash_1x``, two LEDs).
"""
from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Elaboratable, Module, Mux, ResetInserter, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.boards.definitions import connect_uart
from binaryvit.hw.engine.board.design import EngineDesign
from binaryvit.hw.engine.board.uart_front_end import EngineUARTFrontEnd
from binaryvit.hw.engine.flash_reader import SPI_FLASH_SIGNATURE
from binaryvit.hw.engine.loader import DEFAULT_FLASH_OFFSET, LoaderError, ParameterLoader
from binaryvit.hw.engine.loader_receiver import ParameterImageReceiver
from binaryvit.hw.engine.rtl.engine import Engine

__all__ = ["EngineBoard", "EngineBoardTop", "flash_wake_cycles", "BOOT_MODES"]

BOOT_MODES = ("flash", "preloaded")
FLASH_WAKE_SECONDS = 3e-6          # W25Q128JV t_RES1 after 0xAB


def flash_wake_cycles(clock_hz: float) -> int:
    """System clock cycles covering the flash's t_RES1 (3 µs), plus one."""
    return math.ceil(FLASH_WAKE_SECONDS * clock_hz) + 1


class EngineBoard(wiring.Component):
    """Boot loader, engine and UART protocol for one :class:`EngineDesign`.

    Parameters
    ----------
    design : the bitstream's constants (addresses, formats, design id).
    divisor : UART clock cycles per bit (``hw/boards/uart.py``'s ``baud_divisor``).
    boot : ``"flash"`` (load the parameter image at reset) or ``"preloaded"`` (``init``
        holds the memory image; ECP5 block RAM).
    memory : ``"spram"`` (``SB_SPRAM256KA``; needs ``boot="flash"``) or ``"model"``
        (Amaranth ``Memory``: block RAM on the ECP5, initialised with ``init``).
    init : the memory image (``config.total_words`` words) for ``boot="preloaded"``.
    flash_offset, half_period, wake_cycles : the loader's (``half_period`` 1 needs a system
        clock of at most ~40 MHz: ``docs/engine-hardware.md``).
    uart_load : also accept a parameter image over the UART (``host.COMMAND_LOAD``): a
        second :class:`ParameterImageReceiver`, restarted by each load command, writes it
        through the host port with the same checks. From the command on the parameters
        count as refused (``BAD_CHECKSUM``: an unfinished load leaves damaged words) until
        the receiver's ``done``; its ``error`` code is reported. Send it after the board has
        booted (the flash load owns the host port until then).

    Members
    -------
    rx : In(1), tx : Out(1)                 the UART pins (idle high).
    spi : Out(SPI_FLASH_SIGNATURE)           the flash pins (``boot="flash"`` only).
    led_loaded, led_refused : Out(1)         parameters loaded / image refused (active high).
    """

    def __init__(self, design: EngineDesign, *, divisor: int, boot: str = "flash",
                 memory: str = "spram", init=None, flash_offset: int = DEFAULT_FLASH_OFFSET,
                 half_period: int = 2, wake_cycles: int = 120, uart_load: bool = False):
        if boot not in BOOT_MODES:
            raise ConfigError(f"boot: expected one of {BOOT_MODES}, got {boot!r}")
        if (boot == "preloaded") != (init is not None) or (memory == "spram" and boot != "flash"):
            raise ConfigError("boot='preloaded' needs init (a memory image) and memory='model'; "
                              "boot='flash' takes no init")
        self.design = design
        self.boot = boot
        self.engine = Engine(design.config, implementation=memory,
                             init=None if init is None else np.asarray(init))
        address_bits = self.engine.core.address_bits
        self.front_end = EngineUARTFrontEnd(design, divisor=divisor, address_bits=address_bits,
                                            parameter_load=uart_load)
        self.uart_receiver = None
        if uart_load:
            self.uart_receiver = ParameterImageReceiver(
                design_id=design.design_id, capacity_words=design.config.total_words)
        self.loader = None
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1),
                 "led_loaded": Out(1), "led_refused": Out(1)}
        if boot == "flash":
            if address_bits > 16:
                raise ConfigError(f"engine {design.config.name!r}: {design.config.total_words} "
                                  "words; the loader addresses at most 65,536")
            self.loader = ParameterLoader(design_id=design.design_id,
                                          capacity_words=design.config.total_words,
                                          flash_offset=flash_offset, half_period=half_period,
                                          wake_cycles=wake_cycles)
            ports["spi"] = Out(SPI_FLASH_SIGNATURE)
        super().__init__(ports)

    @property
    def info(self):
        """The info block the board answers with (``binaryvit.host.DesignInfo``)."""
        return self.front_end.info

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.front_end = front = self.front_end
        port = front.engine
        m.d.comb += [front.rx.eq(self.rx), self.tx.eq(front.tx),
                     port.busy.eq(engine.busy), port.done.eq(engine.done),
                     port.error.eq(engine.error), port.host_read_data.eq(engine.host_read_data),
                     engine.pc_start.eq(port.pc_start)]
        if self.loader is None:
            flash_busy = 0
            load_addr = load_write = load_data = 0
            booted_ok, booted_bad, booted_code = 1, 0, 0
        else:
            m.submodules.loader = loader = self.loader
            wiring.connect(m, wiring.flipped(self.spi), loader.spi)
            m.d.comb += loader.start.eq(1)
            flash_busy = ~loader.done & ~loader.error
            load_addr, load_write, load_data = loader.write_addr, loader.write_enable, loader.write_data
            booted_ok, booted_bad, booted_code = loader.done, loader.error, loader.error_code
        if self.uart_receiver is None:
            ok, bad, code = booted_ok, booted_bad, booted_code
        else:
            # the parameters' state: the flash's verdict until a UART load overrides it
            ok, bad, code = Signal(), Signal(), Signal(8)
            overridden = Signal()
            m.submodules.uart_receiver = ResetInserter(front.load_start)(self.uart_receiver)
            uart = self.uart_receiver
            wiring.connect(m, front.load, uart.i)
            m.d.comb += [uart.start.eq(1), front.load_finished.eq(uart.done | uart.error)]
            with m.If(~overridden):
                m.d.comb += [ok.eq(booted_ok), bad.eq(booted_bad), code.eq(booted_code)]
            with m.Else():
                m.d.comb += [ok.eq(uart.done), bad.eq(~uart.done),
                             code.eq(Mux(uart.error, uart.error_code,
                                         Mux(uart.done, 0, LoaderError.BAD_CHECKSUM)))]
            with m.If(front.load_start):
                m.d.sync += overridden.eq(1)
            load_addr = Mux(flash_busy, load_addr, uart.write_addr)
            load_data = Mux(flash_busy, load_data, uart.write_data)
            load_write = Mux(flash_busy, load_write, uart.write_enable)
        m.d.comb += [front.boot_done.eq(ok), front.boot_error.eq(bad),
                     front.boot_code.eq(code)]
        # The loaders own the host port while they write; the front end otherwise (it writes
        # pixels and runs only when the parameters were loaded at the request).
        loading = flash_busy if self.uart_receiver is None else (flash_busy | load_write)
        m.d.comb += [
            engine.host_addr.eq(Mux(loading, load_addr, port.host_addr)),
            engine.host_write.eq(Mux(loading, load_write, port.host_write)),
            engine.host_write_data.eq(Mux(loading, load_data, port.host_write_data)),
            engine.host_read.eq(~loading & port.host_read),
            engine.start.eq(ok & port.start),
            self.led_loaded.eq(ok), self.led_refused.eq(bad),
        ]
        return m


class EngineBoardTop(Elaboratable):
    """:class:`EngineBoard` on a board's pins: UART 0, the configuration flash
    (``spi_flash_1x``, write protect and hold inactive) and LEDs (green: loaded, red:
    refused; on boards without named colours, LEDs 0 and 1)."""

    def __init__(self, board: EngineBoard):
        self.board = board

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.board = board = self.board
        if platform is None:
            return m
        connect_uart(m, platform, board)
        names = {r[0] for r in platform.resources}
        leds = [("led_g", 0), ("led_r", 0)] if {"led_g", "led_r"} <= names else [("led", 0), ("led", 1)]
        for (name, number), value in zip(leds, (board.led_loaded, board.led_refused)):
            buffer = io.Buffer("o", platform.request(name, number, dir="-"))
            m.submodules[f"{name}{number}"] = buffer
            m.d.comb += buffer.o.eq(value)
        if board.loader is not None:
            pins = ("cs", "clk", "copi", "cipo", "wp", "hold")
            flash = platform.request("spi_flash_1x", 0, dir={p: "-" for p in pins})
            buffers = {}
            for name, direction in zip(pins, "oooioo"):
                buffers[name] = m.submodules[f"flash_{name}"] = io.Buffer(direction, getattr(flash, name))
            m.d.comb += [buffers["cs"].o.eq(board.spi.cs), buffers["clk"].o.eq(board.spi.sck),
                         buffers["copi"].o.eq(board.spi.copi), board.spi.cipo.eq(buffers["cipo"].i),
                         buffers["wp"].o.eq(0), buffers["hold"].o.eq(0)]   # PinsN: pins high
        return m
