"""Divergence finder: where the RTL and the integer reference first disagree.

A debug build of the accelerator mirrors chosen steps' output streams on tap ports
(``BinaryViTAccelerator(taps=...)``); the Verilator run records every word on them; each
tapped stream is decoded to ``[images, tokens, channels]`` and compared with
``golden.int_network``'s tap of the same step. Steps are compared in program order, so the
first differing step is where the error enters (later ones only inherit it); within it the
first differing element in stream order gives the image, token and channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.intref.intmodel import IntModel
from binaryvit.hw.network.accelerator import BinaryViTAccelerator
from binaryvit.hw.network.folding import Folding
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.ops.registry import spec_of
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.network_sim import build_network_sim, decode_words, pixel_words, run_network

__all__ = ["Divergence", "compare_taps", "find_divergence", "tappable_steps"]


@dataclass(frozen=True)
class Divergence:
    """The first element where a tapped RTL stream differs from the reference."""

    step: str
    op: str
    image: int
    token: int
    channel: int
    expected: int
    got: int
    words_seen: int
    words_expected: int

    def __str__(self) -> str:
        if self.words_seen != self.words_expected:
            return (f"step {self.step!r} ({self.op}): the RTL stream carried {self.words_seen} "
                    f"words, the reference needs {self.words_expected}")
        return (f"first divergence at step {self.step!r} ({self.op}), image {self.image}, "
                f"token {self.token}, channel {self.channel}: reference {self.expected}, "
                f"RTL {self.got}")


def tappable_steps(model: IntModel) -> list[str]:
    """Steps with an output stream of their own kernel in the accelerator, in program
    order."""
    return [s.name for s in model.steps if spec_of(s.op).kernel]


def compare_taps(model: IntModel, images: torch.Tensor, network: NetworkPlan,
                 tap_words: dict[str, list[int]]) -> Divergence | None:
    """First divergence between tapped words (step → words) and the reference, or None."""
    reference = run_int_network(model, images, taps=list(tap_words)).taps
    count = len(images)
    for step in model.steps:
        if step.name not in tap_words:
            continue
        info = network.tensors[step.name]
        lanes = network.produced_lanes[step.name]
        expected = reference[step.name].to(torch.int64)
        words = tap_words[step.name]
        needed = count * info.tokens * info.channels // lanes
        if len(words) < needed:
            return Divergence(step.name, step.op, -1, -1, -1, 0, 0, len(words), needed)
        got = decode_words(words[:needed], info.kind, info.width, lanes, info.channels,
                           info.tokens).to(torch.int64)
        expected = expected.reshape(got.shape)  # pooled tensors and logits are [B, C]
        differs = (got != expected).nonzero()
        if len(differs):
            image, token, channel = (int(v) for v in differs[0])
            return Divergence(step.name, step.op, image, token, channel,
                              int(expected[image, token, channel]),
                              int(got[image, token, channel]), needed, needed)
    return None


def find_divergence(model: IntModel, folding: Folding, images: torch.Tensor, *,
                    reference: IntModel | None = None, steps: Sequence[str] | None = None,
                    name: str = "binaryvit_debug") -> Divergence | None:
    """Build ``model`` with taps on ``steps`` (default all), run ``images`` in Verilator, and
    compare with ``reference`` (default ``model`` itself: the RTL against its own integer
    program). Returns the first divergence or None."""
    taps = list(steps) if steps is not None else tappable_steps(model)
    network = plan_network(model, folding)
    built = build_network_sim(to_verilog(BinaryViTAccelerator(network, taps=taps), name), name)
    words = pixel_words(images, model.steps[0].params["size"], network.tensors["input"].width,
                        network.input_lanes)
    logits = network.tensors[network.logits]
    run = run_network(built, words,
                      logits.channels // network.produced_lanes[network.logits],
                      taps=range(len(taps)))
    tap_words = {step: run.taps[k] for k, step in enumerate(taps)}
    return compare_taps(reference or model, torch.as_tensor(images), network, tap_words)
