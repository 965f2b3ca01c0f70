"""A reusable formal harness: the stream protocol of any kernel, as Assert/Assume/Cover.

``StreamProtocolHarness(kernel, spec)`` wraps one kernel (a ``wiring.Component`` whose
streams are ``amaranth.lib.stream`` signatures) and leaves every input stream's ``valid``
and ``payload`` and every output stream's ``ready`` free: the solver drives them.

Assumptions (the environment):
- ``rst`` stays low (the proof starts from the registers' initial values);
- every input stream obeys the protocol: once ``valid`` is up it stays up, with the same
  payload, until ``ready`` takes the word;
- with ``spec.frame`` set: ``last`` only arrives on the final word of a frame (the kernel's
  word period, e.g. the words of one token), as the harness counts input words.

Assertions (what is proven):
- ``valid_held``: every output's ``valid`` stays up until ``ready`` takes the word;
- ``payload_stable``: while an output is stalled (``valid & ~ready``) its payload does not
  change;
- ``balance`` (with ``spec.outputs``): the harness counts transfers on the primary input
  (× ``out_words``) minus transfers on each output (× ``in_words``); this balance must
  always equal ``pending`` — the words the kernel holds, read from its own registers
  (``Probe``) — and stay within ``low … capacity``. A word dropped, duplicated or
  invented breaks the equality on the cycle it happens;
- ``framing`` (with ``pending_last``): the same balance for words that carry ``last``:
  a ``last`` never disappears, appears or moves to another frame;
- ``lockstep`` (with ``spec.lockstep``): secondary inputs transfer exactly when the primary
  one does;
- ``frame_position`` (with ``spec.frame``): the kernel's own position counter equals the
  harness's count of input words within the frame;
- ``invariant`` (``spec.invariants``): facts about the kernel's registers the induction
  step needs, proven like the rest.

Covers, reached in a separate SymbiYosys ``cover`` run (so no proof passes because the
assumptions leave nothing to happen): a transfer on every output, and a word with
``last`` where lasts are balanced.

Tying the harness counters to the kernel's registers is what makes the balance provable by
k-induction: without it an unreachable state (a balance of 3 while the kernel is empty)
would fail the induction step. An account without ``pending`` only keeps the balance in
range, which is for bounded (``bmc``) checks (see ``docs/verification.md``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import (Assert, Assume, Cover, Elaboratable, Fragment, Module, ResetSignal,
                          Signal, Value)
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

__all__ = ["Probe", "OutputAccount", "StreamSpec", "StreamProtocolHarness", "stream_ports"]


class Probe:
    """Finds a kernel's internal signals by name in its elaborated fragment tree.

    ``probe.kernel`` is the kernel (its ports: ``probe.kernel.o.valid``);
    ``probe("valid1")`` is the signal named ``valid1`` driven in the kernel's own module;
    ``probe("input_fifo.level")`` descends into the submodule named ``input_fifo``. A name
    that matches no signal, or several, raises ``KeyError`` (so a renamed register fails
    the proof's construction loudly instead of silently weakening it).
    """

    def __init__(self, kernel: wiring.Component, fragment: Fragment):
        self.kernel, self.fragment = kernel, fragment

    def __call__(self, path: str) -> Value:
        *subs, name = path.split(".")
        fragment = self.fragment
        for sub in subs:
            children = {n: f for f, n, _ in fragment.subfragments}
            if sub not in children:
                raise KeyError(f"{path}: no submodule {sub!r} (have {sorted(map(str, children))})")
            fragment = Fragment.get(children[sub], None)
        found = list({id(s): s for s in _driven_signals(fragment) if s.name == name}.values())
        if len(found) != 1:
            raise KeyError(f"{path}: {len(found)} signals named {name!r} in the kernel")
        return found[0]


def _driven_signals(fragment: Fragment):
    for statements in fragment.statements.values():
        for statement in statements:
            yield from statement._lhs_signals()


@dataclass(frozen=True)
class OutputAccount:
    """The word balance of one output against the primary input.

    ``balance = out_words · (input transfers) − in_words · (output transfers)``: one
    period of the kernel takes ``in_words`` input words and gives ``out_words`` output
    words. ``pending(probe)`` is what the balance must equal — the kernel's held work in
    the same unit; ``low … capacity`` its range (``low`` is negative for a kernel whose
    outputs take a word before the input lets it go, like the eager fork).
    ``pending_last(probe)``, when given, is the number of ``last`` words still owed (input
    lasts taken minus output lasts given).

    With ``pending = None`` only the range is asserted: not an inductive invariant, so such
    an account is for bounded (``bmc``) checks.
    """

    port: str
    in_words: int
    out_words: int
    pending: Callable[[Probe], Value] | None
    capacity: int
    pending_last: Callable[[Probe], Value] | None = None
    low: int = 0


@dataclass(frozen=True)
class StreamSpec:
    """What the harness checks on one kernel.

    ``primary``: the input the balances count (default ``i``); ``lockstep``: inputs that
    must transfer on exactly the cycles ``primary`` does; ``outputs``: balances;
    ``frame = (period, position)``: inputs carry ``last`` only on the final word of each
    ``period`` words, and the kernel's position ``position(probe)`` must equal the harness's
    position within the period (``None`` when the kernel has no such counter);
    ``frame_exact``: ``last`` on exactly the final word of every frame (kernels whose frame
    is the image and whose output ``last`` is counted, not copied); ``invariants``: extra
    facts about the kernel's registers, asserted (so proven too), that the induction needs.
    """

    primary: str = "i"
    lockstep: tuple[str, ...] = ()
    outputs: tuple[OutputAccount, ...] = ()
    frame: tuple[int, Callable[[Probe], Value] | None] | None = None
    frame_exact: bool = False
    invariants: Callable[[Probe], list[tuple[Value, str]]] | None = None


def stream_ports(component: wiring.Component) -> tuple[list[str], list[str]]:
    """Names of the component's input and output stream ports, in signature order."""
    inputs, outputs = [], []
    for name, member in component.signature.members.items():
        if not member.is_port and isinstance(member.signature, stream.Signature):
            (inputs if member.flow == In else outputs).append(name)
    return inputs, outputs


class _Elaborated(Elaboratable):
    def __init__(self, fragment: Fragment):
        self.fragment = fragment

    def elaborate(self, platform):
        return self.fragment


def _balance_width(capacity: int, step: int) -> int:
    # Room for the asserted range plus one step beyond it either way, so an overshoot is
    # seen as an overshoot and never wraps back into range.
    return max(capacity + step, step).bit_length() + 2


class StreamProtocolHarness(Elaboratable):
    """The kernel with free stimulus and the properties above (see the module docstring).

    ``ports`` lists the harness's free inputs (for ``rtlil.convert``).
    """

    def __init__(self, kernel: wiring.Component, spec: StreamSpec):
        self.kernel, self.spec = kernel, spec
        self.inputs, self.outputs = stream_ports(kernel)
        for name in (spec.primary, *spec.lockstep):
            if name not in self.inputs:
                raise KeyError(f"{name}: not an input stream of {type(kernel).__name__}")
        for account in spec.outputs:
            if account.port not in self.outputs:
                raise KeyError(f"{account.port}: not an output stream of {type(kernel).__name__}")
        self.free = {}
        for name in self.inputs:
            port = getattr(kernel, name)
            self.free[f"{name}_valid"] = Signal(name=f"{name}_valid")
            self.free[f"{name}_payload"] = Signal(len(port.payload.as_value()),
                                                  name=f"{name}_payload")
        for name in self.outputs:
            self.free[f"{name}_ready"] = Signal(name=f"{name}_ready")
        self.ports = list(self.free.values())
        self.properties: dict[tuple[str, int], str] = {}

    def _assert(self, test, message: str):
        """``Assert(test, message)``, remembered by source line: SymbiYosys names a failed
        assertion by its line, ``failed_properties`` turns that back into ``message``."""
        statement = Assert(test, message, src_loc_at=1)
        self.properties[statement.src_loc[:2]] = message
        return statement

    def failed_properties(self, log: str) -> list[str]:
        """The messages (``"balance: o"`` …) of the assertions a SymbiYosys log reports
        failed, without repeats, in order."""
        found = []
        for path, line in re.findall(r"Assert failed in \S+: (\S+):(\d+)", log):
            message = self.properties.get((path, int(line)), f"{path}:{line}")
            if message not in found:
                found.append(message)
        return found

    def elaborate(self, platform) -> Module:
        m = Module()
        kernel, spec = self.kernel, self.spec
        fragment = Fragment.get(kernel, platform)
        m.submodules.dut = _Elaborated(fragment)
        probe = Probe(kernel, fragment)
        if getattr(kernel, "probe_inner", False):  # a wrapper (mutations.Mutant): probe inside
            probe = Probe(kernel, Fragment.get(
                {n: f for f, n, _ in fragment.subfragments}["inner"], platform))

        m.d.comb += Assume(~ResetSignal())
        started = Signal()  # 0 only on the initial cycle: there is no previous cycle yet
        m.d.sync += started.eq(1)

        def past(value: Value, name: str) -> Signal:
            reg = Signal(len(value), name=f"past_{name}")
            m.d.sync += reg.eq(value)
            return reg

        transfers = {}
        for name in self.inputs:
            port = getattr(kernel, name)
            payload = port.payload.as_value()
            m.d.comb += [port.valid.eq(self.free[f"{name}_valid"]),
                         payload.eq(self.free[f"{name}_payload"])]
            stalled = past(port.valid & ~port.ready, f"{name}_stalled")
            old = past(payload, f"{name}_payload")
            with m.If(started & stalled):
                m.d.comb += Assume(port.valid & (payload == old))
            transfers[name] = port.valid & port.ready

        for name in self.outputs:
            port = getattr(kernel, name)
            payload = port.payload.as_value()
            m.d.comb += port.ready.eq(self.free[f"{name}_ready"])
            stalled = past(port.valid & ~port.ready, f"{name}_stalled")
            old = past(payload, f"{name}_payload")
            with m.If(started & stalled):
                m.d.comb += [self._assert(port.valid, f"valid_held: {name}"),
                             self._assert(payload == old, f"payload_stable: {name}")]
            transfers[name] = port.valid & port.ready
            m.d.comb += Cover(transfers[name], f"transfer: {name}")

        primary = getattr(kernel, spec.primary)
        for name in spec.lockstep:
            m.d.comb += self._assert(transfers[name] == transfers[spec.primary], f"lockstep: {name}")

        if spec.frame is not None:
            period, counter = spec.frame
            position = Signal(range(max(period, 2)), name="frame_position")
            with m.If(transfers[spec.primary]):
                m.d.sync += position.eq(0 if period == 1 else
                                        (position + 1) % period)
            at_end = position == period - 1
            if spec.frame_exact:  # ``last`` on exactly the final word of every frame
                m.d.comb += Assume(~primary.valid | (primary.payload.last == at_end))
            else:                 # ``last`` on no word but a frame's final one
                m.d.comb += Assume(~(primary.valid & primary.payload.last) | at_end)
            m.d.comb += self._assert(position < period, "frame_position: range")
            if counter is not None:
                m.d.comb += self._assert(counter(probe) == position, "frame_position: kernel")

        if spec.invariants is not None:
            for test, text in spec.invariants(probe):
                m.d.comb += self._assert(test, f"invariant: {text}")

        in_last = transfers[spec.primary] & primary.payload.last
        for account in spec.outputs:
            port = getattr(kernel, account.port)
            width = _balance_width(max(account.capacity, -account.low),
                                   max(account.in_words, account.out_words))
            balance = Signal(range(-(1 << width), 1 << width), name=f"balance_{account.port}")
            m.d.sync += balance.eq(balance
                                   + transfers[spec.primary] * account.out_words
                                   - transfers[account.port] * account.in_words)
            if account.pending is not None:
                m.d.comb += self._assert(balance == account.pending(probe),
                                         f"balance: {account.port}")
            m.d.comb += self._assert((balance >= account.low) & (balance <= account.capacity),
                                     f"balance_range: {account.port}")
            bounded = account.pending is None
            if account.pending_last is not None or bounded:
                owed = Signal(range(-(1 << width), 1 << width), name=f"lasts_owed_{account.port}")
                out_last = transfers[account.port] & port.payload.last
                m.d.sync += owed.eq(owed + in_last - out_last)
                if not bounded:
                    m.d.comb += self._assert(owed == account.pending_last(probe),
                                             f"framing: {account.port}")
                m.d.comb += [self._assert((owed >= min(account.low, 0))
                                          & (owed <= account.capacity),
                                          f"framing_range: {account.port}"),
                             Cover(out_last, f"last: {account.port}")]
        return m
