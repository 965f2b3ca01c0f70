"""The stream-protocol proofs of every kernel: a small instance of each, and its accounting.

Each ``FormalCase`` names one kernel instance (parameters small enough for a quick
proof, every structural branch of the kernel still present: several channel groups,
several lanes, several folds), the ``StreamSpec`` of what is checked on it, and the
SymbiYosys mode and depth. ``prove`` cases are unbounded proofs by k-induction (``depth``
is k); ``bmc`` cases are bounded to ``depth`` cycles and say why in ``note``.

The ``pending`` functions are the kernels' occupancy written from their own registers:
how many words each holds (in the balance's unit, see ``OutputAccount``) and how many
``last`` flags. They are the inductive invariants; a wrong one fails the proof, so they
cannot make a broken kernel pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import Mux, Value
from amaranth.lib import wiring

from binaryvit.sim.formal.stream_properties import (OutputAccount, Probe, StreamProtocolHarness,
                                                    StreamSpec)

__all__ = ["FormalCase", "KERNEL_CASES", "case_by_name"]


@dataclass(frozen=True)
class FormalCase:
    name: str
    build: Callable[[], wiring.Component]
    spec: StreamSpec
    mode: str
    depth: int
    note: str = ""

    def harness(self, build: Callable[[], wiring.Component] | None = None) -> StreamProtocolHarness:
        """The harness around a fresh kernel (or around ``build()``, e.g. a mutant)."""
        return StreamProtocolHarness((build or self.build)(), self.spec)


def _sum(values) -> Value:
    total = 0
    for v in values:
        total = total + v
    return total


def _stages(*names: str):
    """Occupancy of a pipeline of registered stages ``names`` plus the output register."""
    def pending(probe: Probe) -> Value:
        return _sum([probe(n) for n in names] + [probe.kernel.o.valid])
    return pending


def _stage_lasts(*pairs: tuple[str, str]):
    """``last`` flags held by the stages ``(valid, last)`` and the output register."""
    def pending(probe: Probe) -> Value:
        o = probe.kernel.o
        return _sum([probe(v) & probe(l) for v, l in pairs] + [o.valid & o.payload.last])
    return pending


def _pipeline_spec(stages: tuple[str, ...], lasts: tuple[tuple[str, str], ...], **kw) -> StreamSpec:
    return StreamSpec(outputs=(OutputAccount("o", 1, 1, _stages(*stages), len(stages) + 1,
                                             _stage_lasts(*lasts)),), **kw)


# -- kernels --------------------------------------------------------------------------

def _affine():
    from binaryvit.hw.kernels.affine import AffineUnit
    return AffineUnit(channels=4, lanes=2, in_width=4, mul=[1, -2, 3, -1], bias=[0, 1, -2, 3],
                      shift=1, out_width=4)


def _rprelu():
    from binaryvit.hw.kernels.rprelu import RPReLUUnit
    return RPReLUUnit(channels=4, lanes=2, in_width=4, pre_bias=[0, 1, -1, 2],
                      mul_pos=[1, 2, 1, 3], mul_neg=[-1, 1, 2, 1], post_bias=[0, -1, 1, 2],
                      shift=1, out_width=4)


def _threshold():
    from binaryvit.hw.kernels.threshold import ThresholdUnit
    return ThresholdUnit(channels=4, lanes=2, in_width=4, thresh=[0, 1, -2, 3], flip=[0, 1, 0, 1])


def _residual_add():
    from binaryvit.hw.kernels.residual_add import ResidualAdd
    return ResidualAdd(channels=4, lanes=2, in_width=4, out_width=4)


def _position_embedding():
    from binaryvit.hw.kernels.residual_add import PositionEmbeddingAdd
    return PositionEmbeddingAdd(embedding=[[1, -2], [3, 0]], lanes=1, in_width=4, out_width=4)


def _fifo():
    from binaryvit.hw.streams.fixed_point_stream import fixed_point_layout
    from binaryvit.hw.streams.stream_fifo import StreamFIFO
    return StreamFIFO(fixed_point_layout(3, 1), 4)


def _fifo_pending(probe: Probe) -> Value:
    return probe("level") + probe.kernel.o.valid


def _fork():
    from binaryvit.hw.streams.fixed_point_stream import fixed_point_layout
    from binaryvit.hw.streams.stream_fork import StreamFork
    return StreamFork(fixed_point_layout(3, 1), 2)


def _fork_account(k: int) -> OutputAccount:
    # An output that has taken the word is one ahead of the input until the input lets it go.
    def pending(probe: Probe) -> Value:
        return -probe(f"taken{k}")

    def pending_last(probe: Probe) -> Value:
        return -(probe(f"taken{k}") & probe.kernel.i.payload.last)
    return OutputAccount(f"o{k}", 1, 1, pending, 0, pending_last, low=-1)


def _width(in_lanes: int, out_lanes: int):
    def build():
        from binaryvit.hw.streams.stream_width import StreamWidthConverter
        return StreamWidthConverter(kind="fixed", width=2, channels=6, in_lanes=in_lanes,
                                    out_lanes=out_lanes)
    return build


def _split_spec(pieces: int) -> StreamSpec:
    # One input word is ``pieces`` output words; the buffer holds the pieces not yet sent.
    def pending(probe: Probe) -> Value:
        return probe("full") * (pieces - probe("index"))

    def pending_last(probe: Probe) -> Value:
        return probe("full") & probe("buffer_last")
    return StreamSpec(outputs=(OutputAccount("o", 1, pieces, pending, pieces, pending_last),),
                      invariants=lambda probe: [
                          (probe("index") < pieces, "piece index in range"),
                          (probe("full") | (probe("index") == 0), "an empty splitter is at piece 0")])


def _gather_spec(pieces: int) -> StreamSpec:
    def pending(probe: Probe) -> Value:
        return probe("count") + pieces * probe("full")

    def pending_last(probe: Probe) -> Value:
        return probe("full") & probe("last")
    return StreamSpec(outputs=(OutputAccount("o", pieces, 1, pending, 2 * pieces - 1,
                                             pending_last),),
                      frame=(pieces, lambda probe: probe("count")))


def _channel_tile():
    from binaryvit.hw.kernels.channel_tile import ChannelTile
    return ChannelTile(channels=4, lanes=2, width=2, copies=3)


def _channel_tile_spec(words: int, copies: int) -> StreamSpec:
    # A token of ``words`` input words gives ``copies·words`` output words: the first copy
    # passes through, the others replay the stored token.
    def pending(probe: Probe) -> Value:
        copy, word, o = probe("copy"), probe("word"), probe.kernel.o
        accepted = (copy != 0).as_unsigned() * words + (copy == 0) * word  # this token's input words
        loaded = copy * words + word                          # its output words issued
        return copies * accepted - loaded + o.valid

    def pending_last(probe: Probe) -> Value:
        o = probe.kernel.o
        return ((probe("copy") != 0) & probe("token_last")) + (o.valid & o.payload.last)
    return StreamSpec(outputs=(OutputAccount("o", 1, copies, pending, copies * words,
                                             pending_last),),
                      frame=(words, lambda probe: Mux(probe("copy") == 0, probe("word"), 0)),
                      invariants=lambda probe: [
                          (probe("word") < words, "word in range"),
                          (probe("copy") < copies, "copy in range")])


def _argmax():
    from binaryvit.hw.kernels.argmax import ArgMax
    return ArgMax(classes=6, lanes=2, width=3)


def _argmax_spec(words: int) -> StreamSpec:
    def pending(probe: Probe) -> Value:
        return probe("word") + words * probe.kernel.o.valid

    def pending_last(probe: Probe) -> Value:
        return probe.kernel.o.valid & probe.kernel.o.payload.last
    return StreamSpec(outputs=(OutputAccount("o", words, 1, pending, 2 * words - 1,
                                             pending_last),),
                      frame=(words, lambda probe: probe("word")), frame_exact=True)


def _mvu(**kw):
    def build():
        import torch

        from binaryvit.hw.kernels.mvu import XnorPopcountMVU
        K, N = 4, 4
        weights = torch.tensor([[(n * 5 + k * 3 + n * k) % 2 for k in range(K)] for n in range(N)])
        return XnorPopcountMVU(K, N, pe=2, simd=2, weights=weights, **kw)
    return build


def _mvu_spec(synapse_folds: int, neuron_folds: int, stages: int) -> StreamSpec:
    """Units: a vector is ``SF`` input words and ``NF`` output words, ``SF·NF`` units. The
    kernel holds: the half being written (``NF`` per word), each full half (``SF·NF``) less
    the neuron folds of the replayed half already issued (``SF`` each), and ``SF`` per
    output word in the tag pipeline or the output register."""
    SF, NF = synapse_folds, neuron_folds

    def tags(probe: Probe, name: str):
        return [probe(f"tag_{name}_{s}") for s in range(stages + 1)]

    def pending(probe: Probe) -> Value:
        full = [probe("half0_full"), probe("half1_full")]
        words = [v & l for v, l in zip(tags(probe, "valid"), tags(probe, "last_step"))]
        return (NF * probe("write_index") + SF * NF * (full[0] + full[1])
                - SF * probe("nf") + SF * (_sum(words) + probe.kernel.o.valid))

    def pending_last(probe: Probe) -> Value:
        held = [probe(f"half{h}_full") & probe(f"half{h}_last") for h in range(2)]
        words = [v & l & t for v, l, t in zip(tags(probe, "valid"), tags(probe, "last_step"),
                                              tags(probe, "out_last"))]
        o = probe.kernel.o
        return _sum(held + words + [o.valid & o.payload.last])
    def invariants(probe: Probe):
        full = [probe("half0_full"), probe("half1_full")]
        write, read = probe("write_half"), probe("read_half")
        read_full = Mux(read, full[1], full[0])
        return [
            (Mux(write == read, full[0] == full[1], read_full & ~Mux(write, full[1], full[0])),
             "halves fill and drain alternately"),
            (read_full | (probe("nf") == 0) & (probe("sf") == 0),
             "no replay in progress without a full half"),
        ]
    capacity = 2 * SF * NF + SF * (stages + 2) + NF * (SF - 1)
    return StreamSpec(outputs=(OutputAccount("o", SF, NF, pending, capacity, pending_last),),
                      frame=(SF, lambda probe: probe("write_index")), invariants=invariants)


def _patch_unfold():
    from binaryvit.hw.kernels.patch_unfold import PatchUnfold
    return PatchUnfold(height=2, width=2, channels=1, size=2, in_simd=1, out_simd=2)


def _token_buffer():
    from binaryvit.hw.kernels.token_buffer import NearestUpsample
    return NearestUpsample(height=1, width=2, channels=1, lanes=1, data_width=2, factor=2)


def _mac():
    from binaryvit.hw.kernels.mac import FixedMAC
    return FixedMAC(weights=[[1, -2], [3, 1]], bias=[1, -1], shift=1, out_width=4, in_width=3,
                    simd=1, pe=1)


def _global_pool():
    from binaryvit.hw.kernels.global_avgpool import GlobalAvgPool
    return GlobalAvgPool(tokens=2, channels=2, lanes=1, in_width=3, out_width=3, mul=1, shift=1)


def _spatial_pool():
    from binaryvit.hw.kernels.spatial_avgpool import SpatialAvgPool
    return SpatialAvgPool(height=2, width=2, channels=1, lanes=1, factor=2, in_width=3,
                          out_width=3, mul=1, shift=2)


def _strip_pool():
    from binaryvit.hw.kernels.strip_avgpool import StripAvgPool
    return StripAvgPool(height=1, width=3, channels=1, lanes=1, kernel_h=1, kernel_w=3,
                        in_width=3, out_width=3, mul=3, shift=3)


def _channel_group_pool():
    from binaryvit.hw.kernels.channel_group_avgpool import ChannelGroupAvgPool
    return ChannelGroupAvgPool(channels=4, group=2, lanes=2, in_width=3, out_width=3, mul=1,
                               shift=1)


def _attention():
    from binaryvit.golden import intref
    from binaryvit.hw.kernels.binary_attention import BinaryAttention
    return BinaryAttention(heads=1, head_dim=2, query_tokens=2, key_tokens=2, lanes=1,
                           lut=intref.exp_lut(2, 2, 3).tolist(), theta=1, theta_shift=2)


def _edge():
    from binaryvit.hw.streams.stream_edge import StreamEdge
    return StreamEdge(kind="fixed", width=2, channels=6, in_lanes=2, out_lanes=3,
                      input_depth=2, output_depth=2)


PIPELINE = "a registered pipeline with a global stall"


def _bounded(in_words: int, out_words: int, images: int = 3, *, frame: int | None = None,
             exact: bool = False, **kw) -> StreamSpec:
    """Balance and framing kept in range (no occupancy invariant: for bounded checks).
    ``in_words``/``out_words``: words of one image (or vector) in and out; the balance may
    reach ``images`` images' worth."""
    return StreamSpec(outputs=(OutputAccount("o", in_words, out_words, None,
                                             images * in_words * out_words),),
                      frame=None if frame is None else (frame, None), frame_exact=exact, **kw)


