"""The board-side UART protocol around an accelerator: image bytes in, class and logits out.

The protocol (framing, status bits, info block) is defined in ``docs/boards.md`` and its
constants live in :mod:`binaryvit.host` so the host and this RTL cannot disagree.

The accelerator is any ``wiring.Component`` with a pixel input stream ``i`` and a result
output stream ``o`` following ``docs/hardware-conventions.md``: payloads are
``StructLayout``s with a ``data`` field (``ArrayLayout(element, lanes)`` or a plain
shape, read as one element) and a ``last`` flag (and optionally ``first`` on the input).
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit import host
from binaryvit.errors import ConfigError
from binaryvit.hw.boards.uart import UARTReceiver, UARTTransmitter, check_divisor
from binaryvit.hw.kernels.parameter_checks import check_int

__all__ = ["StreamFormat", "stream_format", "UARTBoardWrapper", "pixel_out_of_range",
           "uart_load_states"]


@dataclass(frozen=True)
class StreamFormat:
    """How a stream port's ``data`` field splits into elements: ``lanes`` elements of
    ``width`` bits (``signed`` or not) per word; ``fields`` are the payload's field names."""

    width: int
    lanes: int
    signed: bool
    fields: tuple[str, ...]


def stream_format(component: wiring.Component, port: str) -> StreamFormat:
    """The element format of ``component``'s stream port ``port`` (``ConfigError`` when the
    port is missing, not a stream, or its payload has no ``data`` and ``last`` fields)."""
    members = component.signature.members
    if port not in members or not members[port].is_signature \
            or "payload" not in members[port].signature.members:
        raise ConfigError(f"{type(component).__name__} has no stream port {port!r}; the board "
                          "wrapper needs a pixel input stream 'i' and a result output stream 'o'")
    shape = members[port].signature.members["payload"].shape
    if not isinstance(shape, data.StructLayout) or "data" not in shape.members \
            or "last" not in shape.members:
        raise ConfigError(f"port {port!r} of {type(component).__name__}: the payload must be a "
                          "StructLayout with 'data' and 'last' fields (docs/hardware-conventions.md)")
    field = shape.members["data"]
    if isinstance(field, data.ArrayLayout):
        element, lanes = Shape.cast(field.elem_shape), field.length
    else:
        element, lanes = Shape.cast(field), 1
    return StreamFormat(width=element.width, lanes=lanes, signed=element.signed,
                        fields=tuple(shape.members))


def _flow(component: wiring.Component, port: str) -> wiring.Flow:
    return component.signature.members[port].flow


