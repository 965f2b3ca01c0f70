"""Word-level timing of the generated accelerator: the cycle on which every stream word moves.

FIFO depths for throughput (``hw/network/fifo_sizing.py``) need to know how many words wait on
each edge while the network runs at its bottleneck's pace. This module computes that
without a simulator. Every kernel has a *timing model*: given the cycle each input word
becomes available (``ready``, an int array per port), the cycle it takes each input word
and the cycle each output word becomes valid, provided its output is never back-pressured.
Each model restates its kernel's documented timing and is checked cycle for cycle against
Amaranth's simulator of that kernel (``tests/hw/network/test_network_timing.py``).

Edges are modelled as built by ``BinaryViTAccelerator.elaborate``: an optional FIFO of
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

Times are numpy int64 arrays over all simulated images, stream order. ``NEVER`` stands for
"no lower bound".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from binaryvit.errors import ConfigError
from binaryvit.hw.kernels.affine import AffineUnit
from binaryvit.hw.kernels.binary_attention import BinaryAttention
from binaryvit.hw.kernels.channel_group_avgpool import ChannelGroupAvgPool
from binaryvit.hw.kernels.channel_tile import ChannelTile
from binaryvit.hw.kernels.global_avgpool import GlobalAvgPool
from binaryvit.hw.kernels.mac import FixedMAC
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.kernels.patch_unfold import PatchUnfold
from binaryvit.hw.kernels.residual_add import PositionEmbeddingAdd, ResidualAdd
from binaryvit.hw.kernels.rprelu import RPReLUUnit
from binaryvit.hw.kernels.spatial_avgpool import SpatialAvgPool
from binaryvit.hw.kernels.strip_avgpool import StripAvgPool
from binaryvit.hw.kernels.threshold import ThresholdUnit
from binaryvit.hw.kernels.token_buffer import TokenBuffer

if TYPE_CHECKING:
    from binaryvit.hw.network.accelerator import BinaryViTAccelerator

__all__ = ["NEVER", "FIFO_LATENCY", "chain", "kernel_timing", "fifo_need", "EdgePath",
           "NetworkSchedule", "network_schedule"]

NEVER = -(1 << 40)
# StreamFIFO (SyncFIFOBuffered): a word written on cycle w is valid at the output on w + 2.
FIFO_LATENCY = 2

Times = np.ndarray


def chain(ready: Times, start: int = NEVER) -> Times:
    """Transfer cycles of a port that takes one word per cycle as soon as it is ready:
    ``c[k] = max(ready[k], c[k−1] + 1)``, ``c[0] ≥ start``."""
    k = np.arange(len(ready), dtype=np.int64)
    return k + np.maximum(np.maximum.accumulate(ready - k), start)


# -- kernel models ----------------------------------------------------------------------------
# Each takes the component and {port: ready cycles} and returns ({port: take cycles}, output
# valid cycles). ``ready`` covers whole images.

def _pointwise(unit, ready: dict[str, Times], emits: Callable[[int], np.ndarray] | None = None):
    """One word per cycle on all ports together, output ``latency`` cycles after the input
    (only on the input words ``emits`` selects)."""
    take = chain(np.maximum.reduce(list(ready.values())))
    out = take if emits is None else take[emits(len(take))]
    return {port: take for port in ready}, out + unit.latency


def _spatial_pool(unit: SpatialAvgPool, ready):
    def emits(n):
        token = np.arange(n) // unit.words_per_token % (unit.height * unit.width)
        row, column = np.divmod(token, unit.width)
        return (row % unit.factor == unit.factor - 1) & (column % unit.factor == unit.factor - 1)
    return _pointwise(unit, ready, emits)


def _global_pool(unit: GlobalAvgPool, ready):
    return _pointwise(unit, ready, lambda n: np.arange(n) // unit.words_per_token % unit.tokens
                      == unit.tokens - 1)


def _group_pool(unit: ChannelGroupAvgPool, ready):
    every = unit.words_per_output
    return _pointwise(unit, ready, lambda n: np.arange(n) % every == every - 1)


def _mac(unit: FixedMAC, ready):
    """Group 0 of a vector is computed as its words arrive; the other groups re-read the
    buffered vector, ``K/simd`` cycles each, with the input stalled."""
    ready = ready["i"]
    words, groups = unit.in_words, unit.groups
    take = np.empty_like(ready)
    out = np.empty(len(ready) // words * groups, dtype=np.int64)
    t = NEVER
    for v in range(len(ready) // words):
        for j in range(v * words, (v + 1) * words):
            t = max(int(ready[j]), t)
            take[j] = t
            t += 1
        out[v * groups:(v + 1) * groups] = t - 1 + unit.latency + words * np.arange(groups)
        t += words * (groups - 1)
    return {"i": take}, out


def _mvu(unit: XnorPopcountMVU, ready):
    """Double-buffered input: vector ``v`` is written while ``v − 1`` computes; a half is
    free again the cycle after its last compute step."""
    ready = ready["i"]
    sf, nf = unit.synapse_folds, unit.neuron_folds
    tail = 2 + unit.popcount_stages  # last step of a fold → its output word
    take = np.empty_like(ready)
    out = np.empty(len(ready) // sf * nf, dtype=np.int64)
    folds = sf * np.arange(1, nf + 1) - 1 + tail
    t, done_before, done_last = NEVER, NEVER, NEVER  # compute ends of vectors v−2, v−1
    for v in range(len(ready) // sf):
        t = max(t, done_before + 1)
        for j in range(v * sf, (v + 1) * sf):
            t = max(int(ready[j]), t)
            take[j] = t
            t += 1
        start = max(t, done_last + 1)
        out[v * nf:(v + 1) * nf] = start + folds
        done_before, done_last = done_last, start + nf * sf - 1
    return {"i": take}, out


def _tile(unit: ChannelTile, ready):
    """The first copy of a token passes through; the other copies replay with the input
    stalled."""
    ready = ready["i"]
    words, copies = unit.words, unit.copies
    take = np.empty_like(ready)
    out = np.empty(len(ready) * copies, dtype=np.int64)
    replay = np.arange(1, (copies - 1) * words + 1)
    t = NEVER
    for token in range(len(ready) // words):
        base = token * words * copies
        for j in range(words):
            t = max(int(ready[token * words + j]), t)
            take[token * words + j] = t
            out[base + j] = t + 1
            t += 1
        out[base + words:base + words * copies] = t + replay
        t += (copies - 1) * words
    return {"i": take}, out


def _strip_pool(unit: StripAvgPool, ready):
    """One step per cycle, each taking an input word and emitting the output word ``lag``
    words back (2 cycles later), once the delay line leads the output by ``q`` units. At
    an image boundary with no input waiting, the kernel flushes the image's remaining output
    units itself (a unit of zero steps at a time); the next image's first ``q`` units then
    emit nothing."""
    ready = ready["i"]
    q, words = unit.reach, unit.unit_words
    units = unit.height * unit.width * unit.words_per_token // words  # per image
    take = np.empty_like(ready)
    out = []
    t, lead, taken, in_unit, out_unit = NEVER, 0, 0, 0, 0
    while taken < len(ready) or out_unit % units:
        emits = lead == q
        flush = bool(q) and emits and in_unit == 0 and (taken == len(ready)
                                                          or int(ready[taken]) > t)
        for _ in range(words):  # one unit: a step a cycle, an input step once its word is in
            if not flush:
                t = max(t, int(ready[taken]))
                take[taken] = t
                taken += 1
            if emits:
                out.append(t + 2)
            t += 1
        if not flush:
            in_unit = (in_unit + 1) % units
        if emits:
            out_unit += 1
            if out_unit % units == 0:  # the image's last output unit
                lead = 0 if flush else in_unit
        elif not flush:
            lead += 1
        if not q:
            lead = 0
    return {"i": take}, np.array(out, dtype=np.int64)


def _token_buffer(unit: TokenBuffer, ready):
    """Two banks: an image loads into the free bank while the other replays; a replay starts
    once its image is loaded and the previous replay is issued, and frees its bank."""
    ready = ready["i"]
    n_in = unit.input_words_per_image
    n_out = n_in * unit.factor ** 2
    take = np.empty_like(ready)
    out = np.empty(len(ready) // n_in * n_out, dtype=np.int64)
    loaded = NEVER  # last load cycle of the previous image
    replayed = [NEVER, NEVER]  # last replay issue of images n−2 and n−1
    for image in range(len(ready) // n_in):
        words = chain(ready[image * n_in:(image + 1) * n_in],
                      max(loaded + 1, replayed[0] + 1))
        take[image * n_in:(image + 1) * n_in] = words
        loaded = int(words[-1])
        start = max(loaded + 1, replayed[1] + 1)
        out[image * n_out:(image + 1) * n_out] = start + 1 + np.arange(n_out)
        replayed = [replayed[1], start + n_out - 1]
    return {"i": take}, out


def _patch_unfold(unit: PatchUnfold, ready):
    """Load register and shift register: an image moves to the shift register once loaded
    and the previous one has left (or is leaving), then shifts out a word per cycle."""
    ready = ready["i"]
    n_in, n_out = unit.bits // unit.in_simd, unit.bits // unit.out_simd
    take = np.empty_like(ready)
    out = np.empty(len(ready) // n_in * n_out, dtype=np.int64)
    moved = NEVER
    for image in range(len(ready) // n_in):
        loaded = chain(ready[image * n_in:(image + 1) * n_in], moved + 1)
        take[image * n_in:(image + 1) * n_in] = loaded
        moved = max(int(loaded[-1]) + 1, moved + n_out)
        out[image * n_out:(image + 1) * n_out] = moved + 1 + np.arange(n_out)
    return {"i": take}, out


def _attention(unit: BinaryAttention, ready):
    """Two image slots: an image's keys and values load (each port a word a cycle) into the
    slot its image before last has freed, once the previous image's load is complete; its
    queries are taken once it is loaded. Per query and head, stage A scores in ``Tk/P``
    cycles and hands over on its last block once B is free; B needs ``Tk/P`` cycles and the
    output register; the context leaves ``d/lanes`` words a cycle apart; the next query is
    taken when its predecessor's last head is handed over."""
    tk, tq, heads = unit.key_tokens, unit.query_tokens, unit.heads
    blocks = unit.blocks_per_head
    words = unit.head_dim // unit.lanes
    takes = {port: np.empty_like(ready[port]) for port in ("q", "k", "v")}
    out = []
    loaded = NEVER  # the previous image's load completes
    released = [NEVER, NEVER]  # B's last final step of images n−2 and n−1
    finished, query = NEVER, NEVER  # B's last final step; the next query may be taken
    for image in range(len(ready["q"]) // tq):
        start = max(loaded + 1, released[0] + 1)
        for port in ("k", "v"):
            takes[port][image * tk:(image + 1) * tk] = chain(
                ready[port][image * tk:(image + 1) * tk], start)
        loaded = max(int(takes["k"][(image + 1) * tk - 1]), int(takes["v"][(image + 1) * tk - 1]))
        query = max(query, loaded + 1)
        for i in range(tq):
            query = max(int(ready["q"][image * tq + i]), query)
            takes["q"][image * tq + i] = query
            scoring = query + 1
            for _ in range(heads):
                handoff = max(scoring + blocks - 1, finished)
                finished = max(handoff + blocks, finished + words)
                out.append(finished + 1 + np.arange(words))
                scoring = handoff + 1
            query = handoff
        released = [released[1], finished]
    return takes, np.concatenate(out)


_MODELS = [
    (AffineUnit, _pointwise), (RPReLUUnit, _pointwise), (ThresholdUnit, _pointwise),
    (ResidualAdd, _pointwise), (PositionEmbeddingAdd, _pointwise),
    (ChannelGroupAvgPool, _group_pool), (SpatialAvgPool, _spatial_pool),
    (GlobalAvgPool, _global_pool), (FixedMAC, _mac), (XnorPopcountMVU, _mvu),
    (ChannelTile, _tile), (StripAvgPool, _strip_pool), (TokenBuffer, _token_buffer),
    (PatchUnfold, _patch_unfold), (BinaryAttention, _attention),
]


def kernel_timing(unit, ready: dict[str, Times]) -> tuple[dict[str, Times], Times]:
    """``({port: take cycles}, output valid cycles)`` of kernel ``unit`` when each input word
    is available from ``ready[port][k]`` (and not before the port took word ``k − 1``) and
    its output is never back-pressured."""
    for kind, model in _MODELS:
        if isinstance(unit, kind):
            return model(unit, {port: np.asarray(r, dtype=np.int64) for port, r in ready.items()})
    raise ConfigError(f"no timing model for kernel {type(unit).__name__}")


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


def network_schedule(network: "BinaryViTAccelerator", period: int,
                     paths: list[EdgePath]) -> NetworkSchedule:
    """Run the timing models of the whole network, one image entering every ``period``
    cycles, until every stream repeats with that period (at most ``MAX_IMAGES`` images).

    ``paths`` (one per ``network.edges`` entry, FIFOs already placed where the caller wants
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


def _run(network, period: int, paths: list[EdgePath], images: int) -> dict[str, Times]:
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
            taken, out = kernel_timing(node.component, ready)
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
