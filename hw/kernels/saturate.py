"""Saturation in logic: clamp a signed value to a signed output width, as ``intref.saturate``."""
from __future__ import annotations

from amaranth.hdl import Mux, Value

from binaryvit.golden.intref.fixed_point import signed_range


def saturate(value: Value, width: int) -> Value:
    """``value`` clamped to ``[−2^(width−1), 2^(width−1) − 1]`` (combinational).

    The result still has ``value``'s shape; assigning it to a ``signed(width)`` signal is
    exact. When ``value`` already fits, no comparator is built.
    """
    low, high = signed_range(width)
    shape = value.shape()
    if shape.signed and shape.width <= width:
        return value
    if not shape.signed and shape.width < width:
        return value
    clamp_high = Mux(value > high, high, value)
    return Mux(value < low, low, clamp_high) if shape.signed else clamp_high
