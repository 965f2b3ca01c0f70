"""Deliberately broken kernels: each proof must fail on them, or its property is vacuous.

A mutant wraps a real kernel (as submodule ``inner``, which the harness's ``Probe``
reads, so the same ``pending`` invariants apply) and breaks one thing on one output
stream, ``o`` unless named:

- ``drop_valid``: ``valid`` falls on the second stalled cycle (breaks *valid held*);
- ``change_payload``: the payload's bit 0 flips while stalled (breaks *payload stable*);
- ``lose_word``: every second word is taken from the kernel and never shown (breaks the
  *balance*: a word lost);
- ``duplicate_word``: every word is given twice (breaks the *balance*: a word duplicated);
- ``drop_last``: ``last`` is cleared on every output word (breaks *framing*);
- ``early_input``: the secondary input ``residual`` is also taken on cycles the kernel
  does not take it (breaks *lockstep*).

``MUTANTS`` maps each name to the property kind its proof must report failing.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from binaryvit.sim.formal.stream_properties import stream_ports

__all__ = ["Mutant", "MUTANTS"]

MUTANTS = {"drop_valid": "valid_held", "change_payload": "payload_stable",
           "lose_word": "balance", "duplicate_word": "balance", "drop_last": "framing",
           "early_input": "lockstep"}


class Mutant(wiring.Component):
    """``kernel`` with one fault ``kind`` (a key of ``MUTANTS``) on output ``port``."""

    probe_inner = True  # the harness reads the wrapped kernel's registers

    def __init__(self, kernel: wiring.Component, kind: str, port: str = "o"):
        if kind not in MUTANTS:
            raise KeyError(f"{kind}: expected one of {sorted(MUTANTS)}")
        self.inner, self.kind, self.port = kernel, kind, port
        super().__init__(kernel.signature)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.inner = inner = self.inner
        inputs, outputs = stream_ports(inner)
        for name in inputs:
            if not (self.kind == "early_input" and name == "residual"):
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(inner, name))
        for name in outputs:
            if name != self.port:
                wiring.connect(m, getattr(inner, name), wiring.flipped(getattr(self, name)))
        src, dst = getattr(inner, self.port), getattr(self, self.port)
        payload = src.payload.as_value()
        stalled = Signal()  # the previous cycle was a stall of the output
        m.d.sync += stalled.eq(dst.valid & ~dst.ready)
        toggle = Signal()
        m.d.comb += [dst.payload.as_value().eq(payload), dst.valid.eq(src.valid),
                     src.ready.eq(dst.ready)]
        if self.kind == "drop_valid":
            m.d.comb += dst.valid.eq(src.valid & ~stalled)
        elif self.kind == "change_payload":
            m.d.comb += dst.payload.as_value().eq(payload ^ stalled)
        elif self.kind == "lose_word":
            with m.If(src.valid & src.ready):
                m.d.sync += toggle.eq(~toggle)
            with m.If(toggle):
                m.d.comb += [dst.valid.eq(0), src.ready.eq(1)]
        elif self.kind == "duplicate_word":
            with m.If(dst.valid & dst.ready):
                m.d.sync += toggle.eq(~toggle)
            m.d.comb += src.ready.eq(dst.ready & toggle)
        elif self.kind == "drop_last":
            m.d.comb += dst.payload.last.eq(0)
        elif self.kind == "early_input":
            outer, kept = self.residual, inner.residual
            m.d.comb += [kept.valid.eq(outer.valid), kept.payload.eq(outer.payload),
                         outer.ready.eq(kept.ready | inner.i.ready)]
        return m
