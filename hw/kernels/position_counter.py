"""Position counters of the streaming kernels, never zero bits wide.

An extent of 1 (one word per token, a 1-token row…) would give ``Signal(range(1))``, a
0-bit signal that Amaranth writes as the Verilog range ``[-1:0]`` (Verilator ASCRANGE). A
1-bit counter that stays at 0 costs nothing after synthesis and keeps the Verilog clean.
For the same reason the kernels give their memories at least 2 entries (a 1-entry memory
has a 0-bit address).
"""
from __future__ import annotations

from amaranth.hdl import Signal


def position_counter(extent: int, name: str) -> Signal:
    """An unsigned signal that counts ``0 … extent − 1`` (at least 1 bit wide)."""
    return Signal(range(max(extent, 2)), name=name)
