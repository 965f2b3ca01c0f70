"""The generic cocotb test that ``binaryvit.sim.runner.run_stream_vectors`` runs.

It reads a JSON vector file named by ``$BINARYVIT_STREAM_VECTORS`` (written by the
runner): the words to send per input port, the words expected per output port, the
bubble / stall probabilities, the seed and the cycle limit. It resets the DUT, drives
every input with random bubbles, applies random back-pressure on every output, compares
every output word with its expectation, and writes what it saw (received words, cycle
counts, the failure message) to the JSON file named in the vectors, so the runner can
raise a readable ``AssertionError`` in the calling pytest test.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from binaryvit.sim.cocotb_streams import StreamProgress, collect_stream, drive_stream

VECTORS_ENV = "BINARYVIT_STREAM_VECTORS"
NEIGHBOURS = 3
EXTRA_CYCLES = 16


def describe_mismatch(port: str, expected: list[int], got: list[int]) -> str | None:
    """None when equal; else a message naming the port, the first differing word index,
    expected and got in hex, the neighbouring words and the number of differing words."""
    if got == expected:
        return None
    if len(got) != len(expected):
        return f"port {port!r}: received {len(got)} words, expected {len(expected)}"
    bad = [k for k, (e, g) in enumerate(zip(expected, got)) if e != g]
    first = bad[0]
    lines = [f"port {port!r}: word {first} of {len(expected)} differs: expected "
             f"{expected[first]:#x}, got {got[first]:#x} ({len(bad)} words differ)",
             "  index  expected  got"]
    for k in range(max(0, first - NEIGHBOURS), min(len(expected), first + NEIGHBOURS + 1)):
        mark = "  <--" if expected[k] != got[k] else ""
        lines.append(f"  {k:5d}  {expected[k]:#x}  {got[k]:#x}{mark}")
    return "\n".join(lines)


@cocotb.test()
async def stream_vectors(dut):
    """Every output word equals its expectation under random bubbles and back-pressure."""
    vectors = json.loads(Path(os.environ[VECTORS_ENV]).read_text())
    result_path = Path(vectors["result_path"])
    result = {"outputs": {}, "cycles": None, "total_cycles": None, "error": None}
    try:
        await _run(dut, vectors, result)
    except AssertionError as exc:
        result["error"] = str(exc)
        raise
    finally:
        result_path.write_text(json.dumps(result))


async def _run(dut, vectors: dict, result: dict) -> None:
    seed = vectors["seed"]
    inputs: dict[str, list[int]] = vectors["inputs"]
    expected: dict[str, list[int]] = vectors["outputs"]
    for port in inputs:
        getattr(dut, f"{port}__valid").value = 0
    for port in expected:
        getattr(dut, f"{port}__ready").value = 0
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    progress = StreamProgress()
    received = {port: [] for port in expected}
    failures: list[str] = []

    async def guarded(coroutine):
        # A failing task would end the cocotb test before the result file is written.
        try:
            await coroutine
        except AssertionError as exc:
            failures.append(str(exc))

    tasks = []
    for index, (port, words) in enumerate(inputs.items()):
        tasks.append(cocotb.start_soon(guarded(drive_stream(
            dut, port, words, rng=random.Random(seed * 1000 + index),
            bubble_prob=vectors["bubble_prob"], progress=progress))))
    for index, (port, words) in enumerate(expected.items()):
        tasks.append(cocotb.start_soon(guarded(collect_stream(
            dut, port, len(words), rng=random.Random(seed * 1000 + 500 + index),
            stall_prob=vectors["stall_prob"], progress=progress, received=received[port],
            extra_cycles=EXTRA_CYCLES))))

    for _ in range(vectors["timeout_cycles"]):
        if all(task.done() for task in tasks):
            break
        await RisingEdge(dut.clk)
    else:
        for task in tasks:
            task.cancel()
        result["outputs"] = received
        if failures:
            raise AssertionError("\n".join(failures))
        raise AssertionError(f"timeout after {vectors['timeout_cycles']} cycles (deadlock?); "
                             f"still waiting: {', '.join(progress.waiting()) or 'nothing'}")
    result["outputs"] = received
    if failures:
        raise AssertionError("\n".join(failures))
    last = progress.last_out or 0
    result["total_cycles"] = last
    result["cycles"] = last - progress.first_in + 1 if progress.first_in is not None else last
    errors = [msg for port in expected
              if (msg := describe_mismatch(port, expected[port], received[port]))]
    if errors:
        raise AssertionError("\n".join(errors))
