# amaranth: UnusedElaboratable=no
"""The receiver alone, fed as a UART would feed it: the image's bytes with random gaps."""
import random
import struct

import numpy as np
import pytest
from amaranth.sim import Simulator

from binaryvit.errors import ConfigError
from binaryvit.hw.engine.loader_receiver import LoaderError, ParameterImageReceiver
from binaryvit.hw.engine.parameter_image import ParameterImage, crc32_mpeg2
from binaryvit.sim.amaranth_streams import stream_put

DESIGN = 0x5EED_0001


def receive(data: bytes, *, capacity: int = 65536, bubble_prob: float = 0.5, seed: int = 0):
    """Feed ``data``; return ``(done, error, error_code, writes, stops)`` where ``writes`` is
    every ``(write_addr, write_data)`` seen and ``stops`` the cycles ``stop`` was high."""
    dut = ParameterImageReceiver(design_id=DESIGN, capacity_words=capacity)
    writes, stops, state = [], [], {}

    async def source(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await stream_put(ctx, dut.i, list(data), rng=random.Random(seed), bubble_prob=bubble_prob)

    async def monitor(ctx):
        for cycle in range(40 * len(data) + 100):
            await ctx.tick()
            if ctx.get(dut.write_enable):
                writes.append((ctx.get(dut.write_addr), ctx.get(dut.write_data)))
            if ctx.get(dut.stop):
                stops.append(cycle)
            if ctx.get(dut.done) or ctx.get(dut.error):
                break
        state.update(done=ctx.get(dut.done), error=ctx.get(dut.error), code=ctx.get(dut.error_code))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source, background=True)
    sim.add_testbench(monitor)
    sim.run()
    return state["done"], state["error"], state["code"], writes, stops


def with_payload(words: list[int], length: int | None = None) -> bytes:
    """A header with a matching checksum around any payload words."""
    payload = struct.pack(f"<{len(words)}H", *words)
    head = b"BVPI" + struct.pack("<HHII", 1, 0, DESIGN, len(words) if length is None else length)
    return head + struct.pack("<I", crc32_mpeg2(payload, crc32_mpeg2(head))) + payload


def test_an_image_with_random_gaps_is_written_in_order():
    rng = np.random.default_rng(7)
    image = ParameterImage(DESIGN, [(65536 - 200, rng.integers(0, 1 << 16, 200)), (9, []),
                                    (0, rng.integers(0, 1 << 16, 100))])
    done, error, code, writes, stops = receive(image.to_bytes())
    assert (done, error, code) == (1, 0, LoaderError.NONE)
    assert writes == [(address + i, int(w)) for address, words in image.segments
                      for i, w in enumerate(words)]
    assert len(stops) == 1


def test_bytes_after_the_image_are_not_taken():
    image = ParameterImage(DESIGN, [(5, [1, 2, 3])])
    done, error, _, writes, _ = receive(image.to_bytes() + b"\x00" * 8, bubble_prob=0.0)
    assert (done, error) == (1, 0) and writes == [(5, 1), (6, 2), (7, 3)]


def test_a_refused_image_says_stop_at_once():
    image = bytearray(ParameterImage(DESIGN, [(0, [5] * 10)]).to_bytes())
    image[0] = ord("X")
    done, error, code, writes, stops = receive(bytes(image), bubble_prob=0.0)
    assert (done, error, code, writes) == (0, 1, LoaderError.BAD_MAGIC, [])
    assert len(stops) == 1


def test_a_segment_header_cut_off_by_the_payload_length_is_refused():
    """A writer bug, not damage (the checksum matches): the header announces 6 words, the
    second segment's header needs 4 more after the first's 3."""
    done, error, code, writes, _ = receive(with_payload([0, 0, 1, 0, 42, 0]), bubble_prob=0.0)
    assert (done, error, code, writes) == (0, 1, LoaderError.BAD_SEGMENT, [(0, 42)])


@pytest.mark.parametrize("data", [
    ParameterImage(DESIGN, [(70000, [])]).to_bytes(),      # starts past any 64 Ki-word memory
    with_payload([0, 0, 0, 2]),                             # a count of 2^17
    with_payload([0, 0], length=1 << 18),                   # more payload than it can count
])
def test_fields_beyond_a_64k_memory_are_too_long(data):
    done, error, code, writes, _ = receive(data, bubble_prob=0.0)
    assert (done, error, code, writes) == (0, 1, LoaderError.TOO_LONG, [])


def test_capacity_is_checked():
    with pytest.raises(ConfigError, match="capacity_words"):
        ParameterImageReceiver(design_id=DESIGN, capacity_words=0)
