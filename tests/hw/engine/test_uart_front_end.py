# amaranth: UnusedElaboratable=no
"""The engine's UART front end in Amaranth's simulator, at the bit level, against a model of
the engine's host port: pixels land in the input tensor, the class is the first maximal
logit, every status of the protocol is answered, and nothing runs when it must not.

The serial line is driven and sampled with hand-written 8N1 timing; every answer is decoded
by the host's own decoder (``binaryvit.host``); the expected class comes from Python's
``max`` over the logits the engine model holds, never from the RTL."""
import random

import pytest
from amaranth.sim import Simulator

from binaryvit import host
from binaryvit.errors import ConfigError, DataError
from binaryvit.hw.engine.board.design import EngineDesign
from binaryvit.hw.engine.board.uart_front_end import EngineUARTFrontEnd
from binaryvit.hw.engine.config import UP5K

DIVISOR = 4
INPUT, OUTPUT, PROGRAM = 100, 300, 7


def design(pixels=6, width=5, signed=False, classes=5, words=2):
    return EngineDesign(config=UP5K, design_id=1, program_address=PROGRAM,
                        input_address=INPUT, pixels=pixels, pixel_width=width,
                        pixel_signed=signed, output_address=OUTPUT, classes=classes,
                        logit_words=words, image_shape=(1, 1, pixels), plan={})


def logit_words(values, words):
    out = []
    for v in values:
        u = v & ((1 << 16 * words) - 1)
        out += [(u >> 16 * k) & 0xFFFF for k in range(words)]
    return out


