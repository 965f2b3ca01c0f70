"""Shared steps of the pooling and token-buffer tests: seeded stimulus, an Amaranth run
compared word for word with ``model()``, and the Verilator lint (``binaryvit.sim.lint``)."""
# amaranth: UnusedElaboratable=no
from __future__ import annotations

import torch

from amaranth.sim import Simulator

from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.amaranth_streams import simulate_streams, stream_get, stream_put
from binaryvit.sim.lint import lint_verilog


def random_tokens(images: int, tokens: int, channels: int, width: int, seed: int) -> torch.Tensor:
    """Uniform integers over the whole signed ``width``-bit range, ``[images, tokens, channels]``."""
    g = torch.Generator().manual_seed(seed)
    bound = 1 << (width - 1)
    return torch.randint(-bound, bound, (images, tokens, channels), generator=g)


def run_amaranth(dut, x, *, bubble_prob: float = 0.3, stall_prob: float = 0.3, seed: int = 0):
    """Stream ``x`` through ``dut`` in Amaranth's simulator; assert every output word equals
    ``dut.model(x)``'s; return the run (for cycle counts)."""
    expected = dut.encode_output(dut.model(x))
    run = simulate_streams(dut, {"i": dut.encode_input(x)}, {"o": len(expected)},
                           bubble_prob=bubble_prob, stall_prob=stall_prob, seed=seed)
    assert run.outputs["o"] == expected
    return run


def lint_problems(dut, name: str) -> list[str]:
    """Verilator ``-Wall`` findings on ``dut``'s Verilog (``[]`` when clean)."""
    return lint_verilog(to_verilog(dut, name), name)


def run_with_gaps(dut, x, gap: int) -> list[int]:
    """Stream the images of ``x`` through ``dut`` in Amaranth's simulator with exactly
    ``gap`` idle input cycles between images (no other bubbles, no back-pressure); return
    the output words. Aimed at what a kernel does while its input pauses at an image
    boundary."""
    expected = dut.encode_output(dut.model(x))
    images = [dut.encode_input(image.unsqueeze(0)) for image in x]
    received: list[int] = []

    async def put(ctx):
        for index, words in enumerate(images):
            if index:
                for _ in range(gap):
                    await ctx.tick()
            await stream_put(ctx, dut.i, words)

    async def get(ctx):
        received.extend(await stream_get(ctx, dut.o, len(expected)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(put)
    sim.add_testbench(get)
    sim.run_until(1e-6 * (len(expected) + len(images) * (gap + 1) + 100))
    assert received == expected
    return received
