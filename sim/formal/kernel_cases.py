"""The stream-protocol proofs of every kernel: a small instance of each, and its accounting.

Each ``FormalCase`` names one kernel instance (parameters small enough for a quick
proof, every structural branch of the kernel still present: several channel groups,
several lanes, several folds), the ``StreamSpec`` of what is checked on it, and the
SymbiYosys mode and depth: ``prove``, an unbounded proof by k-induction (``depth`` is k),
for every kernel. (A kernel whose occupancy is not written down yet would get a ``bmc``
case, bounded to ``depth`` cycles, with an ``OutputAccount`` whose ``pending`` is None,
and say why in ``note``.)

The ``pending`` functions are the kernels' occupancy written from their own registers:
how many words each holds (in the balance's unit, see ``OutputAccount``) and how many
``last`` flags. They are the inductive invariants; a wrong one fails the proof, so they
cannot make a broken kernel pass.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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
    cover_depth: int = 0  # cycles a ``cover`` run needs to reach a ``last`` on every output

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
        return probe("split_full") * (pieces - probe("index"))

    def pending_last(probe: Probe) -> Value:
        return probe("split_full") & probe("buffer_last")
    return StreamSpec(outputs=(OutputAccount("o", 1, pieces, pending, pieces, pending_last),),
                      invariants=lambda probe: [
                          (probe("index") < pieces, "piece index in range"),
                          (probe("split_full") | (probe("index") == 0),
                           "an empty splitter is at piece 0")])


def _gather_spec(pieces: int) -> StreamSpec:
    def pending(probe: Probe) -> Value:
        return probe("count") + pieces * probe("gather_full")

    def pending_last(probe: Probe) -> Value:
        return probe("gather_full") & probe("last")
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
    return GlobalAvgPool(tokens=3, channels=2, lanes=1, in_width=3, out_width=3, mul=1, shift=1)


def _spatial_pool():
    from binaryvit.hw.kernels.spatial_avgpool import SpatialAvgPool
    return SpatialAvgPool(height=4, width=4, channels=2, lanes=1, factor=2, in_width=3,
                          out_width=3, mul=1, shift=2)


def _strip_pool():
    from binaryvit.hw.kernels.strip_avgpool import StripAvgPool
    return StripAvgPool(height=1, width=4, channels=1, lanes=1, kernel_h=1, kernel_w=5,
                        in_width=3, out_width=3, mul=3, shift=3)


def _channel_group_pool():
    from binaryvit.hw.kernels.channel_group_avgpool import ChannelGroupAvgPool
    return ChannelGroupAvgPool(channels=4, group=2, lanes=2, in_width=3, out_width=3, mul=1,
                               shift=1)


def _attention():
    from binaryvit.golden import intref
    from binaryvit.hw.kernels.binary_attention import BinaryAttention
    return BinaryAttention(heads=2, head_dim=2, query_tokens=2, key_tokens=2, lanes=1,
                           lut=intref.exp_lut(2, 2, 3).tolist(), theta=1, theta_shift=2)


def _edge():
    from binaryvit.hw.streams.stream_edge import StreamEdge
    return StreamEdge(kind="fixed", width=2, channels=6, in_lanes=2, out_lanes=3,
                      input_depth=2, output_depth=2)


def _fixed_mac_spec(words: int, groups: int) -> StreamSpec:
    """Units: a vector is ``words`` input words and ``groups`` output words. While the
    first group streams the vector in (``group = 0``) the kernel has taken ``k`` of its
    words, afterwards all; each issued final step (``endk``) is an output word on its way."""
    W, G = words, groups

    def owed_outputs(probe: Probe) -> list[Value]:
        return [probe("valid1") & probe("endk1"), probe("valid2") & probe("endk2"),
                probe("valid3"), probe.kernel.o.valid]

    def pending(probe: Probe) -> Value:
        group, k = probe("group"), probe("k")
        accepted = Mux(group == 0, k, W)
        return G * accepted - W * group + W * _sum(owed_outputs(probe))

    def pending_last(probe: Probe) -> Value:
        o = probe.kernel.o
        return (((probe("group") != 0) & probe("vector_last"))
                + (probe("valid1") & probe("endk1") & probe("last1"))
                + (probe("valid2") & probe("endk2") & probe("last2"))
                + (probe("valid3") & probe("last3")) + (o.valid & o.payload.last))
    return StreamSpec(outputs=(OutputAccount("o", W, G, pending, W * G + 4 * W, pending_last),),
                      frame=(W, lambda probe: Mux(probe("group") == 0, probe("k"), 0)))


def _window_pool_pending(tokens_done, completing_done, per_output: int):
    """Occupancy of a window pool (``accumulate_windows``): the words taken this image,
    less ``per_output`` for each completing word taken, plus ``per_output`` for the
    completing word in stage B and for the output register."""
    def pending(probe: Probe) -> Value:
        in_b = probe("b_valid") & probe("b_completes")
        return (tokens_done(probe) - per_output * completing_done(probe)
                + per_output * (in_b + probe.kernel.o.valid))

    def pending_last(probe: Probe) -> Value:
        o = probe.kernel.o
        in_b = probe("b_valid") & probe("b_completes") & probe("b_last")
        return in_b + (o.valid & o.payload.last)
    return pending, pending_last


def _global_pool_spec(tokens: int, words: int) -> StreamSpec:
    def taken(probe: Probe) -> Value:
        return probe("token") * words + probe("word")

    def completing(probe: Probe) -> Value:
        return (probe("token") == tokens - 1) * probe("word")
    pending, pending_last = _window_pool_pending(taken, completing, tokens)
    return StreamSpec(outputs=(OutputAccount("o", tokens, 1, pending, tokens * words + 2 * tokens,
                                             pending_last),),
                      frame=(tokens * words, taken), frame_exact=True)


def _spatial_pool_spec(height: int, width: int, words: int, factor: int) -> StreamSpec:
    r = factor
    out_width = width // r

    def taken(probe: Probe) -> Value:
        return (probe("row") * width + probe("column")) * words + probe("word")

    def completing(probe: Probe) -> Value:
        window_rows_done = (probe("row") - probe("row_in_window")) // r
        in_this_row = (probe("out_column") * words
                       + (probe("column_in_window") == r - 1) * probe("word"))
        return (window_rows_done * out_width * words
                + (probe("row_in_window") == r - 1) * in_this_row)
    pending, pending_last = _window_pool_pending(taken, completing, r * r)

    def invariants(probe: Probe):
        row, column = probe("row"), probe("column")
        return [(probe("column_in_window") == column % r, "column_in_window = column mod r"),
                (probe("out_column") == column // r, "out_column = column div r"),
                (probe("row_in_window") == row % r, "row_in_window = row mod r"),
                ((row < height) & (column < width) & (probe("word") < words),
                 "positions in range")]
    return StreamSpec(outputs=(OutputAccount("o", r * r, 1, pending,
                                             height * width * words + 2 * r * r, pending_last),),
                      frame=(height * width * words, taken), frame_exact=True,
                      invariants=invariants)


def _channel_group_spec() -> StreamSpec:
    """One word in, one out (``lanes`` a multiple of ``group``): the output register."""
    def pending(probe: Probe) -> Value:
        return probe.kernel.o.valid

    def pending_last(probe: Probe) -> Value:
        return probe.kernel.o.valid & probe.kernel.o.payload.last
    return StreamSpec(outputs=(OutputAccount("o", 1, 1, pending, 1, pending_last),))


def _patch_unfold_spec(in_words: int, out_words: int) -> StreamSpec:
    """The load register holds ``load_count`` input words (``O`` units each), the shift
    register ``remaining`` output words (``I`` units each)."""
    I, O = in_words, out_words

    def pending(probe: Probe) -> Value:
        return O * probe("load_count") + I * probe("remaining")

    def pending_last(probe: Probe) -> Value:
        return (((probe("load_count") == I) & probe("load_last"))
                + ((probe("remaining") != 0) & probe("shift_last")))
    return StreamSpec(
        outputs=(OutputAccount("o", I, O, pending, 2 * I * O, pending_last),),
        frame=(I, lambda probe: Mux(probe("load_count") == I, 0, probe("load_count"))),
        invariants=lambda probe: [
            ((probe("load_count") <= I) & (probe("remaining") <= O), "counts in range")])


def _token_buffer_spec(height: int, width: int, words_per_token: int, factor: int) -> StreamSpec:
    """Units: an image is ``I`` words in and ``O = I·f²`` out. The kernel holds the words
    of the bank being loaded (``O`` each), each full bank (``I·O``) less the output words
    of the replayed bank already issued (``I`` each, by raster position), and the output
    register."""
    cw, f = words_per_token, factor
    I = height * width * cw
    O = I * f * f

    def issued(probe: Probe) -> Value:
        out_row = probe("row") * f + probe("row_repeat")
        out_column = probe("column") * f + probe("column_repeat")
        return (out_row * (width * f) + out_column) * cw + probe("word")

    def pending(probe: Probe) -> Value:
        full = [probe("bank0_full"), probe("bank1_full")]
        return (O * probe("load_address") + I * O * (full[0] + full[1]) - I * issued(probe)
                + I * probe.kernel.o.valid)

    def pending_last(probe: Probe) -> Value:
        o = probe.kernel.o
        return probe("bank0_full") + probe("bank1_full") + (o.valid & o.payload.last)

    def invariants(probe: Probe):
        full = [probe("bank0_full"), probe("bank1_full")]
        load, play = probe("load_bank"), probe("play_bank")
        return [
            (Mux(load == play, full[0] == full[1], Mux(play, full[1], full[0])
                 & ~Mux(load, full[1], full[0])), "banks fill and drain alternately"),
            (Mux(play, full[1], full[0]) | (issued(probe) == 0),
             "no replay in progress without a full bank"),
            ((probe("load_address") == 0) | ~Mux(load, full[1], full[0]),
             "a bank being loaded is not full"),
            ((probe("row") < height) & (probe("column") < width) & (probe("word") < cw),
             "positions in range"),
        ]
    return StreamSpec(outputs=(OutputAccount("o", I, O, pending, 2 * I * O + I + O * (I - 1),
                                             pending_last),),
                      frame=(I, lambda probe: probe("load_address")), frame_exact=True,
                      invariants=invariants)


def _edge_spec(in_lanes: int, out_lanes: int, middle_lanes: int) -> StreamSpec:
    """Units are elements (``in_lanes`` per input word, ``out_lanes`` per output word): the
    input FIFO's words, the splitter's pieces still to send, the gatherer's pieces and
    full word, the output FIFO's words. Lasts sit in the FIFOs' memories: framing is not
    balanced here (the width converters' own proofs cover it)."""
    pieces_in, pieces_out = in_lanes // middle_lanes, out_lanes // middle_lanes

    def fifo(probe: Probe, name: str) -> Value:
        return probe(f"{name}.level") + probe(f"{name}.o__valid")

    def pending(probe: Probe) -> Value:
        split = probe("converter.split_full") * (pieces_in - probe("converter.index"))
        gather = probe("converter.count") + pieces_out * probe("converter.gather_full")
        return (in_lanes * fifo(probe, "input_fifo") + middle_lanes * (split + gather)
                + out_lanes * fifo(probe, "output_fifo"))

    def invariants(probe: Probe):
        return [(probe("converter.index") < pieces_in, "splitter piece in range"),
                (probe("converter.split_full") | (probe("converter.index") == 0),
                 "an empty splitter is at piece 0"),
                (probe("converter.count") < pieces_out, "gatherer count in range")]
    return StreamSpec(outputs=(OutputAccount("o", out_lanes, in_lanes, pending,
                                             4 * in_lanes + 4 * out_lanes + in_lanes + out_lanes),),
                      invariants=invariants)


def _strip_pool_spec(units: int, reach: int) -> StreamSpec:
    """A 1×k strip over a one-row grid of ``units`` tokens of one word (``U = 1``): the
    kernel holds the units between its input position and its output position (modulo
    the row: while the output finishes the previous image's tail the input has wrapped),
    the emitting word in stage B and the output register. A ``last`` is owed while the
    output is still in an image the input has finished."""
    A = units

    def outstanding(probe: Probe) -> Value:
        i, o = probe("in_axis"), probe("out_axis")
        return Mux(i >= o, i - o, i + A - o)

    def pending(probe: Probe) -> Value:
        in_b = probe("b_valid") & probe("b_emits")
        return outstanding(probe) + in_b + probe.kernel.o.valid

    def pending_last(probe: Probe) -> Value:
        o = probe.kernel.o
        return ((probe("out_axis") > probe("in_axis")).as_unsigned()
                + (probe("b_valid") & probe("b_emits") & probe("b_last"))
                + (o.valid & o.payload.last))

    def invariants(probe: Probe):
        i, o, lead = probe("in_axis"), probe("out_axis"), probe("lead")
        held = outstanding(probe)
        return [((i < A) & (o < A) & (lead <= reach), "positions in range"),
                ((held == lead) | ((i == 0) & (o != 0) & (held <= lead)),
                 "the lead is the units held, except while flushing an image's tail")]
    return StreamSpec(outputs=(OutputAccount("o", 1, 1, pending, A + 2, pending_last),),
                      frame=(A, lambda probe: probe("in_axis")), frame_exact=True,
                      invariants=invariants)


def _attention_spec(heads: int, words_per_head: int, query_tokens: int) -> StreamSpec:
    """Balanced against ``q`` (``k`` and ``v`` only gate it): a query is ``heads ·
    words_per_head`` output words. The kernel owes the heads stage A has not handed over
    (from ``a_head`` on), the head in stage B, and the words left in the output register."""
    H, W = heads, words_per_head

    def pending(probe: Probe) -> Value:
        a_heads = probe("a_scoring") * (H - probe("a_head"))
        left = probe.kernel.o.valid * (W - probe("out_word"))
        return W * (a_heads + probe("b_running")) + left

    def pending_last(probe: Probe) -> Value:
        return ((probe("a_scoring") & probe("a_last_query"))
                + (probe("b_running") & probe("b_last_image"))
                + (probe.kernel.o.valid & probe("out_last_image")))

    def invariants(probe: Probe):
        return [((probe("a_head") < H) & (probe("out_word") < W) & (probe("b_head") < H),
                 "positions in range"),
                (~probe("b_last_image") | (probe("b_head") == H - 1),
                 "only the final head closes an image")]
    return StreamSpec(primary="q",
                      outputs=(OutputAccount("o", 1, H * W, pending, 3 * H * W, pending_last),),
                      frame=(query_tokens, lambda probe: probe("q_count")), frame_exact=True,
                      invariants=invariants)


PIPELINE = "a registered pipeline with a global stall"


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
    FormalCase("patch_unfold", _patch_unfold, _patch_unfold_spec(4, 2), "prove", 6,
               "2×2 grid, 1 channel, 2×2 patch: 4 words in, 2 out per image"),
    FormalCase("token_buffer", _token_buffer, _token_buffer_spec(1, 2, 1, 2), "prove", 8,
               "1×2 tokens upsampled ×2 (NearestUpsample): 2 words in, 8 out per image"),
    FormalCase("fixed_mac", _mac, _fixed_mac_spec(2, 2), "prove", 8,
               "K=2, N=2, simd=1, pe=1: 2 words in, 2 out per vector (replays the buffer)"),
    FormalCase("global_avgpool", _global_pool, _global_pool_spec(3, 2), "prove", 8,
               "3 tokens × 2 channels, 1 lane: 6 words in, 2 out per image"),
    FormalCase("spatial_avgpool", _spatial_pool, _spatial_pool_spec(4, 4, 2, 2), "prove", 8,
               "4×4 grid pooled 2×2, 2 channels, 1 lane: 32 words in, 8 out per image"),
    FormalCase("strip_avgpool", _strip_pool, _strip_pool_spec(4, 2), "prove", 8,
               "1×4 grid, 1×5 strip: 4 words in, 4 out per image, lag 2 words, flushes"),
    FormalCase("channel_group_avgpool", _channel_group_pool, _channel_group_spec(), "prove", 4,
               "4 channels in groups of 2, 2 lanes: one word in, one out"),
    FormalCase("binary_attention", _attention, _attention_spec(2, 2, 2), "prove", 8,
               "2 heads of 2 bits, 2 queries, 2 keys, 1 lane: 4 context words per query "
               "(balance against q; k and v only gate it)"),
    FormalCase("stream_edge", _edge, _edge_spec(2, 3, 1), "prove", 8,
               "FIFO(2) → 2 → 3 lanes (through 1 lane) → FIFO(2): 3 words in, 2 out; "
               "framing not separately balanced: lasts are payload stored in the FIFOs"),
)


# Cycles from reset to an output word with ``last`` on every output, without stalls (the
# covers of ``StreamProtocolHarness``): each case's ``cover`` run shows its assumptions
# leave that reachable, so no proof passes because nothing can happen.
COVER_DEPTHS = {"affine": 8, "rprelu": 8, "threshold": 6, "residual_add": 4,
                "position_embedding_add": 6, "stream_fifo": 6, "stream_fork": 4,
                "stream_width_split": 6, "stream_width_gather": 6, "channel_tile": 10,
                "argmax": 6, "mvu": 12, "patch_unfold": 10, "token_buffer": 14,
                "fixed_mac": 10, "global_avgpool": 12, "spatial_avgpool": 38,
                "channel_group_avgpool": 4, "stream_edge": 14,
                "strip_avgpool": 24, "binary_attention": 24}
KERNEL_CASES = tuple(replace(case, cover_depth=COVER_DEPTHS.get(case.name, case.depth))
                     for case in KERNEL_CASES)


def case_by_name(name: str) -> FormalCase:
    for case in KERNEL_CASES:
        if case.name == name:
            return case
    raise KeyError(f"{name}: no such formal case (have {[c.name for c in KERNEL_CASES]})")
