"""Word-level timing of the generated accelerator: the cycle on which every stream word moves.

FIFO depths for throughput (``hw/network/fifo_sizing.py``) need to know how many words wait on
each edge while the network runs at its bottleneck's pace. This module computes that
without a simulator. Every kernel has a *timing model* (its op's ``OpSpec.timing``,
``binaryvit.hw.ops``): given the cycle each input word becomes available (``ready``, an
int array per port), the cycle it takes each input word and the cycle each output word
becomes valid, provided its output is never back-pressured. Each model restates its
kernel's documented timing and is checked cycle for cycle against Amaranth's simulator of
that kernel (``tests/hw/network/test_network_timing.py``).

Edges are modelled as the top (``BinaryViTAccelerator.elaborate``) builds them: an optional FIFO of
producer words, an optional width converter (a splitter, a gatherer or both), an optional
FIFO of consumer words (``EdgePath``). A FIFO is taken as unbounded; its latency and its
one-word output register are modelled exactly (``amaranth.lib.fifo.SyncFIFOBuffered``), and
afterwards the depth it needed is read off (``fifo_need``). A plain wire (no FIFO behind
it) must never make its producer wait, since kernels stall globally while their output is
held; ``EdgePath.waits`` reports where that happens, so the caller can add a FIFO there.

``network_schedule`` runs the whole network in topological order with images entering
every ``period`` cycles (the paced source; ``hw/network/fifo_sizing.py`` explains why the real,
unpaced source is never slower) until every stream is periodic, and gives every edge's
needed FIFO depth.

Times are numpy int64 arrays over all simulated images, stream order
(``binaryvit.hw.ops.word_timing``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from binaryvit.errors import ConfigError
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.ops.registry import spec_of
from binaryvit.hw.ops.word_timing import FIFO_LATENCY, NEVER, Times, chain

__all__ = ["fifo_need", "EdgePath", "chain_every", "NetworkSchedule", "network_schedule"]


# -- edges ------------------------------------------------------------------------------------

def fifo_need(written: Times, taken: Times) -> int:
    """Smallest ``StreamFIFO`` depth that accepts every word on the cycle it is offered
    (``written``), given the cycles its reader takes them (``taken``).

    SyncFIFOBuffered moves word ``i`` from its memory to the output register on
    ``r_i = max(w_i + 1, taken_{i−1})`` and refuses a write while its memory holds
    ``depth − 1`` words.
    """
    if len(written) == 0:
        return 0
    previous = np.concatenate([[NEVER], taken[:-1]])
    moved = np.maximum(written + 1, previous)
    held = np.arange(len(written)) - np.searchsorted(moved, written, side="left")
    return int(held.max()) + 2


@dataclass
class EdgePath:
    """One edge as built: ``[FIFO of producer words] → [converter] → [FIFO of consumer
    words]``, producer words of ``in_lanes`` elements, consumer words of ``out_lanes``.

    ``input_fifo`` / ``output_fifo`` say which FIFOs exist. After ``ready(emitted)`` and
    ``settle(taken)``: ``waits`` (a plain wire made its producer wait), ``input_need`` /
    ``output_need`` (the depth each FIFO needed).
    """

    in_lanes: int
    out_lanes: int
    input_fifo: bool = False
    output_fifo: bool = False
    waits: bool = False
    input_need: int = 0
    output_need: int = 0
    _emitted: Times = field(default=None, repr=False)
    _loads: Times = field(default=None, repr=False)
    _gathered: Times = field(default=None, repr=False)

    @property
    def split(self) -> int:
        return self.in_lanes // math.gcd(self.in_lanes, self.out_lanes)

    @property
    def gather(self) -> int:
        return self.out_lanes // math.gcd(self.in_lanes, self.out_lanes)

    def ready(self, emitted: Times) -> Times:
        """Cycles from which the consumer may take each of its words, from the cycles the
        producer offers its words (no back-pressure on them)."""
        self._emitted = emitted
        split, gather = self.split, self.gather
        if split > 1 and gather == 1:
            # Piece 0 of word k: one cycle after the splitter loads it; later pieces follow
            # the consumer one per cycle (the consumer's own chaining).
            ready = np.full(len(emitted) * split, NEVER, dtype=np.int64)
            ready[::split] = emitted + (FIFO_LATENCY + 1 if self.input_fifo else 1)
            return ready
        offered = emitted
        if split > 1:  # split then gather; the gatherer is never held (FIFO behind it)
            if self.input_fifo:
                offered = emitted + FIFO_LATENCY
            self._loads = chain_every(offered, split)
            offered = (self._loads[:, None] + 1 + np.arange(split)).reshape(-1)
        if gather > 1:
            gathered = offered[gather - 1::gather] + 1
            self._gathered = gathered
            offered = gathered
        return offered + (FIFO_LATENCY if self.output_fifo else 0)

    def settle(self, taken: Times) -> None:
        """Given the cycles the consumer took its words: where the edge made its producer
        wait, and the FIFO depths it needed."""
        emitted, split, gather = self._emitted, self.split, self.gather
        self.waits, self.input_need, self.output_need = False, 0, 0
        if split > 1 and gather == 1:
            last_piece = np.concatenate([[NEVER], taken[split - 1::split][:-1]])
            if self.input_fifo:
                loads = chain(np.maximum(emitted + FIFO_LATENCY, last_piece))
                self.input_need = fifo_need(emitted, loads)
            else:
                self.waits = bool(np.any(last_piece > emitted))
            return
        pieces = emitted
        if split > 1:
            if self.input_fifo:
                self.input_need = fifo_need(emitted, self._loads)
            else:
                self.waits = bool(np.any(self._loads > emitted))
            pieces = (self._loads[:, None] + 1 + np.arange(split)).reshape(-1)
        words = self._gathered if gather > 1 else pieces
        if self.output_fifo:
            self.output_need = fifo_need(words, taken)
        elif gather > 1:  # a full gatherer takes the next piece only as its word leaves
            self.waits = self.waits or bool(np.any(pieces[gather::gather] < taken[:-1]))
        else:
            self.waits = self.waits or bool(np.any(taken > words))

    def add_fifo(self) -> None:
        """Buffer the side that made the producer wait: before a splitter whose input
        waited, else after the converter (a plain edge's only FIFO)."""
        if self.split > 1 and (self.gather == 1 or not self.input_fifo and self._loads is not None
                               and bool(np.any(self._loads > self._emitted))):
            self.input_fifo = True
        else:
            self.output_fifo = True


def chain_every(offered: Times, every: int) -> Times:
    """``l[k] = max(offered[k], l[k−1] + every)``: a splitter loading a word when the
    previous one's ``every`` pieces have gone, one per cycle."""
    k = np.arange(len(offered), dtype=np.int64) * every
    return k + np.maximum.accumulate(offered - k)


# -- the whole network ------------------------------------------------------------------------

MAX_IMAGES = 64


@dataclass
class NetworkSchedule:
    """What ``network_schedule`` found.

    period : cycles between images at the source (the pace every stream settled to).
    images : images simulated (until every stream repeated with that period).
    emitted : tensor → cycles its words became valid (the source: cycles offered).
    paths : one ``EdgePath`` per ``network.edges`` entry, with its FIFOs and needs.
    """

    period: int
    images: int
    emitted: dict[str, Times]
    paths: list[EdgePath]

    def latency(self, tensor: str) -> int:
        """Cycles from the first image's first source word to the first image's last word
        of ``tensor``."""
        words = len(self.emitted[tensor]) // self.images
        return int(self.emitted[tensor][words - 1])


def network_schedule(network: NetworkPlan, period: int,
                     paths: list[EdgePath]) -> NetworkSchedule:
    """Run the timing models of the whole network, one image entering every ``period``
    cycles, until every stream repeats with that period (at most ``MAX_IMAGES`` images).

    ``network`` is a plan (its FIFO depths not yet needed); ``paths`` (one per
    ``network.edges`` entry, FIFOs already placed where the caller wants
    them) gain a FIFO wherever a plain wire would make its producer wait, and record the
    depth each FIFO needed (``EdgePath.input_need``, ``output_need``). ConfigError when the
    streams do not settle: some kernel needs more than ``period`` cycles per image.
    """
    images = 8
    while True:
        emitted = _run(network, period, paths, images)
        late = _unsettled(emitted, period, images)
        if late is None:
            return NetworkSchedule(period, images, emitted, paths)
        if images >= MAX_IMAGES:
            raise ConfigError(f"timing model: the stream of {late!r} does not settle to one "
                              f"image every {period} cycles within {images} images (a kernel "
                              f"on its path needs more cycles per image than the cost model "
                              f"gives it)")
        images *= 2


def _run(network: NetworkPlan, period: int, paths: list[EdgePath], images: int) -> dict[str, Times]:
    source = network.model.steps[0].name
    info = network.tensors[source]
    per_image = info.tokens * info.channels // network.produced_lanes[source]
    emitted = {source: np.repeat(np.arange(images, dtype=np.int64) * period, per_image)}
    by_consumer: dict[str | None, list[int]] = {}
    for index, edge in enumerate(network.edges):
        by_consumer.setdefault(edge.consumer, []).append(index)
    for name, node in network.nodes.items():
        ports = {network.edges[i].port: i for i in by_consumer[name]}
        while True:
            ready = {port: paths[i].ready(emitted[network.edges[i].tensor])
                     for port, i in ports.items()}
            taken, out = spec_of(node.op).timing(node.component, ready)
            waiting = []
            for port, i in ports.items():
                paths[i].settle(taken[port])
                if paths[i].waits and network.edges[i].tensor != source:
                    waiting.append(i)
            if not waiting:
                break
            for i in waiting:
                paths[i].add_fifo()
        emitted[name] = out
    for i in by_consumer.get(None, []):  # the top's output: always ready
        paths[i].settle(paths[i].ready(emitted[network.edges[i].tensor]))
    return emitted


def _unsettled(emitted: dict[str, Times], period: int, images: int) -> str | None:
    """The first tensor whose images before the last are not ``period`` apart, or None.
    (The last image is left out: no input follows it, and a kernel may finish a stream's
    last image otherwise than one with a successor, e.g. flush a tail the next image
    would carry.)"""
    for tensor, times in emitted.items():
        words = len(times) // images
        per_image = times[:words * images].reshape(images, words)
        steps = np.diff(per_image[-4:-1], axis=0)
        if not np.all(steps == period):
            return tensor
    return None
