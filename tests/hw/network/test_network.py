"""The network generator: kernel per step, FIFO depths from the token-demand analysis and
the timing model, errors for what hardware cannot express, Verilog that lints clean."""
import copy

import numpy as np
import pytest
from network_models import int_model

from binaryvit.errors import ConfigError
from binaryvit.hw.network.accelerator import BinaryViTAccelerator
from binaryvit.hw.network.fifo_sizing import READY_CHAIN
from binaryvit.hw.network.folding import fold_network
from binaryvit.hw.network.graph import TensorInfo, infer_tensors
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.ops.demand import token_demand
from binaryvit.hw.ops.registry import spec_of
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.lint import lint_verilog

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_token_demands_by_hand():
    grid = TensorInfo("fixed", 8, 4, 16, (4, 4))
    pooled = TensorInfo("fixed", 8, 4, 4, (2, 2))
    # 2×2 windows of a 4×4 grid close on tokens (1,1)=5, (1,3)=7, (3,1)=13, (3,3)=15
    assert token_demand("spatial_pool", grid, pooled, factor=2).tolist() == [5, 7, 13, 15]
    strip_grid = TensorInfo("fixed", 8, 4, 6, (2, 3))
    # a 1×3 strip centred on (i, j) needs (i, j+1), clipped to the last column
    assert token_demand("strip_pool", strip_grid, strip_grid, reach=(0, 1)).tolist() == \
        [1, 2, 2, 4, 5, 5]
    # a 3×1 strip needs the next row, clipped to the last row
    assert token_demand("strip_pool", strip_grid, strip_grid, reach=(1, 0)).tolist() == \
        [3, 4, 5, 3, 4, 5]
    assert token_demand("whole_image", grid, pooled).tolist() == [15] * 4


@pytest.fixture(scope="module")
def tiny_network():
    model = int_model("tiny-digits")
    return plan_network(model, fold_network(model))


def test_every_step_has_its_kernel(tiny_network):
    model = tiny_network.model
    no_kernel = {"constant", "attention_scores", "attention_mask", "image_patches"}
    assert {op for op in {s.op for s in model.steps} if not spec_of(op).kernel} == no_kernel
    for step in model.steps:
        assert (step.name in tiny_network.nodes) == (step.op not in no_kernel), step.name
    kinds = {n.op: type(n.component).__name__ for n in tiny_network.nodes.values()}
    assert kinds["and_popcount_context"] == "BinaryAttention"
    assert kinds["xnor_popcount_dot"] == "XnorPopcountMVU"
    assert type(tiny_network.nodes["stem"].component).__name__ == "PositionEmbeddingAdd"


def test_fifo_skews_follow_the_kernels_buffering(tiny_network):
    skews = tiny_network.skews
    a = "stages.0.blocks.0.attention"
    # Attention needs all 16 keys, i.e. the whole 64-token norm1 image, before the first
    # query leaves: the query branch must hold 63 tokens while the key branch fills.
    assert skews[f"stages.0.blocks.0.norm1->{a}.q_proj.input_sign.i"] == 63
    assert skews[f"stages.0.blocks.0.norm1->{a}.sr_pool.i"] == 0
    # The 5×1 strip pool emits token (i, j) with input (i+2, j): the other branches of
    # norm2 (MLP, 1×3, 3×1, 1×5) wait two 8-token rows = 16 tokens. The 5×1 branch waits
    # only on the last row, where it needs (7, j) and the 1×5 branch (7, j+2): 2 tokens.
    b = "stages.0.blocks.0"
    assert skews[f"{b}.norm2->{b}.pool_branches.5x1.sum.i"] == 2
    assert skews[f"{b}.norm2->{b}.mlp.fc1.input_sign.i"] == 16
    # The upsampler and attention both take the whole 16-token key image before their first
    # output, so the two branches of k_act meet (in ctx_sum_k) without skew.
    assert skews[f"{a}.k_act->{a}.k_up.i"] == 0
    assert skews[f"{a}.k_act->{a}.k_sign.i"] == 0
    # Every fork output's branch holds its skew plus two tokens of slack before it reaches
    # a join or another fork, wherever a token is cheapest: the 63 query tokens of norm1
    # wait after the q_proj threshold (one 32-bit word per token), not before it (32
    # elements of 24 bits).
    for edge in tiny_network.edges:
        key = f"{edge.tensor}->{edge.consumer or 'output'}.{edge.port}"
        if key in skews:
            assert max(tokens_held(tiny_network, e) for e in branch(tiny_network, edge)) \
                >= skews[key] + 2, key
    depth = {(e.tensor, e.consumer): e for e in tiny_network.edges}
    assert tokens_held(tiny_network, depth[(f"{a}.q_proj.input_sign", f"{a}.q_proj")]) >= 65
    assert depth[("stages.0.blocks.0.norm1", f"{a}.q_proj.input_sign")].fifo_depth <= 4


def branch(network, edge):
    """``edge`` and the edges after it up to the first join, fork or change of grid."""
    chain = [edge]
    while edge.consumer is not None and len(network.nodes[edge.consumer].inputs) == 1 \
            and network.tensors[edge.consumer].tokens == network.tensors[edge.tensor].tokens:
        after = [e for e in network.edges if e.tensor == edge.consumer]
        if len(after) != 1:
            break
        edge = after[0]
        chain.append(edge)
    return chain


