"""Stream drivers and collectors for cocotb 2.1 tests on generated Verilog.

An Amaranth stream port ``<port>`` appears in Verilog as ``<port>__payload``,
``<port>__valid`` and ``<port>__ready`` (see ``docs/hardware-conventions.md``). These
coroutines drive and collect such ports cycle by cycle, with seeded random input bubbles
and output back-pressure, and keep the cycle numbers of transfers so a test can measure
throughput. Payloads are flat integers (the port's bit pattern).

Timing discipline, per clock cycle: write after the rising edge, sample in ``ReadOnly``
(combinational logic settled), and a transfer happens at the next edge when
``valid & ready`` was seen there.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["StreamProgress", "drive_stream", "collect_stream"]


@dataclass
class StreamProgress:
    """Transfers done per port and cycle stamps of the first input / last output transfer.

    Cycle ``n`` is the ``n``-th rising edge after the coroutines start (1-based).
    """

    done: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    first_in: int | None = None
    last_out: int | None = None

    def waiting(self) -> list[str]:
        """Ports that have not finished, as 'port (done/total words)'."""
        return [f"{port} ({self.done[port]}/{self.total[port]} words)"
                for port in self.total if self.done[port] < self.total[port]]


def _port(dut, port: str, member: str):
    try:
        return getattr(dut, f"{port}__{member}")
    except AttributeError:
        raise AssertionError(f"the DUT has no signal {port}__{member}: is {port!r} a stream "
                             "port of this component?") from None


async def drive_stream(dut, port: str, words: Sequence[int], *, rng: random.Random,
                       bubble_prob: float, progress: StreamProgress) -> None:
    """Send ``words`` on input stream ``port``; before each word idle while
    ``rng.random() < bubble_prob``. Call right after a rising edge."""
    valid, payload, ready = (_port(dut, port, m) for m in ("valid", "payload", "ready"))
    progress.total[port] = len(words)
    progress.done[port] = 0
    cycle = 0
    for index, word in enumerate(words):
        while bubble_prob and rng.random() < bubble_prob:
            valid.value = 0
            await RisingEdge(dut.clk)
            cycle += 1
        payload.value = word
        valid.value = 1
        while True:
            await ReadOnly()
            accepted = bool(ready.value)
            await RisingEdge(dut.clk)
            cycle += 1
            if accepted:
                break
        if index == 0 and (progress.first_in is None or cycle < progress.first_in):
            progress.first_in = cycle
        progress.done[port] = index + 1
    valid.value = 0


async def collect_stream(dut, port: str, count: int, *, rng: random.Random, stall_prob: float,
                         progress: StreamProgress, received: list[int],
                         extra_cycles: int = 0) -> None:
    """Receive ``count`` words from output stream ``port`` into ``received``, holding
    ``ready`` low on a cycle with probability ``stall_prob``. Then keep ``ready`` high for
    ``extra_cycles`` more cycles and fail if the DUT offers another word. Call right after
    a rising edge."""
    valid, payload, ready = (_port(dut, port, m) for m in ("valid", "payload", "ready"))
    progress.total[port] = count
    progress.done[port] = 0
    cycle = 0
    while len(received) < count:
        take = not (stall_prob and rng.random() < stall_prob)
        ready.value = int(take)
        await ReadOnly()
        if take and valid.value == 1:
            value = payload.value
            if not value.is_resolvable:
                raise AssertionError(f"port {port!r}: word {len(received)} has X/Z bits: {value}")
            received.append(int(value))
        await RisingEdge(dut.clk)
        cycle += 1
        if len(received) > progress.done[port]:
            progress.done[port] = len(received)
            progress.last_out = max(progress.last_out or 0, cycle)
    ready.value = int(extra_cycles > 0)
    for _ in range(extra_cycles):
        await ReadOnly()
        if valid.value == 1:
            raise AssertionError(f"port {port!r}: the DUT offers a word beyond the expected "
                                 f"{count} words")
        await RisingEdge(dut.clk)
    ready.value = 0
