"""The timing models of ``hw/network/timing.py`` against Amaranth's simulator, cycle for cycle.

Each kernel gets input words that become available on random cycles (bursts, gaps, and
all at once), its output is always ready; the simulator records the cycle each input word
is taken and each output word is valid, and the model must give exactly the same cycles.
The FIFO depth rule is checked the same way: the depth ``fifo_need`` gives never refuses a
word, one word less does.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from binaryvit.golden import intref
from binaryvit.hw.kernels.affine import AffineUnit
from binaryvit.hw.kernels.binary_attention import BinaryAttention
from binaryvit.hw.kernels.channel_group_avgpool import ChannelGroupAvgPool
from binaryvit.hw.kernels.channel_tile import ChannelTile
from binaryvit.hw.kernels.global_avgpool import GlobalAvgPool
from binaryvit.hw.kernels.mac import ClassifierUnit, StemUnit
from binaryvit.hw.kernels.mvu import XnorPopcountMVU
from binaryvit.hw.kernels.patch_unfold import PatchUnfold
from binaryvit.hw.kernels.residual_add import PositionEmbeddingAdd, ResidualAdd
from binaryvit.hw.kernels.rprelu import RPReLUUnit
from binaryvit.hw.kernels.spatial_avgpool import SpatialAvgPool
from binaryvit.hw.kernels.strip_avgpool import StripAvgPool
from binaryvit.hw.kernels.threshold import ThresholdUnit
from binaryvit.hw.kernels.token_buffer import NearestUpsample
from binaryvit.hw.network.timing import EdgePath, fifo_need
from binaryvit.hw.ops.registry import kernel_timing
from binaryvit.hw.ops.word_timing import chain
from binaryvit.hw.streams.stream_edge import StreamEdge
from binaryvit.hw.streams.stream_fifo import StreamFIFO
from binaryvit.hw.streams.stream_width import element_layout

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def measure(dut, words: dict[str, int], ready: dict[str, list[int]], outputs: dict[str, int],
            *, seed: int = 0, out_ready: dict[str, list[int]] | None = None):
    """Drive ``words[port]`` random words on each input, word ``k`` offered from cycle
    ``ready[port][k]`` (and after word ``k − 1`` went); outputs ready on every cycle (or on
    the cycles ``out_ready`` lists). Returns ({port: take cycles}, {port: valid cycles})."""
    rng = random.Random(seed)
    taken = {port: [] for port in words}
    valid = {port: [] for port in outputs}
    flats = {port: Value.cast(getattr(dut, port).payload).as_unsigned() for port in words}
    data = {port: [rng.getrandbits(len(flats[port])) for _ in range(n)]
            for port, n in words.items()}
    limit = max(max(r) for r in ready.values()) + 40 * sum(outputs.values()) + 200

    async def bench(ctx):
        for cycle in range(limit):
            for port in outputs:
                ok = out_ready is None or cycle in out_ready[port]
                ctx.set(getattr(dut, port).ready, ok)
            for port in words:
                k = len(taken[port])
                offer = k < words[port] and ready[port][k] <= cycle
                ctx.set(getattr(dut, port).valid, offer)
                if offer:
                    ctx.set(flats[port], data[port][k])
            signals = [getattr(dut, p).ready for p in words] + \
                      [s for p in outputs for s in (getattr(dut, p).valid, getattr(dut, p).ready)]
            sampled = (await ctx.tick().sample(*signals))[2:]
            for port, ok in zip(words, sampled):
                if ok and len(taken[port]) < words[port] and ready[port][len(taken[port])] <= cycle:
                    taken[port].append(cycle)
            pairs = sampled[len(words):]
            for index, port in enumerate(outputs):
                if pairs[2 * index] and pairs[2 * index + 1]:
                    valid[port].append(cycle)
            if all(len(valid[p]) >= n for p, n in outputs.items()):
                return
        raise AssertionError(f"no completion in {limit} cycles: {[len(v) for v in valid.values()]}")

    top = Module()  # a clock domain even for a plain wire
    top.submodules.dut = dut
    top.domains.sync = ClockDomain()
    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return taken, valid


def availability(count: int, pattern: str, seed: int) -> list[int]:
    """Cycles from which each of ``count`` words is available."""
    rng = random.Random(seed)
    if pattern == "at_once":
        return [0] * count
    if pattern == "steady":
        return [3 * k + 1 for k in range(count)]
    times, t = [], 0
    for _ in range(count):  # bursts and gaps
        t += rng.choice([0, 0, 0, 1, 1, 2, 5, 9])
        times.append(t)
    return times


PATTERNS = ["at_once", "steady", "bursts"]


def check(dut, words, outputs, pattern, seed=0, port_patterns=None):
    ready = {port: availability(n, (port_patterns or {}).get(port, pattern), seed + i)
             for i, (port, n) in enumerate(words.items())}
    taken, valid = measure(dut, words, ready, {"o": outputs}, seed=seed)
    model_taken, model_out = kernel_timing(dut, {p: np.array(r) for p, r in ready.items()})
    for port in words:
        assert model_taken[port].tolist() == taken[port], port
    assert model_out.tolist() == valid["o"]


def fixed(gen, shape, lo=-20, hi=20):
    return torch.randint(lo, hi, shape, generator=gen)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pointwise_kernels(pattern):
    g = torch.Generator().manual_seed(1)
    c, lanes = 8, 2
    words = 3 * c // lanes
    kernels = [
        AffineUnit(channels=c, lanes=lanes, in_width=8, mul=fixed(g, (c,)), bias=fixed(g, (c,)),
                   shift=2, out_width=8),
        RPReLUUnit(channels=c, lanes=lanes, in_width=8, pre_bias=fixed(g, (c,)),
                   mul_pos=fixed(g, (c,)), mul_neg=fixed(g, (c,)), post_bias=fixed(g, (c,)),
                   shift=2, out_width=8),
        ThresholdUnit(channels=c, lanes=lanes, in_width=8, thresh=fixed(g, (c,))),
        PositionEmbeddingAdd(embedding=fixed(g, (3, c)), lanes=lanes, in_width=8, out_width=8),
    ]
    for dut in kernels:
        check(dut, {"i": words}, words, pattern)
    # a join takes both words together: one input early, the other late
    add = ResidualAdd(channels=c, lanes=lanes, in_width=8, out_width=8)
    check(add, {"i": words, "residual": words}, words, pattern,
          port_patterns={"residual": "bursts"})


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("lanes", [1, 4])
def test_pools(pattern, lanes):
    tokens = 2 * 16  # two images of a 4×4 grid, 4 channels
    words = tokens * 4 // lanes
    spatial = SpatialAvgPool(height=4, width=4, channels=4, lanes=lanes, factor=2, in_width=6,
                             out_width=6, mul=1, shift=2)
    check(spatial, {"i": words}, 2 * 4 * 4 // lanes, pattern)
    total = GlobalAvgPool(tokens=16, channels=4, lanes=lanes, in_width=6, out_width=8, mul=1,
                          shift=4)
    check(total, {"i": words}, 2 * 4 // lanes, pattern)
    group = ChannelGroupAvgPool(channels=8, group=2, lanes=lanes, in_width=6, out_width=6,
                                mul=1, shift=1)
    check(group, {"i": 3 * 8 // lanes}, 3 * 4 // max(lanes // 2, 1), pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("h,w,kh,kw,lanes", [
    (4, 5, 1, 3, 2), (4, 5, 5, 1, 1), (4, 5, 3, 1, 2), (4, 5, 1, 5, 1),
    (2, 3, 5, 1, 2), (3, 2, 1, 5, 1), (1, 4, 3, 1, 2)])  # reach clipped; one row: no lag
def test_strip_pool(pattern, h, w, kh, kw, lanes):
    dut = StripAvgPool(height=h, width=w, channels=2, lanes=lanes, kernel_h=kh, kernel_w=kw,
                       in_width=6, out_width=9, mul=1, shift=0)
    words = 3 * h * w * 2 // lanes
    check(dut, {"i": words}, words, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("simd,pe", [(1, 1), (2, 3), (4, 1), (1, 6)])
def test_fixed_mac(pattern, simd, pe):
    g = torch.Generator().manual_seed(simd * 10 + pe)
    dut = ClassifierUnit(weights=fixed(g, (6, 4)), bias=fixed(g, (6,)), shift=2, out_width=10,
                         in_width=6, simd=simd, pe=pe)
    check(dut, {"i": 3 * 4 // simd}, 3 * 6 // pe, pattern)
    stem = StemUnit(weights=fixed(g, (4, 1)), bias=fixed(g, (4,)), shift=1, out_width=8, pe=1)
    check(stem, {"i": 5}, 5 * 4, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("k,n,pe,simd", [(8, 4, 1, 2), (8, 4, 4, 8), (8, 4, 2, 1), (6, 2, 1, 6)])
def test_mvu(pattern, k, n, pe, simd):
    g = torch.Generator().manual_seed(k + n + pe + simd)
    weights = torch.randint(0, 2, (n, k), generator=g).bool()
    dut = XnorPopcountMVU(k, n, pe, simd, weights)
    vectors = 5
    check(dut, {"i": vectors * k // simd}, vectors * n // pe, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("lanes,copies", [(2, 3), (4, 2), (1, 4)])
def test_channel_tile(pattern, lanes, copies):
    dut = ChannelTile(channels=4, lanes=lanes, width=5, copies=copies)
    words = 3 * 4 // lanes
    check(dut, {"i": words}, words * copies, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_upsample_and_patch_unfold(pattern):
    up = NearestUpsample(height=2, width=2, channels=4, lanes=2, data_width=5, factor=2)
    check(up, {"i": 3 * 4 * 2}, 3 * 16 * 2, pattern)
    unfold = PatchUnfold(height=4, width=4, channels=2, size=2, in_simd=2, out_simd=4)
    check(unfold, {"i": 3 * 16}, 3 * 32 // 4, pattern)
    wide = PatchUnfold(height=2, width=2, channels=2, size=2, in_simd=1, out_simd=8)
    check(wide, {"i": 3 * 8}, 3, pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("config", [
    dict(heads=2, head_dim=4, query_tokens=5, key_tokens=4, keys_per_cycle=2, lanes=2),
    dict(heads=1, head_dim=8, query_tokens=3, key_tokens=2, keys_per_cycle=1, lanes=1),
    dict(heads=3, head_dim=2, query_tokens=2, key_tokens=6, keys_per_cycle=3, lanes=2)])
def test_attention(pattern, config):
    d = config["head_dim"]
    dut = BinaryAttention(lut=intref.exp_lut(d, 8, 9).tolist(), theta=16, theta_shift=8,
                          **config)
    images = 3
    words = {"q": images * config["query_tokens"], "k": images * config["key_tokens"],
             "v": images * config["key_tokens"]}
    check(dut, words, images * config["query_tokens"] * config["heads"] * d // config["lanes"],
          pattern, port_patterns={"v": "bursts"})


def test_chain_by_hand():
    assert chain(np.array([0, 0, 5, 5, 6])).tolist() == [0, 1, 5, 6, 7]
    assert chain(np.array([0, 0, 5]), start=3).tolist() == [3, 4, 5]


def test_fifo_need_by_hand():
    # Four words written on cycles 0…3, read from cycle 10: word 0 moves to the output
    # register on cycle 1, so words 1 and 2 sit in the memory when word 3 arrives; the
    # memory must have room for a third: depth 4 (memory 3 + output register).
    assert fifo_need(np.array([0, 1, 2, 3]), np.array([10, 11, 12, 13])) == 4
    # A reader that takes each word as soon as it is valid (2 cycles after the write).
    assert fifo_need(np.array([0, 5, 10]), np.array([2, 7, 12])) == 2


def test_splitter_edge_by_hand():
    # Four 2-lane words in a burst (cycles 0…3) through a FIFO into a 2→1 splitter, the
    # consumer taking a piece every cycle: first pieces are ready 3 cycles after their
    # word (FIFO 2, splitter 1), the consumer takes pieces on cycles 3…10; the splitter
    # loads on 2, 4, 6, 8, so words 1…3 queue: the FIFO needs depth 3.
    path = EdgePath(2, 1, input_fifo=True)
    ready = path.ready(np.array([0, 1, 2, 3]))
    assert ready[::2].tolist() == [3, 4, 5, 6]
    path.settle(chain(ready))
    assert chain(ready).tolist() == list(range(3, 11))
    assert (path.waits, path.input_need, path.output_need) == (False, 3, 0)
    # Without the FIFO the splitter is still busy when words 1…3 are offered: it waits.
    bare = EdgePath(2, 1)
    bare.settle(chain(bare.ready(np.array([0, 1, 2, 3]))))
    assert bare.waits


@pytest.mark.parametrize("seed", range(4))
def test_fifo_need_is_the_exact_depth(seed):
    rng = random.Random(seed)
    count = 60
    written = np.array(availability(count, "bursts", seed))
    written = chain(written)  # a producer offers at most one word per cycle
    reader = sorted(rng.sample(range(int(written[-1]) + 3 * count), 2 * count))
    reads = simulate_fifo_reads(written, reader)
    need = fifo_need(written, np.array(reads))
    assert need >= 2
    refused, real_reads = run_fifo(written, reader, need)
    assert refused == 0 and real_reads == reads
    if need > 2:
        assert run_fifo(written, reader, need - 1)[0] > 0


def simulate_fifo_reads(written, reader_cycles):
    """Read cycles of an unbounded SyncFIFOBuffered: word i is valid from
    max(w_i + 2, read_{i−1} + 1); the reader is ready on ``reader_cycles``."""
    reads, ready = [], set(reader_cycles)
    t = 0
    for w in written:
        t = max(int(w) + 2, t)
        while t not in ready:
            t += 1
        reads.append(t)
        t += 1
    return reads


def run_fifo(written, reader_cycles, depth):
    """(words the real StreamFIFO of ``depth`` refuses when offered on ``written``, its
    read cycles)."""
    dut = StreamFIFO(element_layout("binary", 1, 1), depth)
    refused, reads = [], []
    ready = set(reader_cycles)
    offers = set(int(w) for w in written)

    async def bench(ctx):
        for cycle in range(max(reader_cycles) + 1):
            ctx.set(dut.i.valid, cycle in offers)
            ctx.set(dut.o.ready, cycle in ready)
            _, _, i_ready, o_valid = await ctx.tick().sample(dut.i.ready, dut.o.valid)
            if cycle in offers and not i_ready:
                refused.append(cycle)
            if cycle in ready and o_valid:
                reads.append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return len(refused), reads


EDGES = [  # producer lanes, consumer lanes, FIFO before / after the converter
    (2, 2, False, False), (2, 2, False, True), (4, 1, True, False), (4, 1, False, False),
    (1, 4, False, True), (1, 4, False, False), (4, 6, False, True), (4, 6, True, True)]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("a,b,before,after", EDGES)
def test_edge_path_against_stream_edge(a, b, before, after, seed):
    """The consumer words' ready cycles, the waits and the FIFO needs of ``EdgePath`` are
    those of the built ``StreamEdge``: with the needed depths the producer is never held
    (unless the path says it waits), one word less in a FIFO holds it."""
    rng = random.Random(seed)
    channels, images = 12, 4
    emitted = chain(np.array(availability(images * channels // a, "bursts", seed)))
    path = EdgePath(a, b, input_fifo=before, output_fifo=after)
    ready = path.ready(emitted)
    last = int(ready.max()) + 4 * len(ready)
    consumer = sorted(rng.sample(range(last), len(ready) * 3 // 2)) + list(range(last, last + 4 * len(ready)))
    taken, t = [], NEVER_CYCLE
    allowed = set(consumer)
    for r in ready.tolist():
        t = max(r, t + 1)
        while t not in allowed:
            t += 1
        taken.append(t)
    path.settle(np.array(taken))

    def run(input_depth, output_depth):
        dut = StreamEdge(kind="fixed", width=5, channels=channels, in_lanes=a, out_lanes=b,
                         input_depth=input_depth, output_depth=output_depth)
        got_in, got_out = measure(dut, {"i": len(emitted)}, {"i": emitted.tolist()},
                                  {"o": len(ready)}, out_ready={"o": allowed}, seed=seed)
        return got_in["i"], got_out["o"]

    depths = (max(path.input_need, 2) if before else 0, max(path.output_need, 2) if after else 0)
    took, left = run(*depths)
    if path.waits:
        assert took != emitted.tolist()
        return
    assert took == emitted.tolist() and left == taken
    if before and path.input_need > 2:
        assert run(path.input_need - 1, depths[1])[0] != emitted.tolist()
    if after and not before and path.output_need > 2:
        assert run(depths[0], path.output_need - 1)[0] != emitted.tolist()


NEVER_CYCLE = -(1 << 30)
