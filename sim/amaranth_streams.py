"""Stream testbench helpers for Amaranth's own simulator.

Every kernel in ``hw/`` has ``amaranth.lib.stream`` ports (see
``docs/hardware-conventions.md``). These helpers drive and collect such ports inside an
Amaranth 0.5 async testbench, with seeded random input bubbles and output back-pressure,
so each kernel's test only states its stimulus and its expected words.

Words are exchanged as plain integers: the flat bit pattern the Verilog port
``<name>__payload`` carries (first layout field at the LSBs). ``payload_to_int`` and
``int_to_payload`` convert between that integer and structured values (dicts for
``StructLayout``, lists for ``ArrayLayout``, signed ints for ``signed`` fields).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from amaranth.hdl import Const, Shape, Value
from amaranth.lib import data
from amaranth.sim import Simulator

__all__ = ["payload_to_int", "int_to_payload", "stream_put", "stream_get",
           "simulate_streams", "StreamRun"]


def payload_to_int(layout_or_shape: Any, value: Any) -> int:
    """The flat unsigned integer a payload of ``layout_or_shape`` holding ``value`` has.

    ``value`` may be an int (taken as the flat pattern when the shape is a layout, or as the
    numeric value for a plain ``signed``/``unsigned`` shape), a dict (``StructLayout``), a
    sequence (``ArrayLayout``), or a ``data.Const``. Raises ``ValueError`` for a value that
    does not fit.
    """
    if isinstance(value, data.Const):
        return Const.cast(value).value & ((1 << Shape.cast(layout_or_shape).width) - 1)
    if isinstance(layout_or_shape, data.Layout):
        if isinstance(value, int):
            width = layout_or_shape.size
            if not 0 <= value < (1 << width):
                raise ValueError(f"payload {value:#x} does not fit {width} bits")
            return value
        if isinstance(layout_or_shape, data.StructLayout) and isinstance(value, Mapping):
            flat = 0
            for name, fld in layout_or_shape:
                if name not in value:
                    raise ValueError(f"payload dict lacks field {name!r}")
                flat |= payload_to_int(fld.shape, value[name]) << fld.offset
            unknown = set(value) - {name for name, _ in layout_or_shape}
            if unknown:
                raise ValueError(f"payload dict has unknown fields {sorted(unknown)}")
            return flat
        if isinstance(layout_or_shape, data.ArrayLayout) and isinstance(value, Sequence):
            if len(value) != layout_or_shape.length:
                raise ValueError(f"payload array has {len(value)} elements, "
                                 f"layout expects {layout_or_shape.length}")
            elem_width = Shape.cast(layout_or_shape.elem_shape).width
            flat = 0
            for index, element in enumerate(value):
                flat |= payload_to_int(layout_or_shape.elem_shape, element) << (index * elem_width)
            return flat
        raise ValueError(f"cannot convert {type(value).__name__} to layout {layout_or_shape!r}")
    shape = Shape.cast(layout_or_shape)
    value = int(value)
    low = -(1 << (shape.width - 1)) if shape.signed else 0
    high = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    if not low <= value <= high:
        raise ValueError(f"value {value} does not fit {shape!r} (range [{low}, {high}])")
    return value & ((1 << shape.width) - 1)


def int_to_payload(layout: Any, value: int) -> Any:
    """Unpack a flat payload integer into dicts (struct), lists (array) and ints (fields).

    Signed fields come back as negative Python ints where their sign bit is set.
    """
    if isinstance(layout, data.StructLayout):
        return {name: int_to_payload(fld.shape, (value >> fld.offset)
                                     & ((1 << Shape.cast(fld.shape).width) - 1))
                for name, fld in layout}
    if isinstance(layout, data.ArrayLayout):
        elem_width = Shape.cast(layout.elem_shape).width
        return [int_to_payload(layout.elem_shape, (value >> (i * elem_width))
                               & ((1 << elem_width) - 1))
                for i in range(layout.length)]
    if isinstance(layout, data.Layout):
        return value
    shape = Shape.cast(layout)
    value &= (1 << shape.width) - 1
    if shape.signed and value >> (shape.width - 1):
        value -= 1 << shape.width
    return value


def _flat_payload(stream) -> Value:
    """The payload as one unsigned Value, whatever its layout (the Verilog port's bits)."""
    return Value.cast(stream.payload).as_unsigned()


def _to_flat(stream, payload: Any) -> int:
    """A driver word as the flat pattern: ints in [0, 2**width) are taken as the pattern
    itself (what ``stream_get`` returns), anything else goes through ``payload_to_int``."""
    shape = stream.payload.shape()
    width = Shape.cast(shape).width
    if isinstance(payload, int) and 0 <= payload < (1 << width):
        return payload
    return payload_to_int(shape, payload)


class _Progress:
    """Per-port transfer counts and cycle stamps, shared with the deadlock watchdog."""

    def __init__(self):
        self.done: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.first_in: int | None = None
        self.last_out: int | None = None

    def waiting(self) -> list[str]:
        return [f"{port} ({self.done[port]}/{self.total[port]} words)"
                for port in self.total if self.done[port] < self.total[port]]


async def stream_put(ctx, stream, payloads: Sequence[Any], *, rng: random.Random | None = None,
                     bubble_prob: float = 0.0, _name: str = "i",
                     _progress: _Progress | None = None) -> None:
    """Send ``payloads`` on ``stream`` (a DUT's input), one word per transfer.

    Before each word the driver idles for a random number of cycles: each cycle is a
    bubble with probability ``bubble_prob`` (``rng`` seeds it; default seed 0). A word
    is an int (the flat payload) or a dict / list / ``data.Const`` for a layout payload.
    Returns after the last transfer, with ``valid`` low again.
    """
    rng = rng or random.Random(0)
    flat = _flat_payload(stream)
    words = [_to_flat(stream, p) for p in payloads]
    cycle = 0
    if _progress is not None:
        _progress.total[_name] = len(words)
        _progress.done[_name] = 0
    for index, word in enumerate(words):
        while bubble_prob and rng.random() < bubble_prob:
            ctx.set(stream.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(flat, word)
        ctx.set(stream.valid, 1)
        while True:
            _, _, ready = await ctx.tick().sample(stream.ready)
            cycle += 1
            if ready:
                break
        if _progress is not None:
            if index == 0 and (_progress.first_in is None or cycle < _progress.first_in):
                _progress.first_in = cycle
            _progress.done[_name] = index + 1
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, count: int, *, rng: random.Random | None = None,
                     stall_prob: float = 0.0, _name: str = "o",
                     _progress: _Progress | None = None) -> list[int]:
    """Receive ``count`` words from ``stream`` (a DUT's output) as flat payload ints.

    ``ready`` is low on a cycle with probability ``stall_prob`` (random back-pressure,
    seeded by ``rng``; default seed 0). Returns after the ``count``-th transfer, with
    ``ready`` low again.
    """
    rng = rng or random.Random(0)
    flat = _flat_payload(stream)
    received: list[int] = []
    cycle = 0
    if _progress is not None:
        _progress.total[_name] = count
        _progress.done[_name] = 0
    while len(received) < count:
        ready = not (stall_prob and rng.random() < stall_prob)
        ctx.set(stream.ready, ready)
        _, _, valid, word = await ctx.tick().sample(stream.valid, flat)
        cycle += 1
        if ready and valid:
            received.append(word)
            if _progress is not None:
                _progress.done[_name] = len(received)
                _progress.last_out = max(_progress.last_out or 0, cycle)
    ctx.set(stream.ready, 0)
    return received


@dataclass
class StreamRun:
    """What ``simulate_streams`` observed.

    Attributes
    ----------
    outputs : dict[str, list[int]]
        Received flat payload words per output port name.
    cycles : int
        Clock cycles from the first input transfer to the last output transfer, both
        included (1 when they are the same cycle). Without inputs: cycles until the last
        output transfer.
    total_cycles : int
        Cycles from reset release to the last output transfer.
    """

    outputs: dict[str, list[int]] = field(default_factory=dict)
    cycles: int = 0
    total_cycles: int = 0


def simulate_streams(dut, inputs: Mapping[str, Sequence[Any]], outputs: Mapping[str, int], *,
                     bubble_prob: float = 0.3, stall_prob: float = 0.3, seed: int = 0,
                     max_cycles: int | None = None,
                     vcd: str | Path | None = None) -> StreamRun:
    """Simulate ``dut`` with one driver per input stream and one collector per output.

    Parameters
    ----------
    dut : wiring.Component
        The kernel; ports are looked up as attributes (``dut.i``, ``dut.o``, ...).
    inputs : dict[str, list]
        Words to send per input port name (ints or layout values, see ``stream_put``).
    outputs : dict[str, int]
        Number of words to collect per output port name.
    bubble_prob, stall_prob : float
        Probability of an idle cycle before each input word / of ``ready`` low per cycle.
    seed : int
        Seeds every port's random source (each port gets its own stream of numbers).
    max_cycles : int, optional
        Deadlock guard; default ``1000 + 20 × (total words)``. When exceeded the run raises
        ``AssertionError`` naming the ports still waiting and their progress.
    vcd : path, optional
        Write a VCD trace of the whole run there.

    Returns
    -------
    StreamRun
        Received words (flat ints) per output port and the measured cycle counts.
    """
    if max_cycles is None:
        words = sum(len(v) for v in inputs.values()) + sum(outputs.values())
        max_cycles = 1000 + 20 * words
    progress = _Progress()
    run = StreamRun()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for port in [*inputs, *outputs]:
        if not hasattr(dut, port):
            raise ValueError(f"{type(dut).__name__} has no port {port!r}")

    def make_put(index: int, port: str, payloads):
        async def put(ctx):
            await stream_put(ctx, getattr(dut, port), payloads,
                             rng=random.Random(seed * 1000 + index), bubble_prob=bubble_prob,
                             _name=port, _progress=progress)
        return put

    def make_get(index: int, port: str, count: int):
        async def get(ctx):
            run.outputs[port] = await stream_get(
                ctx, getattr(dut, port), count, rng=random.Random(seed * 1000 + 500 + index),
                stall_prob=stall_prob, _name=port, _progress=progress)
        return get

    async def watchdog(ctx):
        for _ in range(max_cycles):
            await ctx.tick()
        raise AssertionError(
            f"simulate_streams: no completion after {max_cycles} cycles (deadlock?); "
            f"still waiting: {', '.join(progress.waiting()) or 'nothing'}")

    for index, (port, payloads) in enumerate(inputs.items()):
        sim.add_testbench(make_put(index, port, list(payloads)))
    for index, (port, count) in enumerate(outputs.items()):
        sim.add_testbench(make_get(index, port, count))
    sim.add_testbench(watchdog, background=True)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    last = progress.last_out or 0
    run.total_cycles = last
    run.cycles = last - progress.first_in + 1 if progress.first_in is not None else last
    return run