class UARTBoardWrapper(wiring.Component):
    """UART front end: receives an image, runs ``accelerator`` on it, sends class + logits.

    Parameters
    ----------
    accelerator : wiring.Component
        Input stream ``i`` with elements of at most 8 bits (one pixel byte per element,
        ``pixels / lanes`` words per image, ``last`` on the final word); output stream
        ``o`` whose elements are the logits (``num_logits / lanes`` words, ``last`` on the
        final one), at most 32 bits each.
    pixels : int
        Image bytes per request (a multiple of the input lanes).
    num_logits : int
        Logits per image (a multiple of the output lanes, at most 255).
    divisor : int
        UART clock cycles per bit (see ``binaryvit.hw.boards.uart.baud_divisor``).
    boot_status : bool
        Add the ``boot_done`` / ``boot_error`` / ``boot_code`` inputs: the accelerator
        becomes usable only after a boot step (the engine's parameter loader). A classify
        request waits for ``boot_done`` or ``boot_error``; after ``boot_error`` it is
        answered with ``STATUS_PARAMETERS`` and ``boot_code`` in the class byte, and
        nothing is computed.
    pixel_order : str
        How the host orders the pixel bytes, announced in the info block:
        ``"patches"`` (the generated network) or ``"hwc"`` (the engine).
    parameter_load : bool
        (Needs ``boot_status``.) Accept ``COMMAND_LOAD``: a 4-byte little-endian length
        ``N``, then ``N`` bytes, forwarded to the ``load`` stream (after ``load_start``,
        one cycle, at the command) until ``load_finished``; later bytes are dropped. Then
        (``load_finished``, or 16 cycles after the last byte) the answer
        ``0xA5, status, code, checksum``: status ``STATUS_PARAMETERS`` with ``boot_code``
        unless ``boot_done``.

    Members
    -------
    rx : In(1)
        Serial input from the host (idle high).
    tx : Out(1)
        Serial output to the host (idle high).
    boot_done, boot_error : In(1), boot_code : In(8)
        Only with ``boot_status`` (see above).
    load : Out(stream.Signature(8)), load_start : Out(1), load_finished : In(1)
        Only with ``parameter_load`` (see above).

    Behaviour: the image is stored in an on-chip buffer (``pixels`` elements), checked
    (checksum, element range), then streamed into the accelerator at one word per cycle
    (bubbles only where the accelerator's ``i.ready`` is low). Output words are accepted
    on every cycle and stored; then one registered comparator scans them (``num_logits``
    cycles plus one per output word, plus one) for the class, the index of the first maximal logit (signed or
    unsigned compare, as the output elements are). Only then the response is sent, so
    back-pressure never reaches the accelerator from the UART.
    """

    def __init__(self, accelerator: wiring.Component, *, pixels: int, num_logits: int,
                 divisor: int, boot_status: bool = False, pixel_order: str = "patches",
                 parameter_load: bool = False):
        self.accelerator = accelerator
        self.input_format = stream_format(accelerator, "i")
        self.output_format = stream_format(accelerator, "o")
        if _flow(accelerator, "i") != wiring.In or _flow(accelerator, "o") != wiring.Out:
            raise ConfigError("accelerator: 'i' must be an input stream and 'o' an output stream")
        fin, fout = self.input_format, self.output_format
        if fin.width > 8:
            raise ConfigError(f"accelerator input elements are {fin.width} bits; the UART "
                              "protocol sends one byte per pixel (at most 8 bits)")
        if fout.width > 32:
            raise ConfigError(f"accelerator output elements are {fout.width} bits; at most 32")
        self.pixels = check_int(pixels, "pixels", 1, 65535)
        if self.pixels % fin.lanes:
            raise ConfigError(f"pixels={self.pixels} is not a multiple of the accelerator's "
                              f"{fin.lanes} input lanes")
        self.num_logits = check_int(num_logits, "num_logits", 1, 255)
        if self.num_logits % fout.lanes:
            raise ConfigError(f"num_logits={self.num_logits} is not a multiple of the "
                              f"accelerator's {fout.lanes} output lanes")
        self.divisor = check_divisor(divisor)
        self.logit_bytes = (fout.width + 7) // 8
        self.info = host.DesignInfo(pixels=self.pixels, num_logits=self.num_logits,
                                    logit_bytes=self.logit_bytes, pixel_width=fin.width,
                                    pixel_signed=fin.signed, logit_signed=fout.signed,
                                    pixel_order=pixel_order)
        if parameter_load and not boot_status:
            raise ConfigError("parameter_load needs boot_status (the answer reports it)")
        self.boot_status = boot_status
        self.parameter_load = parameter_load
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1)}
        if boot_status:
            ports.update(boot_done=In(1), boot_error=In(1), boot_code=In(8))
        if parameter_load:
            ports.update(load=Out(stream.Signature(8)), load_start=Out(1), load_finished=In(1))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        fin, fout = self.input_format, self.output_format
        in_words = self.pixels // fin.lanes
        out_words = self.num_logits // fout.lanes
        m.submodules.accelerator = acc = self.accelerator
        m.submodules.receiver = receiver = UARTReceiver(self.divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(self.divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx)]

        # Image buffer: one word of `lanes` elements per address, as the accelerator reads it.
        m.submodules.image = image = memory.Memory(shape=unsigned(fin.width * fin.lanes),
                                                   depth=in_words, init=[])
        image_write = image.write_port()
        image_read = image.read_port(domain="sync")
        m.submodules.logits = logits = memory.Memory(shape=unsigned(fout.width * fout.lanes),
                                                     depth=out_words, init=[])
        logits_write = logits.write_port()
        logits_read = logits.read_port(domain="sync")

        byte = receiver.o.payload
        load_left = Signal(32)          # COMMAND_LOAD: image bytes still to come
        length_index = Signal(2)
        pixel_index = Signal(range(self.pixels + 1))
        lane = Signal(range(max(fin.lanes, 2)))
        word_index = Signal(range(max(in_words, 2)))
        assembling = Signal(fin.width * fin.lanes)
        checksum = Signal(8)
        status = Signal(8)
        element = byte[:fin.width]
        out_of_range = pixel_out_of_range(byte, fin.width, fin.signed)
        m.d.comb += [image_write.data.eq(Cat(assembling[fin.width:], element)),
                     image_write.addr.eq(word_index)]

        feed_addr = Signal(range(max(in_words, 2)))
        feeding = Signal()
        transfer_in = acc.i.valid & acc.i.ready
        next_feed_addr = Mux(transfer_in, feed_addr + 1, feed_addr)
        m.d.comb += [image_read.addr.eq(next_feed_addr), image_read.en.eq(1)]
        m.d.sync += feed_addr.eq(next_feed_addr)
        m.d.comb += [acc.i.valid.eq(feeding),
                     Value.cast(acc.i.payload.data).eq(image_read.data),
                     acc.i.payload.last.eq(feed_addr == in_words - 1)]
        if "first" in fin.fields:
            m.d.comb += acc.i.payload.first.eq(feed_addr == 0)

        # Results: stored as they come; afterwards one comparator scans them for the class
        # (a comparison chain across the lanes of a word was the design's critical path).
        collecting = Signal()
        out_count = Signal(range(out_words + 2))
        best = Signal(Shape(fout.width, fout.signed))
        best_index = Signal(8)
        scan_index = Signal(8)
        scan_done = Signal()
        settle = Signal()     # the logits buffer's read port needs a cycle after an address change
        candidate = Signal(Shape(fout.width, fout.signed))   # registered: RAM read, then compare
        candidate_index = Signal(8)
        candidate_valid = Signal()
        m.d.comb += acc.o.ready.eq(collecting)
        out_data = Value.cast(acc.o.payload.data)
        transfer_out = acc.o.valid & acc.o.ready
        m.d.comb += [logits_write.addr.eq(out_count), logits_write.data.eq(out_data),
                     logits_write.en.eq(transfer_out & (out_count < out_words))]

        # Response sequencer: header, logits from the buffer, checksum.
        response = Signal(range(self.info.response_length + 1))
        logit_word = Signal(range(max(out_words, 2)))
        logit_lane = Signal(range(max(fout.lanes, 2)))
        logit_byte = Signal(range(max(self.logit_bytes, 2)))
        m.d.comb += [logits_read.addr.eq(logit_word), logits_read.en.eq(1)]
        lane_values = Array(logits_read.data[j * fout.width:(j + 1) * fout.width]
                            for j in range(fout.lanes))
        lane_value = lane_values[logit_lane]
        scan_value = lane_value.as_signed() if fout.signed else lane_value
        wide = Signal(8 * self.logit_bytes)
        m.d.comb += wide.eq(lane_value.as_signed() if fout.signed else lane_value)
        byte_values = Array(wide[8 * b:8 * b + 8] for b in range(self.logit_bytes))
        send_checksum = Signal(8)
        gap = Signal()    # one idle cycle after each byte: the logits buffer read settles
        tx_byte = transmitter.i.payload
        sent = transmitter.i.valid & transmitter.i.ready
        m.d.sync += gap.eq(sent)
        info_bytes = Array(Const(b, 8) for b in self.info.encode())

        with m.FSM():
            with m.State("idle"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid):
                    with m.If(byte == host.COMMAND_CLASSIFY):
                        m.d.sync += [pixel_index.eq(0), lane.eq(0), word_index.eq(0),
                                     checksum.eq(0), status.eq(0)]
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
                    with m.If(pixel_index == self.pixels):
                        with m.If(byte != checksum):
                            m.d.sync += status.eq(status | host.STATUS_CHECKSUM)
                        m.d.sync += feed_addr.eq(0)
                        m.next = "check"
                    with m.Else():
                        m.d.sync += [checksum.eq(checksum + byte), pixel_index.eq(pixel_index + 1),
                                     assembling.eq(Cat(assembling[fin.width:], element))]
                        with m.If(out_of_range):
                            m.d.sync += status.eq(status | host.STATUS_PIXEL_RANGE)
                        with m.If(lane == fin.lanes - 1):
                            m.d.comb += image_write.en.eq(1)
                            m.d.sync += [lane.eq(0), word_index.eq(word_index + 1)]
                        with m.Else():
                            m.d.sync += lane.eq(lane + 1)
            with m.State("check"):
                # feed_addr is 0 here, so the image read port fetches word 0 for "feed".
                m.d.sync += [out_count.eq(0), best_index.eq(0)]
                booting, refused = Const(0), Const(0)
                if self.boot_status:    # wait for the boot step; refuse after its error
                    booting, refused = ~self.boot_done & ~self.boot_error, self.boot_error
                    with m.If(refused):
                        m.d.sync += [status.eq(status | host.STATUS_PARAMETERS),
                                     best_index.eq(self.boot_code)]
                with m.If(booting):
                    pass
                with m.Elif((status != 0) | refused):
                    m.d.sync += response.eq(0)
                    m.next = "respond"
                with m.Else():
                    m.next = "feed"
            with m.State("feed"):
                m.d.comb += [feeding.eq(1), collecting.eq(1)]
                with m.If(transfer_in & acc.i.payload.last):
                    m.next = "collect"
            with m.State("collect"):
                m.d.comb += collecting.eq(1)
                with m.If(transfer_out & acc.o.payload.last):
                    m.next = "respond_start"
            with m.State("respond_start"):
                with m.If(out_count != out_words):
                    m.d.sync += status.eq(status | host.STATUS_LENGTH)
                m.d.sync += [logit_word.eq(0), logit_lane.eq(0), scan_index.eq(0), settle.eq(1),
                             scan_done.eq(0), candidate_valid.eq(0)]
                m.next = "argmax"
            with m.State("argmax"):
                m.d.sync += [settle.eq(0), candidate_valid.eq(0)]
                with m.If(~settle & ~scan_done):
                    m.d.sync += [candidate.eq(scan_value), candidate_index.eq(scan_index),
                                 candidate_valid.eq(1), scan_index.eq(scan_index + 1)]
                    with m.If(logit_lane == fout.lanes - 1):
                        m.d.sync += [logit_lane.eq(0), logit_word.eq(logit_word + 1),
                                     settle.eq(1)]
                    with m.Else():
                        m.d.sync += logit_lane.eq(logit_lane + 1)
                    with m.If(scan_index == self.num_logits - 1):
                        m.d.sync += scan_done.eq(1)
                with m.If(candidate_valid):
                    with m.If((candidate_index == 0) | (candidate > best)):
                        m.d.sync += [best.eq(candidate), best_index.eq(candidate_index)]
                    with m.If(candidate_index == self.num_logits - 1):
                        m.d.sync += response.eq(0)
                        m.next = "respond"
            with m.State("respond"):
                header = Array([Const(host.RESPONSE_SYNC, 8), status, best_index])
                logit_end = 3 + self.num_logits * self.logit_bytes
                m.d.comb += transmitter.i.valid.eq(~gap)
                with m.If(response < 3):
                    m.d.comb += tx_byte.eq(header[response])
                with m.Elif(response < logit_end):
                    m.d.comb += tx_byte.eq(byte_values[logit_byte])
                with m.Else():
                    m.d.comb += tx_byte.eq(send_checksum)
                with m.If(sent):
                    m.d.sync += response.eq(response + 1)
                    with m.If(response != 0):
                        m.d.sync += send_checksum.eq(send_checksum + tx_byte)
                    with m.If((response >= 3) & (response < logit_end)):
                        with m.If(logit_byte == self.logit_bytes - 1):
                            m.d.sync += logit_byte.eq(0)
                            with m.If(logit_lane == fout.lanes - 1):
                                m.d.sync += [logit_lane.eq(0), logit_word.eq(logit_word + 1)]
                            with m.Else():
                                m.d.sync += logit_lane.eq(logit_lane + 1)
                        with m.Else():
                            m.d.sync += logit_byte.eq(logit_byte + 1)
                    with m.If(response == logit_end):
                        m.next = "idle"
            with m.State("info"):
                m.d.comb += [transmitter.i.valid.eq(1), tx_byte.eq(info_bytes[response])]
                with m.If(sent):
                    m.d.sync += response.eq(response + 1)
                    with m.If(response == len(self.info.encode()) - 1):
                        m.next = "idle"

        with m.If(transfer_out):
            m.d.sync += out_count.eq(Mux(out_count == out_words + 1, out_count, out_count + 1))
        with m.If(sent & (response == 0)):
            m.d.sync += [send_checksum.eq(0), logit_word.eq(0), logit_lane.eq(0), logit_byte.eq(0)]
        return m