class Exchange:
    """Runs requests through the front end; the engine model answers on the host port."""

    def __init__(self, dut, logits, *, boot="done", boot_after=0, engine_error=False,
                 run_cycles=7, seed=0):
        self.dut, self.d = dut, dut.design
        self.memory = {OUTPUT + k: w for k, w in enumerate(logit_words(logits, self.d.logit_words))}
        self.boot, self.boot_after, self.engine_error = boot, boot_after, engine_error
        self.run_cycles = run_cycles
        self.rng = random.Random(seed)
        self.starts = 0
        self.writes_while_busy = 0
        self.pc = None

    def run(self, requests, lengths):
        dut, answers = self.dut, []
        line = []           # tx levels, one per cycle

        async def engine(ctx):
            eng, busy_left, cycle = dut.engine, 0, 0
            async for _, _, write, addr, data, read, start, pc in ctx.tick().sample(
                    eng.host_write, eng.host_addr, eng.host_write_data, eng.host_read,
                    eng.start, eng.pc_start):
                cycle += 1
                booted = cycle >= self.boot_after
                ctx.set(dut.boot_done, booted and self.boot == "done")
                ctx.set(dut.boot_error, booted and self.boot == "error")
                ctx.set(dut.boot_code, 3 if self.boot == "error" else 0)
                if read:            # the word is there in the cycle after the read
                    ctx.set(eng.host_read_data, self.memory.get(addr, 0))
                if write:
                    if busy_left:
                        self.writes_while_busy += 1
                    self.memory[addr] = data
                if start:
                    self.starts += 1
                    self.pc = pc
                    busy_left = self.run_cycles
                    ctx.set(eng.done, 0)
                    ctx.set(eng.error, 0)
                    ctx.set(eng.busy, 1)
                elif busy_left:
                    busy_left -= 1
                    if not busy_left:
                        ctx.set(eng.busy, 0)
                        ctx.set(eng.error, self.engine_error)
                        ctx.set(eng.done, not self.engine_error)

        async def serial(ctx):
            for request, length in zip(requests, lengths):
                for byte in request:
                    for _ in range(self.rng.choice([0, 0, 3, 11])):    # gaps between bytes
                        await ctx.tick()
                    for level in [0] + [(byte >> j) & 1 for j in range(8)] + [1]:
                        ctx.set(dut.rx, level)
                        await ctx.tick().repeat(DIVISOR)
                answers.append(await self._receive(ctx, length))

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_process(engine)
        sim.add_testbench(serial)
        sim.run()
        return answers

    async def _receive(self, ctx, length):
        out = bytearray()
        waited = 0
        while len(out) < length:
            while ctx.get(self.dut.tx):          # wait for a start bit
                await ctx.tick()
                waited += 1
                assert waited < 200_000, f"no answer after {len(out)} bytes"
            await ctx.tick().repeat(DIVISOR // 2)
            value = 0
            for j in range(8):
                await ctx.tick().repeat(DIVISOR)
                value |= ctx.get(self.dut.tx) << j
            await ctx.tick().repeat(DIVISOR)
            assert ctx.get(self.dut.tx) == 1, "stop bit"
            out.append(value)
        return bytes(out)


def classify(dut, pixels, logits, **kwargs):
    info = dut.info
    exchange = Exchange(dut, logits, **kwargs)
    answers = exchange.run([host.encode_request(pixels, info)], [info.response_length])
    return exchange, answers[0]


@pytest.mark.parametrize("logits", [
    [5, -3, 5, 2, 1],                                 # a tie: the first maximum
    [-7, -2, -9, -2, -100],                           # all negative
    [-(1 << 31), (1 << 31) - 1, 0, (1 << 31) - 2, -1],  # the extremes of 32 bits
])
def test_pixels_go_to_the_input_tensor_and_the_class_is_the_first_maximum(logits):
    dut = EngineUARTFrontEnd(design(), divisor=DIVISOR)
    pixels = [0, 31, 7, 16, 1, 30]
    exchange, answer = classify(dut, pixels, logits, seed=len(logits))
    got = host.decode_response(answer, dut.info)
    assert got.logits == logits
    assert got.label == logits.index(max(logits))
    assert [exchange.memory[INPUT + k] for k in range(6)] == pixels
    assert exchange.starts == 1 and exchange.pc == PROGRAM


def test_signed_pixels_are_sign_extended_and_one_word_logits_read():
    dut = EngineUARTFrontEnd(design(width=6, signed=True, classes=3, words=1), divisor=DIVISOR)
    pixels = [-32, 31, -1, 0, 5, -6]
    exchange, answer = classify(dut, pixels, [-4, 9, 9])
    got = host.decode_response(answer, dut.info)
    assert got.logits == [-4, 9, 9] and got.label == 1
    assert [exchange.memory[INPUT + k] for k in range(6)] == [p & 0xFFFF for p in pixels]


def status_of(answer):
    assert answer[0] == host.RESPONSE_SYNC and sum(answer[1:-1]) & 0xFF == answer[-1]
    return answer[1], answer[2]


def test_a_bad_checksum_or_pixel_is_answered_without_running_the_engine():
    dut = EngineUARTFrontEnd(design(), divisor=DIVISOR)
    info = dut.info
    good = host.encode_request([1, 2, 3, 4, 5, 6], info)
    bad_sum = good[:-1] + bytes([(good[-1] + 1) & 0xFF])
    body = bytes([1, 2, 32, 4, 5, 6])                 # 32 does not fit 5 bits
    bad_pixel = bytes([host.COMMAND_CLASSIFY]) + body + bytes([sum(body) & 0xFF])
    exchange = Exchange(dut, [1, 2, 3, 4, 5])
    answers = exchange.run([bad_sum, bad_pixel, good], [info.response_length] * 3)
    assert status_of(answers[0])[0] == host.STATUS_CHECKSUM
    assert status_of(answers[1])[0] == host.STATUS_PIXEL_RANGE
    assert host.decode_response(answers[2], info).label == 4
    assert exchange.starts == 1
    with pytest.raises(DataError, match="checksum mismatch"):
        host.decode_response(answers[0], info)


def test_refused_parameters_give_their_code_and_an_engine_error_the_length_status():
    dut = EngineUARTFrontEnd(design(), divisor=DIVISOR)
    exchange, answer = classify(dut, [0] * 6, [1] * 5, boot="error")
    assert status_of(answer) == (host.STATUS_PARAMETERS, 3) and exchange.starts == 0
    with pytest.raises(DataError, match=r"refused its parameter image \(DESIGN_MISMATCH\)"):
        host.decode_response(answer, dut.info)
    dut = EngineUARTFrontEnd(design(), divisor=DIVISOR)
    exchange, answer = classify(dut, [0] * 6, [1] * 5, engine_error=True)
    assert status_of(answer)[0] == host.STATUS_LENGTH and exchange.starts == 1


def test_info_waits_for_the_parameters_and_an_image_sent_while_loading_is_not_run():
    dut = EngineUARTFrontEnd(design(), divisor=DIVISOR)
    info = dut.info
    request = host.encode_request([9, 8, 7, 6, 5, 4], info)
    # the loader finishes long after the first request's bytes (8 bytes x 40 cycles)
    exchange = Exchange(dut, [0, 0, 0, 9, 0], boot_after=2_000)
    answers = exchange.run([request, bytes([host.COMMAND_INFO]), request],
                           [info.response_length, info.INFO_LENGTH, info.response_length])
    assert status_of(answers[0])[0] == host.STATUS_NOT_READY
    with pytest.raises(DataError, match="still loading"):
        host.decode_response(answers[0], info)
    assert host.DesignInfo.decode(answers[1]) == info
    assert host.decode_response(answers[2], info).label == 3
    assert exchange.starts == 1 and exchange.writes_while_busy == 0


def test_designs_the_protocol_cannot_carry_are_refused():
    with pytest.raises(ConfigError, match="at most 8 bits"):
        EngineUARTFrontEnd(design(width=9), divisor=DIVISOR)
    with pytest.raises(ConfigError, match="at most 255"):
        EngineUARTFrontEnd(design(classes=256), divisor=DIVISOR)
