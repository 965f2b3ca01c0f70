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
from amaranth.hdl import Const, Module, Mux, ShapeCastable, Signal, Value
from amaranth.lib import data, memory

from binaryvit.errors import ConfigError

__all__ = ["constant_rom", "row_counter"]


def constant_rom(m: Module, name: str, fields: Mapping[str, tuple[torch.Tensor, ShapeCastable]],
                 lanes: int, *, addr: Value, en: Value) -> data.View | data.Const:
    """Add a ROM to ``m`` and return its read data, a ``StructLayout({name: ArrayLayout(shape, lanes)})`` view.

    Parameters
    ----------
    m : Module
        Where the ROM goes (as submodule ``name``).
    fields : dict name → (values, shape)
        ``values`` a flat int tensor whose length is a multiple of ``lanes`` (the same
        length for every field); ``shape`` the element shape (values must fit it; the
        kernels check this with ``parameter_checks`` before calling).
    lanes : int
        Elements of each field per row.
    addr, en : Value
        Row address and read enable; the data of row ``addr`` appears on the cycle after
        one with ``en`` high, and holds while ``en`` is low.

    A one-row table needs no memory and no address: the "read data" is then a constant,
    which equals what the read would give on every cycle.
    """
    layout = data.StructLayout({field: data.ArrayLayout(shape, lanes)
                                for field, (_, shape) in fields.items()})
    lengths = {len(values) for values, _ in fields.values()}
    if len(lengths) != 1 or next(iter(lengths)) % lanes:
        raise ConfigError(f"constant_rom {name}: field lengths {sorted(lengths)} are not one "
                          f"multiple of lanes={lanes}")
    depth = next(iter(lengths)) // lanes
    columns = {field: values.reshape(depth, lanes).tolist() for field, (values, _) in fields.items()}
    init = [{field: columns[field][row] for field in fields} for row in range(depth)]
    if depth == 1:
        return layout.const(init[0])
    m.submodules[name] = rom = memory.Memory(shape=layout, depth=depth, init=init)
    port = rom.read_port()
    m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
    return port.data


def row_counter(m: Module, step: Value, rows: int, name: str = "row") -> Value:
    """A counter over ``0 … rows − 1`` that advances on cycles where ``step`` is high and wraps.

    Kernels drive a ROM's address with it: one row per word, wrapping per token (per-channel
    constants) or per image (per-token constants). With ``rows = 1`` it is the constant 0.
    """
    if rows == 1:
        return Const(0, 1)
    counter = Signal(range(rows), name=name)
    with m.If(step):
        m.d.sync += counter.eq(Mux(counter == rows - 1, 0, counter + 1))
    return counter
