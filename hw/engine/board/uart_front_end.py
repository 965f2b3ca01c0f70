"""The engine's UART front end: the board protocol straight onto the engine's host port.

:class:`EngineUARTFrontEnd` speaks the protocol of ``docs/boards.md`` (constants in
:mod:`binaryvit.host`, shared with :class:`~binaryvit.hw.boards.board_wrapper.UARTBoardWrapper`)
without buffers of its own: each pixel byte is written into the engine's input tensor the
cycle it arrives, and the class and the response's logit bytes are read from the engine's
output tensor. The logits are ``WIDE`` values, least significant word first, and the
protocol sends them little endian, so the response's logit bytes are the output tensor's
bytes in memory order. One address register walks the input tensor while pixels arrive and
the output tensor twice after a run (argmax, then the response).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit import host
from binaryvit.errors import ConfigError
from binaryvit.hw.boards.board_wrapper import pixel_out_of_range, uart_load_states
from binaryvit.hw.boards.uart import UARTReceiver, UARTTransmitter, check_divisor
from binaryvit.hw.engine.board.design import EngineDesign
from binaryvit.hw.engine.config import WORD_BITS

__all__ = ["EngineUARTFrontEnd", "engine_host_signature"]


def engine_host_signature(address_bits: int) -> wiring.Signature:
    """The controller side of ``Engine``'s host port and run control."""
    return wiring.Signature({
        "start": Out(1), "pc_start": Out(address_bits),
        "busy": In(1), "done": In(1), "error": In(1),
        "host_addr": Out(address_bits), "host_write": Out(1),
        "host_write_data": Out(WORD_BITS), "host_read": Out(1),
        "host_read_data": In(WORD_BITS),
    })


