"""Read-only tables of per-channel (or per-token-and-channel) constants for streaming kernels.

A kernel that processes ``lanes`` channels per word needs, on each word, the ``lanes``
constants of that word's channel group. ``constant_rom`` lays constants out so that row
``r`` holds elements ``r·lanes … r·lanes + lanes − 1`` of every field, and returns an
``amaranth.lib.memory.Memory`` (synchronous read: data one cycle after the address, which
lines up with the kernel's input register). The init data is inlined in the Verilog.
"""
from __future__ import annotations

from typing import Mapping

import torch
from amaranth.hdl import Module, Mux, ShapeCastable, Signal, Value
from amaranth.lib import data, memory

from binaryvit.errors import ConfigError

__all__ = ["constant_rom", "row_counter"]


def constant_rom(fields: Mapping[str, tuple[torch.Tensor, ShapeCastable]], lanes: int) -> memory.Memory:
    """A ROM whose rows are ``StructLayout({name: ArrayLayout(shape, lanes)})``.

    Parameters
    ----------
    fields : dict name → (values, shape)
        ``values`` a flat int tensor whose length is a multiple of ``lanes`` (the same
        length for every field); ``shape`` the element shape (values must fit it; the
        kernels check this with ``parameter_checks`` before calling).
    lanes : int
        Elements of each field per row.
    """
    layout = data.StructLayout({name: data.ArrayLayout(shape, lanes)
                                for name, (_, shape) in fields.items()})
    lengths = {len(values) for values, _ in fields.values()}
    if len(lengths) != 1 or next(iter(lengths)) % lanes:
        raise ConfigError(f"constant_rom: field lengths {sorted(lengths)} are not one multiple "
                         f"of lanes={lanes}")
    depth = next(iter(lengths)) // lanes
    columns = {name: values.reshape(depth, lanes).tolist() for name, (values, _) in fields.items()}
    init = [{name: columns[name][row] for name in fields} for row in range(depth)]
    # A one-row ROM would have a zero-width address, which Verilog cannot declare cleanly;
    # a copy of the row keeps the address one bit wide (and always 0).
    if depth == 1:
        init.append(init[0])
    return memory.Memory(shape=layout, depth=len(init), init=init)


def row_counter(m: Module, step: Value, rows: int, name: str = "row") -> Signal:
    """A counter over ``0 … rows − 1`` that advances on cycles where ``step`` is high and wraps.

    Kernels drive a ROM's address with it: one row per word, wrapping per token (per-channel
    constants) or per image (per-token constants). With ``rows = 1`` it stays 0.
    """
    counter = Signal(range(max(rows, 2)), name=name)
    if rows > 1:
        with m.If(step):
            m.d.sync += counter.eq(Mux(counter == rows - 1, 0, counter + 1))
    return counter
