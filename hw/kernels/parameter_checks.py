"""Construction-time checks shared by the pointwise kernels and the fixed-point MAC units.

They build on the integer reference's own checks (``golden.intref.validation``: integers,
shifts, widths, tensor conversion) and add what a kernel needs: fold factors, declared
constant widths, bit tables.

Each check returns the validated value (a plain ``int`` or an ``int64`` tensor) or raises
``ConfigError`` / ``FoldingError`` with a message that names the parameter and its valid
range, so a bad configuration fails where the kernel is built, not deep in elaboration.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.golden.intref import validation
from binaryvit.golden.intref.bounds import bits_needed
from binaryvit.golden.intref.fixed_point import signed_range
from binaryvit.golden.intref.validation import as_int_tensor, divisors, is_integer

MIN_WIDTH = 2
MAX_WIDTH = 63


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``high=None``: no upper bound)."""
    if not is_integer(value) or value < low or (high is not None and value > high):
        valid = f"in [{low}, {high}]" if high is not None else f"≥ {low}"
        raise ConfigError(f"{name}: expected an integer {valid}, got {value!r}")
    return int(value)


def check_width(value: Any, name: str) -> int:
    """A signed word width in ``[2, 63]``, the range the integer reference accepts."""
    return validation.check_width(value, name, allow_none=False)


def check_lanes(lanes: Any, lanes_name: str, total: int, total_name: str) -> int:
    """A fold factor: a positive integer dividing ``total``; the error lists the valid ones."""
    lanes = check_int(lanes, lanes_name, 1)
    if total % lanes:
        raise FoldingError(f"{lanes_name}: must divide {total_name} = {total}; "
                           f"valid values are {divisors(total)}, got {lanes}")
    return lanes


def check_constants(values: Any, name: str, shape: tuple[int, ...], width: int) -> torch.Tensor:
    """Integer constants of exactly ``shape`` that fit ``signed(width)``, as ``int64``.

    Floats, bools, a wrong shape or a value outside ``[−2^(width−1), 2^(width−1) − 1]``
    raise ``ConfigError`` naming ``name``.
    """
    values = as_int_tensor(values, name, error=ConfigError,
                           what=f"integer constants of shape {tuple(shape)}")
    if tuple(values.shape) != tuple(shape):
        raise ConfigError(f"{name}: expected shape {tuple(shape)}, got {tuple(values.shape)}")
    low, high = signed_range(width)
    if values.numel() and (int(values.min()) < low or int(values.max()) > high):
        raise ConfigError(f"{name}: values must fit signed({width}), i.e. [{low}, {high}]; "
                          f"got range [{int(values.min())}, {int(values.max())}]")
    return values


def check_bits(values: Any, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """0/1 (or bool) constants of exactly ``shape``, as ``int64``."""
    if isinstance(values, torch.Tensor) and values.dtype == torch.bool:
        values = values.to(torch.int64)
    values = check_constants(values, name, shape, MAX_WIDTH)
    if values.numel() and bool(((values != 0) & (values != 1)).any()):
        raise ConfigError(f"{name}: expected bits (0 or 1), found other values")
    return values


def signed_width_of(*bounds: int) -> int:
    """The smallest signed width holding every integer in ``bounds`` (at least 2)."""
    return max(MIN_WIDTH, bits_needed(min(bounds), max(bounds)))


def check_declared_constants(values: Any, name: str, shape: tuple[int, ...],
                             width: int | None) -> tuple[torch.Tensor, int]:
    """Constants and their signed width: the declared ``width`` (checked, named
    ``<name>_width``), or the smallest width that holds them when ``width`` is None."""
    if width is not None:
        width = check_width(width, f"{name}_width")
        return check_constants(values, name, shape, width), width
    t = check_constants(values, name, shape, MAX_WIDTH)
    return t, (signed_width_of(int(t.min()), int(t.max())) if t.numel() else MIN_WIDTH)


def matrix_shape(values: Any, name: str, layout: str) -> tuple[int, int]:
    """The shape of a non-empty 2-D constant table, or ``ConfigError`` naming ``layout``."""
    try:
        shape = tuple(torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor)
                                      else values).shape)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{name}: expected a {layout} integer table ({exc})") from None
    if len(shape) != 2 or 0 in shape:
        raise ConfigError(f"{name}: expected a non-empty {layout} table, got shape {shape}")
    return shape
