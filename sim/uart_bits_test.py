"""Talk to a design's UART pins bit by bit in cocotb, like a host's serial adapter would.

``run_uart_exchange`` (called from pytest) converts a component with ``rx`` / ``tx`` ports
to Verilog, builds it for Icarus or Verilator, and runs the cocotb test ``uart_exchange``
below: for each request it drives the ``rx`` pin with 8N1 frames at the host's own bit
time (which may be off from the design's by ``host_skew``, as a real adapter's is), with
random idle gaps between bytes, and decodes every frame on ``tx`` by sampling at bit
centres of the nominal bit time. Stop bits that are not high, frames that start before
the previous one ended, and timeouts are failures. It returns the bytes received after
each request.

With ``flash`` (bytes programmed at an offset) the design's ``spi__*`` pins are answered by
:class:`~binaryvit.sim.spi_flash_model.SPIFlashModel` (the Amaranth testbench model, run
here one clock edge at a time) until the design's ``led_loaded`` or ``led_refused`` rises:
the engine board's boot loader reads its parameter image from it.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer, with_timeout

CLOCK_NS = 10
EXCHANGE_ENV = "BINARYVIT_UART_EXCHANGE"


async def _send_byte(dut, value: int, bit_ps: int) -> None:
    for level in [0] + [(value >> j) & 1 for j in range(8)] + [1]:
        dut.rx.value = level
        await Timer(bit_ps, unit="ps")


async def _receive_byte(dut, bit_ps: int) -> int:
    """Wait for a start bit on ``tx`` and decode its frame at nominal bit centres."""
    await FallingEdge(dut.tx)
    await Timer(bit_ps // 2, unit="ps")
    assert int(dut.tx.value) == 0, "tx: start bit not low at its centre (a glitch)"
    value = 0
    for j in range(8):
        await Timer(bit_ps, unit="ps")
        value |= int(dut.tx.value) << j
    await Timer(bit_ps, unit="ps")
    assert int(dut.tx.value) == 1, f"tx: stop bit low after data byte {value:#04x}"
    return value


class _CocotbContext:
    """The three calls :meth:`SPIFlashModel.process` makes on an Amaranth testbench context,
    on a cocotb design: ``tick`` returns just after a rising clock edge (values settled)."""

    def __init__(self, clock):
        self.clock = clock

    async def tick(self):
        await RisingEdge(self.clock)
        await Timer(1, unit="ps")

    def get(self, signal) -> int:
        return int(signal.value)

    def set(self, signal, value: int) -> None:
        signal.value = value


async def _serve_flash(dut, flash_spec: dict) -> None:
    """Answer the design's flash pins until it has loaded (or refused) its image."""
    from types import SimpleNamespace

    from binaryvit.sim.spi_flash_model import SPIFlashModel

    model = SPIFlashModel(wake_cycles=flash_spec["wake_cycles"])
    model.program(flash_spec["offset"], Path(flash_spec["path"]).read_bytes())
    pins = SimpleNamespace(sck=dut.spi__sck, cs=dut.spi__cs, copi=dut.spi__copi,
                           cipo=dut.spi__cipo)
    task = cocotb.start_soon(model.process(_CocotbContext(dut.clk), pins))
    await First(RisingEdge(dut.led_loaded), RisingEdge(dut.led_refused))
    task.cancel()


@cocotb.test()
async def uart_exchange(dut):
    """Each request is answered by exactly the expected number of well-formed frames."""
    spec = json.loads(Path(os.environ[EXCHANGE_ENV]).read_text())
    rng = random.Random(spec["seed"])
    nominal_ps = spec["divisor"] * CLOCK_NS * 1000
    host_ps = round(nominal_ps * (1 + spec["host_skew"]))
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    if spec.get("flash"):
        dut.spi__cipo.value = 1
        cocotb.start_soon(_serve_flash(dut, spec["flash"]))
    dut.rx.value = 1
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(4):
        await RisingEdge(dut.clk)
    answers = []
    for request, answer_length in zip(spec["requests"], spec["answer_lengths"]):
        received: list[int] = []

        async def listen(count=answer_length, into=received):
            for _ in range(count):
                into.append(await _receive_byte(dut, nominal_ps))

        listener = cocotb.start_soon(listen())
        for value in request:
            await _send_byte(dut, value, host_ps)
            if rng.random() < spec["gap_prob"]:
                await Timer(rng.randrange(1, 3 * nominal_ps), unit="ps")
        budget_ps = (answer_length + 4) * 12 * nominal_ps + spec["compute_cycles"] * CLOCK_NS * 1000
        await with_timeout(listener, budget_ps, "ps")
        # the line must stay idle after the answer: no extra bytes
        await Timer(12 * nominal_ps, unit="ps")
        assert int(dut.tx.value) == 1, "tx: more bytes after the expected answer"
        answers.append(received)
    Path(spec["result_path"]).write_text(json.dumps(answers))


def run_uart_exchange(component, name: str, requests: Sequence[bytes], answer_lengths: Sequence[int],
                      *, divisor: int, simulator: str = "icarus", host_skew: float = 0.0,
                      gap_prob: float = 0.3, seed: int = 0, compute_cycles: int = 20000,
                      extra_sources: dict[str, str] | None = None,
                      flash: tuple[int, bytes] | None = None,
                      flash_wake_cycles: int = 0) -> list[bytes]:
    """Send ``requests`` over ``component``'s ``rx`` pin; return the ``answer_lengths[k]``
    bytes decoded from ``tx`` after each. ``AssertionError`` on a malformed frame or a
    timeout (``compute_cycles`` bounds the clock cycles between request and answer).
    ``extra_sources`` (file name → Verilog) holds modules the component instantiates.
    ``flash``: ``(offset, data)`` programmed into a flash model on the ``spi__*`` pins
    (which needs ``flash_wake_cycles`` after 0xAB), served until ``led_loaded`` or
    ``led_refused`` rises."""
    from binaryvit.hw.verilog import to_verilog
    from binaryvit.sim.simulator import Design, build, run_test

    sources = {f"{name}.v": to_verilog(component, name), **(extra_sources or {})}
    built = build(Design(name, sources), simulator=simulator, kind="uart")
    run_dir = Path(tempfile.mkdtemp(prefix="uart-", dir=built.build_dir))
    spec_path, result_path = run_dir / "spec.json", run_dir / "answers.json"
    flash_spec = None
    if flash is not None:
        (run_dir / "flash.bin").write_bytes(flash[1])
        flash_spec = {"offset": flash[0], "path": str(run_dir / "flash.bin"),
                      "wake_cycles": flash_wake_cycles}
    spec_path.write_text(json.dumps({"flash": flash_spec,
        "requests": [list(r) for r in requests], "answer_lengths": list(answer_lengths),
        "divisor": divisor, "host_skew": host_skew, "gap_prob": gap_prob, "seed": seed,
        "compute_cycles": compute_cycles, "result_path": str(result_path)}))
    run = run_test(built, __name__, testcase="uart_exchange", env={EXCHANGE_ENV: str(spec_path)},
                   seed=seed, run_dir=run_dir)
    if run.failed or not result_path.exists():
        raise AssertionError(f"UART exchange with {name} on {simulator} failed; log {run.log}:\n"
                             f"{run.log_tail()}")
    answers = [bytes(a) for a in json.loads(result_path.read_text())]
    shutil.rmtree(run_dir, ignore_errors=True)
    return answers
