"""The Amaranth top of the accelerator: elaborates a finished :class:`NetworkPlan`.

``BinaryViTAccelerator(plan)`` instantiates the plan's kernels
(``binaryvit.hw.network.planner.plan_network`` built them, one per step of the
:class:`~binaryvit.golden.intref.intmodel.IntModel`, FINN style: every layer on chip,
weights and constants in ROMs), connects them with streams, and builds each edge as the
plan says: a width converter wherever a producer's words hold a different number of
elements than its consumer reads, a fork with one FIFO per consumer wherever several
steps read one tensor, the FIFO depths the plan's sizing chose (see ``docs/network.md``).
Which kernel each op becomes is its spec's business (``binaryvit.hw.ops``).

Ports of the top: ``i`` pixels (``fixed_point_layout(pixel_width, lanes,
is_signed=False)``, patches in raster order, channel-major inside a patch as
``golden.intref.int_network.unfold_patches``), ``o`` logits (``fixed_point_layout(logit_width,
pe)``) and ``cls`` the class (``{data: unsigned, last}``, one word per image). With
``taps``, each tapped step's output stream is mirrored on ``tap<k>_payload`` /
``tap<k>_valid`` (``valid`` = a transfer on that cycle), for the divergence finder.
"""
from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from binaryvit.errors import ConfigError
from binaryvit.hw.kernels.argmax import ArgMax
from binaryvit.hw.network.plan import NetworkPlan
from binaryvit.hw.streams.stream_edge import StreamEdge
from binaryvit.hw.streams.stream_fork import StreamFork
from binaryvit.hw.streams.stream_width import element_layout

__all__ = ["BinaryViTAccelerator", "instance_name"]


class BinaryViTAccelerator(wiring.Component):
    """The whole BinaryViT as one streaming component (see the module docstring).

    Parameters
    ----------
    plan : NetworkPlan
        From ``binaryvit.hw.network.planner.plan_network``.
    taps : sequence of step names, optional
        Steps whose output streams are mirrored on ``tap<k>_*`` ports (``"input"`` is not
        tappable; attention scores and masks have no stream, tap the context step).

    Attributes
    ----------
    plan; tap_names : the tapped steps in port order; argmax : the class kernel. The
    plan's ``model``, ``tensors``, ``nodes``, ``edges``, ``produced_lanes``, ``logits``,
    ``input_lanes`` and ``schedule`` are read through.
    """

    def __init__(self, plan: NetworkPlan, *, taps: Sequence[str] = ()):
        self.plan = plan
        pixels = plan.tensors["input"]
        logits = plan.tensors[plan.logits]
        self.argmax = ArgMax(classes=logits.channels, lanes=plan.produced_lanes[plan.logits],
                             width=logits.width)
        ports = {
            "i": In(stream.Signature(element_layout("pixel", pixels.width, plan.input_lanes))),
            "o": Out(stream.Signature(element_layout("fixed", logits.width,
                                                     plan.produced_lanes[plan.logits]))),
            "cls": Out(stream.Signature(self.argmax.out_layout)),
        }
        self.tap_names = list(taps)
        for k, name in enumerate(self.tap_names):
            if name not in plan.nodes:
                raise ConfigError(f"taps: {name!r} is not a step with an output stream; "
                                  f"tappable steps are those of the model except "
                                  f"constants, attention scores and masks")
            ports[f"tap{k}_payload"] = Out(self._stream_shape(name))
            ports[f"tap{k}_valid"] = Out(1)
        super().__init__(ports)

    # -- the plan, read through -----------------------------------------------------------

    model = property(lambda self: self.plan.model)
    folding = property(lambda self: self.plan.folding)
    tensors = property(lambda self: self.plan.tensors)
    nodes = property(lambda self: self.plan.nodes)
    edges = property(lambda self: self.plan.edges)
    produced_lanes = property(lambda self: self.plan.produced_lanes)
    logits = property(lambda self: self.plan.logits)
    input_lanes = property(lambda self: self.plan.input_lanes)
    schedule = property(lambda self: self.plan.schedule)

    def _stream_shape(self, tensor: str):
        info = self.plan.tensors[tensor]
        return element_layout(info.kind, info.width, self.plan.produced_lanes[tensor])

    # -- hardware -----------------------------------------------------------------------

    def _source_port(self, tensor: str):
        if tensor == self.model.steps[0].name:
            return wiring.flipped(self.i)
        return self.nodes[tensor].component.o

    def elaborate(self, platform) -> Module:
        m = Module()
        for name, node in self.nodes.items():
            m.submodules[instance_name(name)] = node.component
        for tensor, edges in self.plan.edges_by_tensor().items():
            info = self.tensors[tensor]
            layout = self._stream_shape(tensor)
            source = self._source_port(tensor)
            if len(edges) == 1:
                sources = [source]
            else:
                fork = StreamFork(layout, len(edges))
                m.submodules[instance_name(f"{tensor}.fork")] = fork
                wiring.connect(m, source, fork.i)
                sources = [fork.output(k) for k in range(len(edges))]
            for k, (edge, src) in enumerate(zip(edges, sources)):
                produced = self.produced_lanes[tensor]
                if edge.lanes != produced or edge.fifo_depth or edge.input_fifo_depth:
                    link = StreamEdge(kind=info.kind, width=info.width, channels=info.channels,
                                      in_lanes=produced, out_lanes=edge.lanes,
                                      input_depth=edge.input_fifo_depth,
                                      output_depth=edge.fifo_depth)
                    m.submodules[instance_name(f"{tensor}.edge{k}")] = link
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


def instance_name(name: str) -> str:
    """The Verilog instance name of a step's kernel (or an edge's part) inside the top."""
    return "u_" + name.replace(".", "_")