class EngineUARTFrontEnd(wiring.Component):
    """UART requests in, engine runs, class and logits out, through the engine's host port.

    Parameters
    ----------
    design : EngineDesign
        Addresses and pixel / logit formats (constants of the bitstream); at most 8-bit
        pixels (one UART byte each), at most 255 classes.
    divisor : int
        UART clock cycles per bit (``hw/boards/uart.py``'s ``baud_divisor``).
    address_bits : int
        Width of the engine's host address.
    parameter_load : bool
        Accept ``COMMAND_LOAD`` and forward the image bytes to ``load`` (as
        :class:`~binaryvit.hw.boards.board_wrapper.UARTBoardWrapper` does).

    Members
    -------
    rx : In(1), tx : Out(1)
        The serial lines (idle high).
    boot_done, boot_error : In(1), boot_code : In(8)
        The parameters' state: loaded, refused (``boot_code`` says why), or neither yet.
    engine : Out(engine_host_signature(address_bits))
        To the ``Engine``'s ports of the same names. The board gives the host port to the
        front end whenever no loader writes.
    load : Out(stream.Signature(8)), load_start : Out(1), load_finished : In(1)
        Only with ``parameter_load``.

    Behaviour, per command byte:

    * ``COMMAND_INFO``: the info block, once the parameters are loaded or refused (so a
      host that asks first never sends an image while the loader owns the host port).
    * ``COMMAND_CLASSIFY``: each pixel byte goes to ``input_address + k`` (sign- or
      zero-extended) as it arrives, counted into the checksum and range-checked. Then, if
      the parameters were refused, the answer carries ``STATUS_PARAMETERS`` and
      ``boot_code`` as its class; if they were still loading when the command came (its
      pixels were not written), ``STATUS_NOT_READY``; after a checksum or range error
      that status; nothing is computed in these cases. Otherwise the engine runs
      (``start`` one cycle, then ``busy`` until ``done``; an engine ``error`` answers
      ``STATUS_LENGTH``), the class is the index of the first maximal logit (signed), and
      the answer's logit bytes are read from the output tensor as they are sent.
    * ``COMMAND_LOAD`` (``parameter_load``): as the board wrapper.

    Timing: a pixel byte is written the cycle after the UART receiver has it; the argmax
    takes ``classes · (2·logit_words + 1)`` cycles after ``done``; each response byte
    waits two cycles for its memory read before it is offered to the transmitter.
    """

    def __init__(self, design: EngineDesign, *, divisor: int, address_bits: int = 16,
                 parameter_load: bool = False):
        if not 1 <= design.pixel_width <= 8:
            raise ConfigError(f"the engine's input elements are {design.pixel_width} bits; the "
                              "UART protocol sends one byte per pixel (at most 8 bits)")
        if not 1 <= design.classes <= 255:
            raise ConfigError(f"{design.classes} classes: the UART protocol carries at most 255")
        self.design = design
        self.divisor = check_divisor(divisor)
        self.address_bits = address_bits
        self.parameter_load = parameter_load
        self.info = host.DesignInfo(pixels=design.pixels, num_logits=design.classes,
                                    logit_bytes=design.logit_bits // 8,
                                    pixel_width=design.pixel_width,
                                    pixel_signed=design.pixel_signed, logit_signed=True,
                                    pixel_order="hwc")
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1),
                 "boot_done": In(1), "boot_error": In(1), "boot_code": In(8),
                 "engine": Out(engine_host_signature(address_bits))}
        if parameter_load:
            ports.update(load=Out(stream.Signature(8)), load_start=Out(1), load_finished=In(1))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        d, info, eng = self.design, self.info, self.engine
        m.submodules.receiver = receiver = UARTReceiver(self.divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(self.divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx),
                     eng.pc_start.eq(d.program_address)]

        byte = receiver.o.payload
        element = byte[:d.pixel_width]
        m.d.comb += eng.host_write_data.eq(element.as_signed() if d.pixel_signed else element)
        pointer = Signal(self.address_bits)     # the host port's address, always
        m.d.comb += eng.host_addr.eq(pointer)
        checksum = Signal(8)
        status = Signal(8)
        loaded_at_command = Signal()            # the pixels could be written
        words = Signal(range(d.logit_words + 1))
        candidate = Signal(signed(d.logit_bits))
        best = Signal(signed(d.logit_bits))
        index = Signal(8)
        best_index = Signal(8)
        word = Signal(WORD_BITS)
        high_byte = Signal()
        response = Signal(range(max(info.response_length, info.INFO_LENGTH) + 1))
        send_checksum = Signal(8)
        tx_byte = transmitter.i.payload
        sent = transmitter.i.valid & transmitter.i.ready
        logit_end = 3 + d.classes * info.logit_bytes
        info_bytes = Array(Const(b, 8) for b in info.encode())
        load_left, length_index = Signal(32), Signal(2)

        def respond():
            m.d.sync += [response.eq(0), send_checksum.eq(0), high_byte.eq(0),
                         pointer.eq(d.output_address)]
            m.next = "fetch"

        with m.FSM():
            with m.State("idle"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid):
                    with m.If(byte == host.COMMAND_CLASSIFY):
                        m.d.sync += [pointer.eq(d.input_address), checksum.eq(0),
                                     status.eq(0), loaded_at_command.eq(self.boot_done)]
                        m.next = "receive"
                    with m.Elif(byte == host.COMMAND_INFO):
                        m.d.sync += response.eq(0)
                        m.next = "info"
                    if self.parameter_load:
                        with m.Elif(byte == host.COMMAND_LOAD):
                            m.d.comb += self.load_start.eq(1)
                            m.d.sync += [load_left.eq(0), length_index.eq(0)]
                            m.next = "load_length"
            if self.parameter_load:
                uart_load_states(m, self, receiver, transmitter, load_left, length_index)
            with m.State("receive"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid):
                    with m.If(pointer == d.input_address + d.pixels):
                        with m.If(byte != checksum):
                            m.d.sync += status.eq(status | host.STATUS_CHECKSUM)
                        m.next = "check"
                    with m.Else():
                        m.d.comb += eng.host_write.eq(loaded_at_command)
                        m.d.sync += [checksum.eq(checksum + byte), pointer.eq(pointer + 1)]
                        with m.If(pixel_out_of_range(byte, d.pixel_width, d.pixel_signed)):
                            m.d.sync += status.eq(status | host.STATUS_PIXEL_RANGE)
            with m.State("check"):
                m.d.sync += best_index.eq(0)
                with m.If(self.boot_error):
                    m.d.sync += [status.eq(status | host.STATUS_PARAMETERS),
                                 best_index.eq(self.boot_code)]
                    respond()
                with m.Elif(~loaded_at_command):
                    m.d.sync += status.eq(status | host.STATUS_NOT_READY)
                    respond()
                with m.Elif(status != 0):
                    respond()
                with m.Else():
                    m.next = "start"
            with m.State("start"):
                m.d.comb += eng.start.eq(1)
                m.d.sync += [pointer.eq(d.output_address), index.eq(0), words.eq(0)]
                m.next = "run"
            with m.State("run"):
                with m.If(~eng.busy & eng.error):
                    m.d.sync += status.eq(status | host.STATUS_LENGTH)
                    respond()
                with m.Elif(~eng.busy & eng.done):
                    m.next = "argmax_read"
            # argmax: each logit's words read in turn (latency 1) into `candidate`, then compared
            with m.State("argmax_read"):
                m.d.comb += eng.host_read.eq(1)
                m.d.sync += [pointer.eq(pointer + 1), words.eq(words + 1)]
                m.next = "argmax_word"
            with m.State("argmax_word"):
                m.d.sync += candidate.eq(Cat(candidate[WORD_BITS:], eng.host_read_data))
                with m.If(words == d.logit_words):
                    m.next = "argmax_compare"
                with m.Else():
                    m.next = "argmax_read"
            with m.State("argmax_compare"):
                with m.If((index == 0) | (candidate > best)):
                    m.d.sync += [best.eq(candidate), best_index.eq(index)]
                m.d.sync += [index.eq(index + 1), words.eq(0)]
                with m.If(index == d.classes - 1):
                    respond()
                with m.Else():
                    m.next = "argmax_read"
            # the answer: sync, status, class, the output tensor's bytes, checksum
            with m.State("fetch"):
                m.d.comb += eng.host_read.eq(1)
                m.next = "latch"
            with m.State("latch"):
                m.d.sync += word.eq(eng.host_read_data)
                m.next = "send"
            with m.State("send"):
                header = Array([Const(host.RESPONSE_SYNC, 8), status, best_index])
                m.d.comb += transmitter.i.valid.eq(1)
                with m.If(response < 3):
                    m.d.comb += tx_byte.eq(header[response])
                with m.Elif(response < logit_end):
                    m.d.comb += tx_byte.eq(Mux(high_byte, word[8:], word[:8]))
                with m.Else():
                    m.d.comb += tx_byte.eq(send_checksum)
                with m.If(sent):
                    m.d.sync += response.eq(response + 1)
                    with m.If(response != 0):
                        m.d.sync += send_checksum.eq(send_checksum + tx_byte)
                    with m.If((response >= 3) & (response < logit_end)):
                        m.d.sync += high_byte.eq(~high_byte)
                        with m.If(high_byte):
                            m.d.sync += pointer.eq(pointer + 1)
                    with m.If(response == logit_end):
                        m.next = "idle"
                    with m.Else():
                        m.next = "fetch"
            with m.State("info"):
                # answered once the parameters are loaded or refused
                with m.If(self.boot_done | self.boot_error):
                    m.d.comb += [transmitter.i.valid.eq(1), tx_byte.eq(info_bytes[response])]
                with m.If(sent):
                    m.d.sync += response.eq(response + 1)
                    with m.If(response == info.INFO_LENGTH - 1):
                        m.next = "idle"
        return m
