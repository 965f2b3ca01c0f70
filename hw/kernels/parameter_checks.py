"""Construction-time checks shared by the pointwise kernels and the fixed-point MAC units.

Each check returns the validated value (a plain ``int`` or an ``int64`` tensor) or raises
``ConfigError`` / ``FoldingError`` with a message that names the parameter and its valid
range, so a bad configuration fails where the kernel is built, not deep in elaboration.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from binaryvit.errors import ConfigError, FoldingError

MIN_WIDTH = 2
MAX_WIDTH = 63
MAX_SHIFT = 62


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``high=None``: no upper bound)."""
    if not _is_int(value) or value < low or (high is not None and value > high):
        valid = f"in [{low}, {high}]" if high is not None else f"≥ {low}"
        raise ConfigError(f"{name}: expected an integer {valid}, got {value!r}")
    return int(value)


def check_width(value: Any, name: str) -> int:
    """A signed word width in ``[2, 63]``, the range the integer reference accepts."""
    return check_int(value, name, MIN_WIDTH, MAX_WIDTH)


def check_shift(value: Any, name: str = "shift") -> int:
    return check_int(value, name, 0, MAX_SHIFT)


def check_lanes(lanes: Any, lanes_name: str, total: int, total_name: str) -> int:
    """A fold factor: a positive integer dividing ``total``; the error lists the valid ones."""
    lanes = check_int(lanes, lanes_name, 1)
    if total % lanes:
        divisors = [d for d in range(1, total + 1) if total % d == 0]
        raise FoldingError(f"{lanes_name}: must divide {total_name} = {total}; "
                           f"valid values are {divisors}, got {lanes}")
    return lanes


def signed_bounds(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def check_constants(values: Any, name: str, shape: tuple[int, ...], width: int) -> torch.Tensor:
    """Integer constants of exactly ``shape`` that fit ``signed(width)``, as ``int64``.

    Floats, bools, a wrong shape or a value outside ``[−2^(width−1), 2^(width−1) − 1]``
    raise ``ConfigError`` naming ``name``.
    """
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(values))
    elif not isinstance(values, torch.Tensor):
        try:
            values = torch.as_tensor(values)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise ConfigError(f"{name}: expected integer constants of shape {shape}, "
                              f"got {type(values).__name__} ({exc})") from None
    if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
        raise ConfigError(f"{name}: expected integer constants, got dtype {values.dtype}")
    if tuple(values.shape) != tuple(shape):
        raise ConfigError(f"{name}: expected shape {tuple(shape)}, got {tuple(values.shape)}")
    values = values.to(torch.int64)
    low, high = signed_bounds(width)
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
    width = MIN_WIDTH
    for value in bounds:
        need = (value.bit_length() + 1) if value >= 0 else ((-value - 1).bit_length() + 1)
        width = max(width, need)
    return width


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
