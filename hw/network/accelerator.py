"""The network generator: an integer model becomes one streaming dataflow accelerator.

``BinaryViTAccelerator(model, folding)`` instantiates one kernel per step of the
:class:`~binaryvit.golden.intref.intmodel.IntModel` (FINN style: every layer on chip, weights
and constants in ROMs), connects them with streams, inserts a width converter wherever a
producer's words hold a different number of elements than its consumer reads, and a fork
with one FIFO per consumer wherever several steps read one tensor. FIFO depths come from
``binaryvit.hw.network.fifo_sizing`` (see ``docs/network.md``).

Step → kernel:

=========================  =============================================================
``image_patches``          the top's pixel input ``i`` (the host streams patches)
``fixed_mac``              ``StemUnit`` on pixels, else ``ClassifierUnit``
``residual_add`` + const   ``PositionEmbeddingAdd``; otherwise ``ResidualAdd``
``affine`` / ``rprelu``    ``AffineUnit`` / ``RPReLUUnit``
``threshold``              ``ThresholdUnit``
``xnor_popcount_dot``      ``XnorPopcountMVU``
``avgpool2d``              ``SpatialAvgPool``;  ``window_sum2d``: ``StripAvgPool``
``channel_group_avgpool``  ``ChannelGroupAvgPool``;  ``global_avgpool``: ``GlobalAvgPool``
``tile_channels``          ``ChannelTile``;  ``nearest_upsample``: ``NearestUpsample``
``token_patches``          ``PatchUnfold``
attention (3 steps)        one ``BinaryAttention`` (named after the context step)
=========================  =============================================================

Ports of the top: ``i`` pixels (``fixed_point_layout(pixel_width, lanes,
is_signed=False)``, patches in raster order, channel-major inside a patch as
``golden.int_network.unfold_patches``), ``o`` logits (``fixed_point_layout(logit_width,
pe)``) and ``cls`` the class (``{data: unsigned, last}``, one word per image). With
``taps``, each tapped step's output stream is mirrored on ``tap<k>_payload`` /
``tap<k>_valid`` (``valid`` = a transfer on that cycle), for the divergence finder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.hw.kernels.affine import AffineUnit
from binaryvit.hw.kernels.argmax import ArgMax
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
from binaryvit.hw.network.fifo_sizing import Demand, fifo_depths, token_demand
from binaryvit.hw.network.folding import Folding, in_lanes, out_lanes
from binaryvit.hw.network.graph import attention_groups, infer_tensors
from binaryvit.hw.streams.stream_edge import StreamEdge
from binaryvit.hw.streams.stream_fork import StreamFork
from binaryvit.hw.streams.stream_width import element_layout

__all__ = ["BinaryViTAccelerator", "KernelNode", "Edge"]


@dataclass
class KernelNode:
    """One kernel of the network: the step it computes and how its ports read tensors.

    inputs : (port name, tensor name, elements per word the port reads) per input port.
    """

    name: str
    op: str
    component: wiring.Component
    inputs: list[tuple[str, str, int]]
    lanes: int
    demands: list[Demand] = field(default_factory=list)


@dataclass
class Edge:
    """A consumer port reading a tensor (``consumer`` None: the top's ``o`` output), built
    as a ``StreamEdge``: ``input_fifo_depth`` words of the producer's ``lanes`` before the
    width converter, ``fifo_depth`` words of the consumer's ``lanes`` after it (0: none)."""

    tensor: str
    consumer: str | None
    port: str
    lanes: int
    fifo_depth: int = 0
    input_fifo_depth: int = 0


def _array(step: Step, key: str) -> np.ndarray:
    return np.asarray(step.arrays[key])


class BinaryViTAccelerator(wiring.Component):
    """The whole BinaryViT as one streaming component (see the module docstring).

    Parameters
    ----------
    model : IntModel
    folding : Folding
        From ``binaryvit.hw.network.folding.fold_network``.
    taps : sequence of step names, optional
        Steps whose output streams are mirrored on ``tap<k>_*`` ports (``"input"`` is not
        tappable; attention scores and masks have no stream, tap the context step).
    fifo_slack_tokens : int
        Extra tokens added to every fork FIFO beyond the analysed skew.

    Attributes
    ----------
    nodes : dict of KernelNode; edges : list of Edge (FIFO depths from
    ``binaryvit.hw.network.fifo_sizing.fifo_depths``); schedule : the timing model's
    ``NetworkSchedule`` those depths come from; tensors : TensorInfo per tensor;
    tap_names : the tapped steps in port order.
    """

    def __init__(self, model: IntModel, folding: Folding, *, taps: Sequence[str] = (),
                 fifo_slack_tokens: int = 2):
        self.model = model
        self.folding = folding
        self.tensors = infer_tensors(model)
        self.groups = attention_groups(model)
        self.nodes: dict[str, KernelNode] = {}
        self.produced_lanes: dict[str, int] = {}
        self._build_nodes()
        last = model.steps[-1]
        if last.op != "fixed_mac" or self.tensors[last.name].tokens != 1:
            raise ConfigError(f"the final step {last.name!r} must be the classifier "
                              f"(a fixed_mac on one pooled token), got {last.op}")
        self.logits = last.name
        self.edges = self._edges()
        fifo_depths(self, slack_tokens=fifo_slack_tokens)
        stem = model.steps[0]
        if stem.op != "image_patches":
            raise ConfigError(f"the first step must unfold the image (image_patches), got "
                              f"{stem.op!r} in {stem.name!r}")
        pixels = self.tensors["input"]
        self.input_lanes = self.produced_lanes[stem.name]
        logits = self.tensors[self.logits]
        self.classifier = self.nodes[self.logits].component
        self.argmax = ArgMax(classes=logits.channels, lanes=self.produced_lanes[self.logits],
                             width=logits.width)
        ports = {
            "i": In(stream.Signature(element_layout("pixel", pixels.width, self.input_lanes))),
            "o": Out(stream.Signature(element_layout("fixed", logits.width,
                                                     self.produced_lanes[self.logits]))),
            "cls": Out(stream.Signature(self.argmax.out_layout)),
        }
        self.tap_names = list(taps)
        for k, name in enumerate(self.tap_names):
            if name not in self.nodes:
                raise ConfigError(f"taps: {name!r} is not a step with an output stream; "
                                  f"tappable steps are those of the model except "
                                  f"constants, attention scores and masks")
            ports[f"tap{k}_payload"] = Out(self._stream_shape(name))
            ports[f"tap{k}_valid"] = Out(1)
        super().__init__(ports)

    # -- structure ----------------------------------------------------------------------

    def _stream_shape(self, tensor: str):
        info = self.tensors[tensor]
        return element_layout(info.kind, info.width, self.produced_lanes[tensor])

    def _fold(self, name: str) -> dict[str, int]:
        return self.folding.folds[name]

    def _add(self, step: Step, component, inputs, lanes: int, demands) -> None:
        self.nodes[step.name] = KernelNode(step.name, step.op, component, inputs, lanes, demands)
        self.produced_lanes[step.name] = lanes

    def _build_nodes(self) -> None:
        t = self.tensors
        steps = {s.name: s for s in self.model.steps}
        for s in self.model.steps:
            fold = self._fold(s.name)
            p = s.params
            out = t[s.name]
            x = t[s.inputs[0]] if s.inputs else None
            lanes_in = in_lanes(s, fold)
            lanes_out = out_lanes(s, fold)
            same = token_demand("pointwise", x, out) if x is not None else None
            if s.op in ("constant", "attention_scores", "attention_mask"):
                continue
            if s.op == "image_patches":
                # The pixel port carries what its reader (the stem) takes per word: a
                # gatherer in between would hold the host while the stem re-reads its
                # vector, and cost the stem a cycle per word after.
                readers = [r for r in self.model.steps if s.name in r.inputs]
                self.produced_lanes[s.name] = (in_lanes(readers[0], self._fold(readers[0].name))
                                               if len(readers) == 1 else fold["lanes"])
                continue
            if s.op == "fixed_mac":
                weight, bias = _array(s, "weight"), _array(s, "bias")
                if x.kind == "pixel":
                    unit = StemUnit(weights=weight, bias=bias, shift=p["shift"],
                                    out_width=out.width, pe=fold["pe"], simd=fold["simd"],
                                    pixel_width=x.width)
                else:
                    unit = ClassifierUnit(weights=weight, bias=bias, shift=p["shift"],
                                          out_width=out.width, in_width=x.width,
                                          simd=fold["simd"], pe=fold["pe"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "residual_add":
                a, b = s.inputs
                if steps.get(b) is not None and steps[b].op == "constant":
                    unit = PositionEmbeddingAdd(embedding=_array(steps[b], "value"),
                                                lanes=lanes_in, in_width=x.width,
                                                out_width=out.width)
                    self._add(s, unit, [("i", a, lanes_in)], lanes_out, [same])
                else:
                    unit = ResidualAdd(channels=out.channels, lanes=lanes_in, in_width=x.width,
                                       residual_width=t[b].width, out_width=out.width)
                    self._add(s, unit, [("i", a, lanes_in), ("residual", b, lanes_in)],
                              lanes_out, [same, same])
            elif s.op == "affine":
                unit = AffineUnit(channels=out.channels, lanes=lanes_in, in_width=x.width,
                                  mul=_array(s, "mul"), bias=_array(s, "bias"), shift=p["shift"],
                                  out_width=out.width)
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "rprelu":
                unit = RPReLUUnit(channels=out.channels, lanes=lanes_in, in_width=x.width,
                                  pre_bias=_array(s, "pre_bias"), mul_pos=_array(s, "mul_pos"),
                                  mul_neg=_array(s, "mul_neg"), post_bias=_array(s, "post_bias"),
                                  shift=p["shift"], out_width=out.width)
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "threshold":
                unit = ThresholdUnit(channels=out.channels, lanes=lanes_in, in_width=x.width,
                                     thresh=_array(s, "thresh"),
                                     flip=_array(s, "flip").astype(np.int64))
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "xnor_popcount_dot":
                w = _array(s, "weight_bits")
                unit = XnorPopcountMVU(w.shape[1], w.shape[0], fold["pe"], fold["simd"], w)
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "avgpool2d":
                if not (p["kh"] == p["kw"] == p["stride"] and p["pad_h"] == p["pad_w"] == 0):
                    raise ConfigError(f"step {s.name!r}: only r×r pooling with stride r and no "
                                      f"padding has a kernel (SpatialAvgPool)")
                unit = SpatialAvgPool(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                                      lanes=lanes_in, factor=p["kh"], in_width=x.width,
                                      out_width=out.width, mul=p["mul"], shift=p["shift"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out,
                          [token_demand("spatial_pool", x, out, factor=p["kh"])])
            elif s.op == "window_sum2d":
                if p["stride"] != 1 or p["pad_h"] != p["kh"] // 2 or p["pad_w"] != p["kw"] // 2:
                    raise ConfigError(f"step {s.name!r}: only stride-1 centred strips have a "
                                      f"kernel (StripAvgPool)")
                unit = StripAvgPool(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                                    lanes=lanes_in, kernel_h=p["kh"], kernel_w=p["kw"],
                                    in_width=x.width, out_width=out.width, mul=1, shift=0)
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out,
                          [token_demand("strip_pool", x, out, reach=(p["kh"] // 2, p["kw"] // 2))])
            elif s.op == "channel_group_avgpool":
                unit = ChannelGroupAvgPool(channels=x.channels, group=p["group"], lanes=lanes_in,
                                           in_width=x.width, out_width=out.width, mul=p["mul"],
                                           shift=p["shift"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "tile_channels":
                unit = ChannelTile(channels=x.channels, lanes=lanes_in, width=x.width,
                                   copies=p["copies"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out, [same])
            elif s.op == "nearest_upsample":
                unit = NearestUpsample(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                                       lanes=lanes_in, data_width=x.width, factor=p["factor"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out,
                          [token_demand("whole_image", x, out)])
            elif s.op == "global_avgpool":
                unit = GlobalAvgPool(tokens=x.tokens, channels=x.channels, lanes=lanes_in,
                                     in_width=x.width, out_width=out.width, mul=p["mul"],
                                     shift=p["shift"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out,
                          [token_demand("whole_image", x, out)])
            elif s.op == "token_patches":
                unit = PatchUnfold(height=p["grid_h"], width=p["grid_w"], channels=x.channels,
                                   size=p["size"], in_simd=fold["simd"], out_simd=fold["lanes"])
                self._add(s, unit, [("i", s.inputs[0], lanes_in)], lanes_out,
                          [token_demand("whole_image", x, out)])
            elif s.op == "and_popcount_context":
                scores, mask, _ = self.groups[s.name]
                q, k = scores.inputs
                v = s.inputs[1]
                heads = scores.params["heads"]
                unit = BinaryAttention(heads=heads, head_dim=scores.params["head_dim"],
                                       query_tokens=t[q].tokens, key_tokens=t[k].tokens,
                                       lut=[int(e) for e in _array(mask, "lut")],
                                       theta=mask.params["theta"],
                                       theta_shift=mask.params["theta_shift"],
                                       keys_per_cycle=fold["keys_per_cycle"],
                                       lanes=fold["lanes"])
                full = t[q].channels
                self._add(s, unit, [("q", q, full), ("k", k, full), ("v", v, full)], lanes_out,
                          [token_demand("pointwise", t[q], out),
                           token_demand("whole_image", t[k], out),
                           token_demand("whole_image", t[v], out)])
            else:
                raise ConfigError(f"step {s.name!r}: operation {s.op!r} has no hardware kernel")

    def _edges(self) -> list[Edge]:
        edges = []
        first = self.model.steps[0].name
        for node in self.nodes.values():
            for port, tensor, lanes in node.inputs:
                if tensor not in self.produced_lanes or (tensor not in self.nodes
                                                         and tensor != first):
                    raise ConfigError(f"step {node.name!r} reads {tensor!r}, which has no "
                                      f"stream in hardware")
                edges.append(Edge(tensor, node.name, port, lanes))
        edges.append(Edge(self.logits, None, "o", self.produced_lanes[self.logits]))
        return edges

    def fifos(self) -> list[tuple[Edge, str, int, int]]:
        """Every FIFO as ``elaborate`` builds it: ``(edge, side, lanes, depth)``, ``side``
        ``"before converter"`` (words of the producer's lanes) or ``"after converter"``
        (the consumer's lanes), ``depth`` in words."""
        built = []
        for edge in self.edges:
            for side, depth, lanes in (("before converter", edge.input_fifo_depth,
                                        self.produced_lanes[edge.tensor]),
                                       ("after converter", edge.fifo_depth, edge.lanes)):
                if depth:
                    built.append((edge, side, lanes, depth))
        return built

    # -- hardware -----------------------------------------------------------------------

    def _source_port(self, tensor: str):
        if tensor == self.model.steps[0].name:
            return wiring.flipped(self.i)
        return self.nodes[tensor].component.o

    def elaborate(self, platform) -> Module:
        m = Module()
        for name, node in self.nodes.items():
            m.submodules[_module_name(name)] = node.component
        by_tensor: dict[str, list[Edge]] = {}
        for edge in self.edges:
            by_tensor.setdefault(edge.tensor, []).append(edge)
        for tensor, edges in by_tensor.items():
            info = self.tensors[tensor]
            layout = self._stream_shape(tensor)
            source = self._source_port(tensor)
            if len(edges) == 1:
                sources = [source]
            else:
                fork = StreamFork(layout, len(edges))
                m.submodules[_module_name(f"{tensor}.fork")] = fork
                wiring.connect(m, source, fork.i)
                sources = [fork.output(k) for k in range(len(edges))]
            for k, (edge, src) in enumerate(zip(edges, sources)):
                produced = self.produced_lanes[tensor]
                if edge.lanes != produced or edge.fifo_depth or edge.input_fifo_depth:
                    link = StreamEdge(kind=info.kind, width=info.width, channels=info.channels,
                                      in_lanes=produced, out_lanes=edge.lanes,
                                      input_depth=edge.input_fifo_depth,
                                      output_depth=edge.fifo_depth)
                    m.submodules[_module_name(f"{tensor}.edge{k}")] = link
                    wiring.connect(m, src, link.i)
                    src = link.o
                if edge.consumer is None:
                    self._output(m, src)
                else:
                    wiring.connect(m, src, getattr(self.nodes[edge.consumer].component, edge.port))
        for k, name in enumerate(self.tap_names):
            port = self.nodes[name].component.o
            m.d.comb += [getattr(self, f"tap{k}_payload").eq(port.payload),
                         getattr(self, f"tap{k}_valid").eq(port.valid & port.ready)]
        return m

    def _output(self, m: Module, logits) -> None:
        layout = self._stream_shape(self.logits)
        fork = StreamFork(layout, 2)
        m.submodules.logits_fork = fork
        m.submodules.argmax = self.argmax
        wiring.connect(m, logits, fork.i)
        wiring.connect(m, fork.o0, wiring.flipped(self.o))
        wiring.connect(m, fork.o1, self.argmax.i)
        wiring.connect(m, self.argmax.o, wiring.flipped(self.cls))


def _module_name(name: str) -> str:
    return "u_" + name.replace(".", "_")