def tokens_held(network, edge) -> int:
    """Whole tokens the FIFOs of ``edge`` hold."""
    channels = network.tensors[edge.tensor].channels
    return (edge.input_fifo_depth * network.produced_lanes[edge.tensor]
            + edge.fifo_depth * edge.lanes) // channels


def test_fifo_depths_cover_what_the_timing_model_needed(tiny_network):
    schedule = tiny_network.schedule
    assert schedule.period == tiny_network.folding.bottleneck == 2048
    for edge, path in zip(tiny_network.edges, schedule.paths):
        assert edge.input_fifo_depth >= path.input_need and edge.fifo_depth >= path.output_need
        assert bool(edge.input_fifo_depth) == path.input_fifo
        assert bool(edge.fifo_depth) == path.output_fifo
        assert not path.waits or edge.tensor == "stem.patches"  # the source may wait
    depth = {(e.consumer, e.port): e for e in tiny_network.edges}
    a, b = "stages.0.blocks.0.attention", "stages.0.blocks.0"
    # The MLP shortcut tile leaves a token's first copy as it arrives, then replays three
    # more while fc1 is still computing that token: where the two meet (fc1_sum), the tile's
    # words wait in a FIFO instead of holding the tile on a plain wire.
    assert depth[(f"{b}.mlp.fc1_sum", "residual")].fifo_depth > 0
    # Queries wait in front of attention while it loads an image's keys and values.
    assert depth[(f"{a}.context", "q")].fifo_depth > 0


def test_no_ready_path_crosses_more_than_ready_chain_stages(tiny_network):
    # From every kernel, follow its output forward while the edge is a plain wire (no FIFO
    # on either side of a converter) to one consumer: kernels and converters on the way
    # are one combinational ready path; a fork output always has a FIFO.
    network = tiny_network
    by_tensor = {}
    for edge in network.edges:
        by_tensor.setdefault(edge.tensor, []).append(edge)
    longest = 0
    for name in network.nodes:
        stages, tensor = 1, name
        while True:
            edges = by_tensor.get(tensor, [])
            if len(edges) != 1 or edges[0].consumer is None:
                break
            edge = edges[0]
            if edge.fifo_depth or edge.input_fifo_depth:
                break
            stages += 1 + (edge.lanes != network.produced_lanes[tensor])
            tensor = edge.consumer
        longest = max(longest, stages)
        assert stages <= READY_CHAIN, name
    assert longest == READY_CHAIN  # the cut is where the bound says, not everywhere
    for tensor, edges in by_tensor.items():
        if len(edges) > 1:
            assert all(e.fifo_depth or e.input_fifo_depth for e in edges), tensor


def test_pixel_port_carries_what_the_stem_reads():
    # At 256 cycles per image the folding streams one pixel a word into a stem reading two:
    # a gatherer there would hold the host while the stem re-reads its vector (measured in
    # Verilator: 272 cycles per image instead of 256). The port takes the stem's two.
    model = int_model("micro")
    folding = fold_network(model, target_cycles=256)
    assert (folding.folds["stem.patches"]["lanes"], folding.folds["stem.norm"]["simd"]) == (1, 2)
    network = plan_network(model, folding)
    assert network.input_lanes == 2
    stem_edge = next(e for e in network.edges if e.tensor == "stem.patches")
    assert stem_edge.lanes == 2 and not stem_edge.fifo_depth and not stem_edge.input_fifo_depth


def test_taps_and_unsupported_steps_are_refused():
    model = int_model("micro")
    folding = fold_network(model)
    with pytest.raises(ConfigError, match="taps: 'stages.0.blocks.0.attention.scores' is not"):
        BinaryViTAccelerator(plan_network(model, folding),
                             taps=["stages.0.blocks.0.attention.scores"])
    broken = copy.deepcopy(model)
    broken.step("stages.0.blocks.0.attention.sr_pool").params["pad_h"] = 1
    with pytest.raises(ConfigError, match="sr_pool.*only r×r pooling"):
        plan_network(broken, folding)
    broken = copy.deepcopy(model)
    broken.steps[-1].op = "mystery"
    with pytest.raises(ConfigError, match="operation 'mystery' has no hardware kernel"):
        fold_network(broken)


def test_tensor_shapes_of_the_tiny_model():
    t = infer_tensors(int_model("tiny-digits"))
    assert (t["input"].kind, t["input"].width, t["input"].tokens) == ("pixel", 5, 64)
    assert (t["stem"].tokens, t["stem"].channels) == (64, 32)
    assert (t["stages.1.merge.conv.patches"].kind, t["stages.1.merge.conv.patches"].channels,
            t["stages.1.merge.conv.patches"].tokens) == ("binary", 128, 16)
    # dot of 32 ±1 products lies in [−32, 32]: 7 signed bits; context of 16 keys: 6 bits
    assert t["stages.0.blocks.0.attention.q_proj"].width == 7
    assert t["stages.0.blocks.0.attention.context"].width == 6
    assert t["classifier"].tokens == 1 and t["classifier"].channels == 10
    assert np.all([t[s].kind != "scores" for s in t if not s.endswith(("scores",
                                                                       "prob_binarizer"))])


@pytest.fixture(scope="module")
def micro_lint():
    model = int_model("micro")
    return lint_verilog(to_verilog(BinaryViTAccelerator(plan_network(model, fold_network(model))),
                                   "binaryvit_top"), "binaryvit_top")


def test_whole_network_lints_clean(micro_lint):
    assert micro_lint == []
