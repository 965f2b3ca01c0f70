"""Argument checks shared by the integer reference: convert inputs, reject bad ones early.

Every public op converts its tensors here, so a float array, a non-binary "bit" tensor or a
negative shift fails with a message naming the argument instead of a silent wrong result.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from binaryvit.errors import ConfigError, DataError

# Intermediates are int64; a product whose magnitude could reach this bound is refused
# rather than allowed to wrap (the overflow prover in bounds.py sizes real hardware).
INT64_SAFE = 1 << 62


def as_int_tensor(x: Any, name: str, *, error: type[Exception] = DataError,
                  what: str = "an integer tensor") -> torch.Tensor:
    """Return ``x`` as a ``torch.int64`` tensor; floats and bools are refused with ``error``
    ("``name``: expected ``what``, got …")."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise error(f"{name}: expected {what}, got {type(x).__name__} ({exc})") from None
    if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
        raise error(f"{name}: expected {what}, got dtype {x.dtype}")
    return x.to(torch.int64)


def as_bit_tensor(x: Any, name: str) -> torch.Tensor:
    """Return ``x`` as a ``torch.bool`` tensor; integer tensors must hold only 0 and 1."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dtype == torch.bool:
        return x
    if x.is_floating_point() or x.is_complex():
        raise DataError(f"{name}: expected bits (bool or 0/1 integers), got dtype {x.dtype}")
    if x.numel() and bool(((x != 0) & (x != 1)).any()):
        raise DataError(f"{name}: expected bits (bool or 0/1 integers), found values other than 0 and 1")
    return x.to(torch.bool)


def divisors(n: int) -> list[int]:
    """Every positive divisor of ``n``, ascending (the values a fold factor, a group or a
    pooling factor of a dimension ``n`` may take; error messages list them)."""
    return [d for d in range(1, n + 1) if n % d == 0]


def is_integer(value: Any) -> bool:
    """A Python or numpy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_shift(shift: Any, name: str = "shift") -> int:
    if not is_integer(shift) or shift < 0 or shift > 62:
        raise ConfigError(f"{name}: expected an integer in [0, 62], got {shift!r}")
    return int(shift)


def check_width(width: Any, name: str = "width", allow_none: bool = True) -> int | None:
    if width is None and allow_none:
        return None
    if not is_integer(width) or not 2 <= width <= 63:
        raise ConfigError(f"{name}: expected an integer in [2, 63]{' or None' if allow_none else ''}, got {width!r}")
    return int(width)


def check_positive_int(value: Any, name: str) -> int:
    if not is_integer(value) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    if not is_integer(value) or value < 0:
        raise ConfigError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)


def check_min_dims(x: torch.Tensor, dims: int, name: str, layout: str) -> None:
    if x.dim() < dims:
        raise DataError(f"{name}: expected shape {layout}, got {tuple(x.shape)}")


def per_channel(values: Any, channels: int, name: str) -> torch.Tensor:
    """Per-channel constants: a scalar (broadcast) or a 1-D tensor of length ``channels``."""
    t = as_int_tensor(values, name)
    if t.dim() == 0:
        return t.expand(channels)
    if t.shape != (channels,):
        raise DataError(f"{name}: expected shape ({channels},) (one per channel) or a scalar, got {tuple(t.shape)}")
    return t


def max_abs(t: torch.Tensor) -> int:
    return int(t.abs().max()) if t.numel() else 0


def check_product_fits(bound: int, what: str) -> None:
    """Refuse a computation whose intermediate magnitude could reach 2^62 in int64."""
    if bound >= INT64_SAFE:
        raise DataError(f"{what}: intermediate magnitude up to {bound} does not fit the int64 reference "
                        f"(limit 2^62); the constants or inputs are out of any hardware range")
