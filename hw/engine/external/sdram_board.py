"""The SDRAM controller on the ULX3S-85F: a test-pattern tester and the board top.

``SdramPatternTester`` drives the memory port (``memory_port_signature``) like a client:
once ``ready`` it writes ``bursts`` consecutive 8-word bursts from burst 0 with
``pattern(word address, pass)``, reads them back in order, compares every word, and starts
the next pass with a new pattern. ``error`` is sticky (the first mismatch); ``passes``
counts finished passes. The cmd, wdata and rdata streams follow ``lib.stream`` (valid/ready),
so the tester honours the controller's back-pressure.

``pattern(a, p) = a[0:16] ^ {a[16:24], a[16:24]} ^ (0x5A5A · p)[0:16]``: every word of a
pass different from its neighbours, the high address bits folded in, a new pattern each pass.

``Ulx3sSdramTop`` is the board build: the ULX3S's 25 MHz clock into an ``EHXPLLL`` that
makes the 100 MHz ``sync`` clock (CLKOP) and the SDRAM's clock (CLKOS, the same 100 MHz
shifted 180°, so the chip samples the controller's registered outputs mid-cycle and its
read data reach the input register half a cycle after they leave the chip); ``sync`` is held
in reset until the PLL locks; the controller at the IS42S16160G-7's 100 MHz rules; the
tester over ``bursts`` bursts; LEDs 0 (passes, bit 10), 1 (error), 2 (ready), 3 (PLL lock).
The PLL parameters are those ``yowasp-ecppll -i 25 -o 100 --clkout1 100 --phase1 180``
prints (VCO 600 MHz). The phase is a starting point: the right value on a given board is
found on the board (LiteX's ULX3S target uses a similar shifted SDRAM clock).
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, \
    ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.hw.engine.external.sdram_chip import IS42S16160G_7, SdramChip
from binaryvit.hw.engine.external.sdram_controller import BURST_WORDS, SdramController, \
    memory_port_signature

__all__ = ["SdramPatternTester", "Ulx3sSdramTop", "pattern_word", "SDRAM_CLOCK_HZ"]

SDRAM_CLOCK_HZ = 100e6


def pattern_word(address: int, pass_index: int) -> int:
    """The word the tester writes at word ``address`` in pass ``pass_index`` (the same
    integer definition as the RTL's, for tests)."""
    high = (address >> 16) & 0xFF
    return (address & 0xFFFF) ^ (high | high << 8) ^ ((0x5A5A * pass_index) & 0xFFFF)


class SdramPatternTester(wiring.Component):
    """Writes ``bursts`` bursts of the pattern, reads them back, compares; forever.

    Ports: ``port`` (the engine's side of the memory port), ``error`` (sticky: a word read
    differed), ``passes`` (16 bits, finished write-and-verify passes)."""

    def __init__(self, burst_bits: int, bursts: int):
        if not 1 <= bursts <= 1 << burst_bits:
            raise ValueError(f"bursts must be 1 .. {1 << burst_bits}, got {bursts}")
        self.burst_bits, self.bursts = burst_bits, bursts
        super().__init__({"port": Out(memory_port_signature(burst_bits)),
                          "error": Out(1), "passes": Out(16)})

    def elaborate(self, platform):
        m = Module()
        port = self.port
        counter = range(self.bursts + 1)
        reading = Signal()                                  # 0: write phase, 1: read phase
        sent = Signal(counter)                              # commands accepted this phase
        wword = Signal(self.burst_bits + 3)                 # next word to write
        rword = Signal(self.burst_bits + 3)                 # next word to check
        pattern_step = Signal(16)                           # 0x5A5A · pass

        def pattern(address):
            high = address[16:24] if len(address) > 16 else 0
            return address[0:16] ^ Cat(high, high) ^ pattern_step

        m.d.comb += [port.cmd.payload.burst.eq(sent), port.cmd.payload.write.eq(~reading)]
        m.d.comb += port.cmd.valid.eq(port.ready & (sent < self.bursts))
        with m.If(port.cmd.valid & port.cmd.ready):
            m.d.sync += sent.eq(sent + 1)

        # write data: 8 words per write command, issued ahead of the command is fine
        write_end = self.bursts * BURST_WORDS
        m.d.comb += [port.wdata.valid.eq(port.ready & ~reading & (wword < write_end)),
                     port.wdata.payload.eq(pattern(wword))]
        with m.If(port.wdata.valid & port.wdata.ready):
            m.d.sync += wword.eq(wword + 1)

        m.d.comb += port.rdata.ready.eq(reading)
        with m.If(port.rdata.valid & port.rdata.ready):
            m.d.sync += rword.eq(rword + 1)
            with m.If(port.rdata.payload != pattern(rword)):
                m.d.sync += self.error.eq(1)

        with m.If(~reading & (sent == self.bursts) & (wword == write_end)):
            m.d.sync += [reading.eq(1), sent.eq(0)]
        with m.If(reading & (rword == write_end)):
            m.d.sync += [reading.eq(0), sent.eq(0), wword.eq(0), rword.eq(0),
                         self.passes.eq(self.passes + 1),
                         pattern_step.eq(pattern_step + 0x5A5A)]
        return m


class Ulx3sSdramTop(Elaboratable):
    """The controller and the tester on the ULX3S-85F (module docstring)."""

    def __init__(self, bursts: int = 1 << 16, chip: SdramChip = IS42S16160G_7):
        self.chip, self.bursts = chip, bursts

    def elaborate(self, platform):
        m = Module()
        clk25 = io.Buffer("i", platform.request(platform.default_clk, dir="-"))
        m.submodules.clk25 = clk25
        sdram = platform.request("sdram", 0, dir="-")
        pads = {}
        for name in ("clk", "clk_en", "cs", "ras", "cas", "we", "ba", "a", "dqm", "dq"):
            pads[name] = io.Buffer("io" if name == "dq" else "o", getattr(sdram, name))
            m.submodules[f"sdram_{name}"] = pads[name]
        leds = []
        for i in range(4):
            leds.append(io.Buffer("o", platform.request("led", i, dir="-")))
            m.submodules[f"led{i}"] = leds[-1]

        m.domains.sync = ClockDomain("sync")
        sdram_clk, locked = Signal(), Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI="25", a_FREQUENCY_PIN_CLKOP="100", a_FREQUENCY_PIN_CLKOS="100",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD", p_CLKI_DIV=1,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=6, p_CLKOP_CPHASE=2, p_CLKOP_FPHASE=0,
            p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=6, p_CLKOS_CPHASE=5, p_CLKOS_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=4,
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=ClockSignal("sync"), o_CLKOS=sdram_clk, o_LOCK=locked)
        m.d.comb += ResetSignal("sync").eq(~locked)

        cycles = self.chip.cycles(SDRAM_CLOCK_HZ)
        m.submodules.controller = controller = SdramController(self.chip, cycles)
        m.submodules.tester = tester = SdramPatternTester(controller.burst_bits, self.bursts)
        wiring.connect(m, tester.port, controller.port)

        pins = controller.pins
        # the resource's cs, ras, cas and we are active high (PinsN inverts at the pad)
        m.d.comb += [pads["clk"].o.eq(sdram_clk), pads["clk_en"].o.eq(pins.cke),
                     pads["cs"].o.eq(~pins.cs_n), pads["ras"].o.eq(~pins.ras_n),
                     pads["cas"].o.eq(~pins.cas_n), pads["we"].o.eq(~pins.we_n),
                     pads["ba"].o.eq(pins.ba), pads["a"].o.eq(pins.a),
                     pads["dqm"].o.eq(pins.dqm), pads["dq"].o.eq(pins.dq_o),
                     pads["dq"].oe.eq(pins.dq_oe), pins.dq_i.eq(pads["dq"].i)]
        m.d.comb += [leds[0].o.eq(tester.passes[10]), leds[1].o.eq(tester.error),
                     leds[2].o.eq(controller.port.ready), leds[3].o.eq(locked)]
        return m