def _split_proof(name: str, build, bounded: StreamSpec, depth: int, note: str,
                 **protocol) -> tuple[FormalCase, FormalCase]:
    """The protocol by induction and the word/last balance bounded to ``depth`` cycles."""
    return (FormalCase(f"{name}", build, StreamSpec(**protocol), "prove", 4,
                       "protocol only (valid held, payload stable); the balance: "
                       f"{name}:count"),
            FormalCase(f"{name}:count", build, bounded, "bmc", depth, note))


KERNEL_CASES: tuple[FormalCase, ...] = (
    FormalCase("affine", _affine,
               _pipeline_spec(("valid1", "valid2"), (("valid1", "last1"), ("valid2", "last2"))),
               "prove", 4, PIPELINE),
    FormalCase("rprelu", _rprelu,
               _pipeline_spec(("valid1", "valid2", "valid3"),
                              (("valid1", "last1"), ("valid2", "last2"), ("valid3", "last3"))),
               "prove", 4, PIPELINE),
    FormalCase("threshold", _threshold,
               _pipeline_spec(("valid1",), (("valid1", "last1"),)), "prove", 4, PIPELINE),
    FormalCase("residual_add", _residual_add,
               _pipeline_spec((), (), lockstep=("residual",)), "prove", 4,
               "both inputs taken on the same cycle"),
    FormalCase("position_embedding_add", _position_embedding,
               _pipeline_spec(("valid1",), (("valid1", "last1"),)), "prove", 4, PIPELINE),
    FormalCase("stream_fifo", _fifo,
               StreamSpec(outputs=(OutputAccount("o", 1, 1, _fifo_pending, 4),)), "prove", 6,
               "framing not separately balanced: last is payload stored in the memory"),
    FormalCase("stream_fork", _fork,
               StreamSpec(outputs=(_fork_account(0), _fork_account(1)),
                          invariants=lambda probe: [
                              (~probe(f"taken{k}") | probe.kernel.i.valid,
                               f"taken{k} only while the input word waits") for k in range(2)]),
               "prove", 4,
               "each output may take the word before the input lets it go (balance −1 … 0)"),
    FormalCase("stream_width_split", _width(6, 2), _split_spec(3), "prove", 6,
               "6 → 2 lanes: one input word, three output words"),
    FormalCase("stream_width_gather", _width(2, 6), _gather_spec(3), "prove", 6,
               "2 → 6 lanes: three input words, one output word"),
    FormalCase("channel_tile", _channel_tile, _channel_tile_spec(2, 3), "prove", 6,
               "2 words per token, 3 copies"),
    FormalCase("argmax", _argmax, _argmax_spec(3), "prove", 6, "3 words per image"),
    FormalCase("mvu", _mvu(), _mvu_spec(2, 2, 1), "prove", 8,
               "K=4, N=4, simd=2, pe=2 (2 synapse × 2 neuron folds), counter6, one tree stage"),
    *_split_proof("patch_unfold", _patch_unfold, _bounded(4, 2, frame=4), 24,
                  "2×2 grid, 1 channel, 2×2 patch: 4 words in, 2 out per image"),
    *_split_proof("token_buffer", _token_buffer, _bounded(2, 8, frame=2, exact=True), 30,
                  "1×2 tokens upsampled ×2: 2 words in, 8 out per image"),
    *_split_proof("fixed_mac", _mac, _bounded(2, 2, frame=2), 24,
                  "K=2, N=2, simd=1, pe=1: 2 words in, 2 out per vector"),
    *_split_proof("global_avgpool", _global_pool, _bounded(4, 2, frame=4, exact=True), 24,
                  "2 tokens × 2 channels, 1 lane: 4 words in, 2 out per image"),
    *_split_proof("spatial_avgpool", _spatial_pool, _bounded(4, 1, frame=4, exact=True), 24,
                  "2×2 grid pooled 2×2, 1 channel: 4 words in, 1 out per image"),
    *_split_proof("strip_avgpool", _strip_pool, _bounded(3, 3, frame=3, exact=True), 24,
                  "1×3 grid, 1×3 strip: 3 words in, 3 out per image, lag 1 word, flushes"),
    *_split_proof("channel_group_avgpool", _channel_group_pool, _bounded(1, 1, frame=2), 20,
                  "4 channels in groups of 2, 2 lanes: one word in, one out"),
    *_split_proof("binary_attention", _attention,
                  _bounded(1, 2, images=4, frame=2, exact=True, primary="q"), 24,
                  "1 head of 2 bits, 2 queries, 2 keys, 1 lane: 2 context words per query "
                  "(balance against q)", primary="q"),
    *_split_proof("stream_edge", _edge, _bounded(3, 2, frame=3), 24,
                  "FIFO(2) → 2 → 3 lanes (through 1 lane) → FIFO(2): 3 words in, 2 out"),
)


def case_by_name(name: str) -> FormalCase:
    for case in KERNEL_CASES:
        if case.name == name:
            return case
    raise KeyError(f"{name}: no such formal case (have {[c.name for c in KERNEL_CASES]})")
