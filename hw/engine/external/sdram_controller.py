"""A small SDR SDRAM controller in Amaranth: the engine's external memory port.

**The port** (``MEMORY_PORT``, the engine side; every stream is ``lib.stream``
valid/ready, one transfer per cycle when both are high):

* ``cmd`` (in): ``{burst, write}``. ``burst`` is the index of an aligned burst of
  ``BURST_WORDS`` = 8 16-bit words (word address ``8·burst``; 21 bits cover the 16 M words
  of the IS42S16160G), ``write`` 1 for a write.
* ``wdata`` (in): 16-bit words, exactly 8 per write command, in address order. The
  controller takes them into a 16-word FIFO and issues a WRITE only once the burst's 8
  words are there, so a slow producer delays its own write, never corrupts it.
* ``rdata`` (out): 16-bit words, 8 per read command, in address order, commands answered in
  the order they were accepted (reads and writes are never reordered, so a read after a
  write to the same burst returns the new words). A READ is issued only when the 32-word
  read FIFO has room for its 8 words beside every word still in flight, so ``rdata``'s
  back-pressure can stall the port but never lose a word.
* ``ready`` (out): initialisation finished (the first command is accepted only after it).

Latency at 100 MHz (CAS latency 2): a read hitting an open row gives its first word on
``rdata`` 6 cycles after ``cmd`` is accepted (command register, the chip's sampling edge, CAS
latency, the input register, two FIFO stages; counted from the pipeline); a row miss adds the PRECHARGE and ACTIVATE waits (tRAS/tWR, tRP,
tRCD: 4 to 9 cycles, hidden behind the previous burst when it is in another bank).
Back-to-back bursts in one row keep the data bus busy every cycle:
one READ or WRITE every 8 cycles. A read after a write waits for the write's data; a write
after a read waits CL + 8 cycles (the read's data plus one idle cycle for the bus to turn).

**Policy**: one command per cycle, bursts in order, rows left open until a different row
of the same bank is needed or a refresh is due (open page); the PRECHARGE and ACTIVATE a
row miss needs are issued while the burst before it is still on the bus when that burst is
in another bank; address map ``row | bank | column``
with the bank bits XOR the address's top two bits, so a sequential stream crosses to the
next bank at the end of a 512-word row and streams in different quarters of the chip (the
compiler's four banks) keep their rows open side by side. Refresh: one
AUTO REFRESH every ``t_refi`` cycles, after PRECHARGE ALL, issued as soon as the burst in
flight ends. Initialisation: ``t_init`` cycles of NOP, PRECHARGE ALL, the datasheet's auto
refreshes, MODE REGISTER SET (burst 8, sequential, the CAS latency, burst writes).

**Pins** (``SDRAM_PINS``): every output is registered (the FPGA's output flip-flops); DQ is
split into ``dq_o``/``dq_oe`` (to the pad's tristate) and ``dq_i`` (registered once inside,
at the same clock: the board needs the SDRAM clock phase-shifted so that this register sees
the chip's data, which the simulation's zero-delay chip model does not show).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.external.sdram_chip import SdramChip, SdramCycles

__all__ = ["SdramController", "BURST_WORDS", "SDRAM_PINS", "memory_port_signature"]

BURST_WORDS = 8
READ_FIFO_WORDS = 32
WRITE_FIFO_WORDS = 16

SDRAM_PINS = wiring.Signature({
    "cke": Out(1), "cs_n": Out(1), "ras_n": Out(1), "cas_n": Out(1), "we_n": Out(1),
    "ba": Out(2), "a": Out(13), "dqm": Out(2), "dq_o": Out(16), "dq_oe": Out(1),
    "dq_i": In(16),
})

_NOP, _ACT, _READ, _WRITE, _PRE, _REF, _MRS = 0b0111, 0b0011, 0b0101, 0b0100, 0b0010, 0b0001, 0b0000
_POWER_UP, _INIT_REFRESH, _RUN = 0, 1, 2


def memory_port_signature(burst_bits: int) -> wiring.Signature:
    """The engine's memory port, from the engine's side (commands and write data out);
    the controller has it flipped."""
    return wiring.Signature({
        "cmd": Out(stream.Signature(data.StructLayout({"burst": burst_bits, "write": 1}))),
        "wdata": Out(stream.Signature(16)),
        "rdata": In(stream.Signature(16)),
        "ready": In(1),
    })


class SdramController(wiring.Component):
    """The controller of one 16-bit SDR SDRAM ``chip`` clocked at the engine's clock with
    the rules ``cycles`` (``chip.cycles(clock_hz)``, or shortened waits for tests). See the
    module docstring for the port, its latency and ordering."""

    def __init__(self, chip: SdramChip, cycles: SdramCycles):
        if chip.dq_bits != 16 or chip.banks != 4 or chip.cols % BURST_WORDS:
            raise ConfigError(f"SDRAM {chip.name}: the controller drives 16-bit parts with 4 "
                              f"banks and whole 8-word bursts per row")
        self.chip, self.cycles = chip, cycles
        self.col_bits = (chip.cols - 1).bit_length()
        self.row_bits = (chip.rows - 1).bit_length()
        self.burst_bits = self.col_bits - 3 + 2 + self.row_bits
        super().__init__({"port": In(memory_port_signature(self.burst_bits)),
                          "pins": Out(SDRAM_PINS)})

    def elaborate(self, platform):
        m = Module()
        c, port, pins = self.cycles, self.port, self.pins
        cl = c.cas_latency
        col_bits, row_bits = self.col_bits, self.row_bits

        m.submodules.rfifo = rfifo = SyncFIFOBuffered(width=16, depth=READ_FIFO_WORDS)
        m.submodules.wfifo = wfifo = SyncFIFOBuffered(width=16, depth=WRITE_FIFO_WORDS)
        wiring.connect(m, wiring.flipped(port.wdata), wfifo.w_stream)
        wiring.connect(m, rfifo.r_stream, wiring.flipped(port.rdata))

        # ---- registered pins; NOP unless a command below says otherwise ----
        command = Signal(4, init=_NOP)
        m.d.comb += [pins.cs_n.eq(command[3]), pins.ras_n.eq(command[2]),
                     pins.cas_n.eq(command[1]), pins.we_n.eq(command[0])]
        m.d.sync += [pins.cke.eq(1), command.eq(_NOP), pins.dq_oe.eq(0), pins.dqm.eq(0)]

        # ---- address of the command at the port ----
        word = Signal(self.burst_bits + 3)
        m.d.comb += word.eq(port.cmd.payload.burst << 3)
        col, row = word[:col_bits], word[col_bits + 2:]
        # bank = the address's bank bits XOR its top two bits: a sequential stream moves to
        # the next bank at the end of a row, and streams in different quarters of the chip
        # (the compiler's four banks of 4 Mi words) sit in different banks at any moment
        bank = Signal(2)
        m.d.comb += bank.eq(word[col_bits:col_bits + 2] ^ word[-2:])

        def timer(limit: int, name: str) -> Signal:
            return Signal(range(max(limit, 1) + 1), name=name)

        # per-bank waits: cycles until the command may be issued (0: now)
        longest = max(c.t_ras, BURST_WORDS - 1 + c.t_wr, c.t_rcd, c.t_rp, c.t_rc)
        rcd = [timer(longest, f"rcd{b}") for b in range(4)]
        pre_wait = [timer(longest, f"pre_wait{b}") for b in range(4)]
        act_wait = [timer(longest, f"act_wait{b}") for b in range(4)]
        is_open = Signal(4)
        open_row = Array(Signal(row_bits, name=f"row{b}") for b in range(4))
        rrd = timer(c.t_rrd, "rrd")
        quiet = timer(max(c.t_rfc, c.t_mrd, c.t_rp), "quiet")     # no command at all
        rw_wait = timer(BURST_WORDS - 1, "rw_wait")                  # burst on the bus
        burst_bank = Signal(2)                                       # ... of this bank
        write_wait = timer(cl + BURST_WORDS, "write_wait")           # read data on the bus
        for t in [*rcd, *pre_wait, *act_wait, rrd, quiet, rw_wait, write_wait]:
            with m.If(t != 0):
                m.d.sync += t.eq(t - 1)
        rcd_a, pre_a, act_a = Array(rcd), Array(pre_wait), Array(act_wait)

        # ---- write data: the burst's words leave the FIFO one per cycle ----
        write_left = Signal(range(BURST_WORDS))
        with m.If(write_left != 0):
            m.d.comb += wfifo.r_en.eq(1)
            m.d.sync += [pins.dq_o.eq(wfifo.r_data), pins.dq_oe.eq(1),
                         write_left.eq(write_left - 1)]

        # ---- read data: registered at the pins, pushed CL + 2 cycles after the command ----
        dq_in = Signal(16)
        m.d.sync += dq_in.eq(pins.dq_i)
        issued = Signal(cl + 2)            # bit k: a READ was decided k + 1 cycles ago
        read_issue = Signal()
        m.d.sync += issued.eq((issued << 1) | read_issue)
        capture_left = Signal(range(BURST_WORDS))
        push = Signal()
        # decided in cycle D, sampled by the chip at the end of D + 1, word i on the bus in
        # cycle D + 1 + CL + i, in dq_in during cycle D + 2 + CL + i
        m.d.comb += [push.eq(issued[cl + 1] | (capture_left != 0)),
                     rfifo.w_data.eq(dq_in), rfifo.w_en.eq(push)]
        with m.If(issued[cl + 1]):
            m.d.sync += capture_left.eq(BURST_WORDS - 1)
        with m.Elif(capture_left != 0):
            m.d.sync += capture_left.eq(capture_left - 1)
        in_flight = Signal(range(READ_FIFO_WORDS + BURST_WORDS + 1))
        m.d.sync += in_flight.eq(in_flight + (read_issue * BURST_WORDS) - push)
        room = Signal()
        m.d.comb += room.eq(rfifo.level + in_flight + BURST_WORDS <= READ_FIFO_WORDS)

        # the phase: power-up wait, initial refreshes and mode register, running (an explicit
        # register rather than m.FSM, whose 3-state case statement lints as incomplete)
        phase = Signal(range(3))

        # ---- refresh interval ----
        refi = Signal(range(c.t_refi + 1))
        refresh_due = Signal()
        with m.If(phase == _RUN):
            with m.If(refi == c.t_refi - 1):
                m.d.sync += [refi.eq(0), refresh_due.eq(1)]
            with m.Else():
                m.d.sync += refi.eq(refi + 1)

        def issue(cmd, ba=0, a=0):
            m.d.sync += [command.eq(cmd), pins.ba.eq(ba), pins.a.eq(a)]

        def after_act(b: int):
            m.d.sync += [rcd[b].eq(c.t_rcd - 1), pre_wait[b].eq(c.t_ras - 1),
                         act_wait[b].eq(c.t_rc - 1), rrd.eq(c.t_rrd - 1),
                         is_open.eq(is_open | (1 << b)), open_row[b].eq(row)]

        def precharged(banks: Signal):
            """PRECHARGE of the banks set in ``banks``: tRP before their next ACT (tRC
            from their last ACT may still be longer). The wait counts down this cycle, so
            it is raised to ``t_rp - 1`` whenever it would fall below that."""
            for b in range(4):
                with m.If(banks[b] & (act_wait[b] < c.t_rp)):
                    m.d.sync += act_wait[b].eq(c.t_rp - 1)
            m.d.sync += is_open.eq(is_open & ~banks)

        all_closable = Signal()
        m.d.comb += all_closable.eq((rw_wait == 0) & (quiet == 0) & Cat(
            (~is_open[b]) | (pre_wait[b] == 0) for b in range(4)).all())
        all_idle = Signal()
        m.d.comb += all_idle.eq((quiet == 0) & (is_open == 0) & (rw_wait == 0) & Cat(
            act_wait[b] == 0 for b in range(4)).all())

        init_count = Signal(range(c.t_init + 1), init=c.t_init)
        refs_left = Signal(range(c.init_refreshes + 1), init=c.init_refreshes)
        mode = (cl << 4) | 0b011                    # burst 8, sequential, burst writes
        hit = Signal()
        bank_open, can_act = Signal(), Signal()
        m.d.comb += [bank_open.eq(Array(is_open[b] for b in range(4))[bank]),
                     hit.eq(bank_open & (open_row[bank] == row)),
                     can_act.eq((act_a[bank] == 0) & (rrd == 0))]

        with m.If(phase == _POWER_UP):
            with m.If(init_count != 0):
                m.d.sync += init_count.eq(init_count - 1)
            with m.Else():
                issue(_PRE, a=1 << 10)
                m.d.sync += quiet.eq(c.t_rp - 1)
                m.d.sync += phase.eq(_INIT_REFRESH)
        with m.Elif(phase == _INIT_REFRESH):
            with m.If(quiet == 0):
                with m.If(refs_left != 0):
                    issue(_REF)
                    m.d.sync += [quiet.eq(c.t_rfc - 1), refs_left.eq(refs_left - 1)]
                with m.Else():
                    issue(_MRS, a=mode)
                    m.d.sync += quiet.eq(c.t_mrd - 1)
                    m.d.sync += phase.eq(_RUN)
        with m.Else():
            m.d.comb += port.ready.eq(1)
            with m.If(refresh_due):
                with m.If((is_open != 0) & all_closable):
                    issue(_PRE, a=1 << 10)
                    precharged(is_open)
                with m.Elif(all_idle):
                    issue(_REF)
                    m.d.sync += [quiet.eq(c.t_rfc - 1), refresh_due.eq(0)]
            with m.Elif(port.cmd.valid & (quiet == 0)):
                write = port.cmd.payload.write
                with m.If(hit):
                    can = Signal()
                    m.d.comb += can.eq((rw_wait == 0) & (rcd_a[bank] == 0) & Mux(
                        write, (write_wait == 0) & (wfifo.level >= BURST_WORDS), room))
                    with m.If(can):
                        m.d.comb += port.cmd.ready.eq(1)
                        m.d.sync += [rw_wait.eq(BURST_WORDS - 1), burst_bank.eq(bank)]
                        with m.If(write):
                            issue(_WRITE, bank, col)
                            m.d.comb += wfifo.r_en.eq(1)
                            m.d.sync += [pins.dq_o.eq(wfifo.r_data), pins.dq_oe.eq(1),
                                         write_left.eq(BURST_WORDS - 1)]
                            # tWR after the last word (longer than the tRAS left: a WRITE comes tRCD
                            # after the ACT)
                            for b in range(4):
                                with m.If(bank == b):
                                    m.d.sync += pre_wait[b].eq(BURST_WORDS - 1 + c.t_wr - 1)
                        with m.Else():
                            issue(_READ, bank, col)
                            m.d.comb += read_issue.eq(1)
                            m.d.sync += write_wait.eq(cl + BURST_WORDS)
                with m.Elif(bank_open):
                    # another bank's burst may go on: only this bank's would be cut
                    with m.If((pre_a[bank] == 0) & ((rw_wait == 0) | (bank != burst_bank))):
                        issue(_PRE, bank)
                        one = Signal(4)
                        m.d.comb += one.eq(1 << bank)
                        precharged(one)
                with m.Elif(can_act):
                    issue(_ACT, bank, row)
                    for b in range(4):
                        with m.If(bank == b):
                            after_act(b)
        return m