def pixel_out_of_range(byte: Value, width: int, signed: bool) -> Value:
    """1 when the received ``byte`` does not fit a pixel element of ``width`` bits: for a
    signed element the byte is a two's-complement int8 whose bits ``[width - 1, 8)`` must
    agree; for an unsigned one its bits from ``width`` up must be 0."""
    if signed:
        top = byte[width - 1:]
        return ~((top == 0) | (top == (1 << (9 - width)) - 1))
    return (byte >> width) != 0 if width < 8 else Const(0)


def uart_load_states(m: Module, ports, receiver, transmitter, load_left: Signal,
                     length_index: Signal) -> None:
    """The FSM states of ``COMMAND_LOAD`` (inside the caller's FSM, entered at
    ``"load_length"`` with ``load_left`` and ``length_index`` cleared; they return to
    ``"idle"``): the 4-byte length, the image bytes forwarded to ``ports.load`` until
    ``ports.load_finished``, then (``load_finished``, or 16 cycles after the last byte) the
    answer ``0xA5, status, code, checksum`` from ``ports.boot_done`` / ``ports.boot_code``.
    ``ports`` is a front end with the ``parameter_load`` members of
    :class:`UARTBoardWrapper`."""
    byte = receiver.o.payload
    settle = Signal(5)             # cycles since the last byte, while waiting for the loader
    answer = Signal(2)
    status = Mux(ports.boot_done, 0, host.STATUS_PARAMETERS)
    code = Mux(ports.boot_done, 0, ports.boot_code)
    frame = Array([Const(host.RESPONSE_SYNC, 8), status, code, (status + code)[:8]])
    with m.State("load_length"):
        m.d.comb += receiver.o.ready.eq(1)
        with m.If(receiver.o.valid):
            length = Cat(load_left[8:], byte)
            m.d.sync += [load_left.eq(length), length_index.eq(length_index + 1)]
            with m.If(length_index == 3):
                m.d.sync += settle.eq(0)
                m.next = "load_bytes"
    with m.State("load_bytes"):
        m.d.comb += [ports.load.valid.eq(receiver.o.valid & ~ports.load_finished),
                     ports.load.payload.eq(byte),
                     receiver.o.ready.eq(ports.load_finished | ports.load.ready)]
        with m.If(load_left == 0):
            m.next = "load_wait"
        with m.Elif(receiver.o.valid & receiver.o.ready):
            m.d.sync += load_left.eq(load_left - 1)
    with m.State("load_wait"):
        m.d.sync += settle.eq(settle + 1)
        with m.If(ports.load_finished | (settle == 16)):
            m.d.sync += answer.eq(0)
            m.next = "load_answer"
    with m.State("load_answer"):
        m.d.comb += [transmitter.i.valid.eq(1), transmitter.i.payload.eq(frame[answer])]
        with m.If(transmitter.i.valid & transmitter.i.ready):
            m.d.sync += answer.eq(answer + 1)
            with m.If(answer == 3):
                m.next = "idle"
