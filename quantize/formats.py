"""The fixed-point formats of an integer model: one dataclass the fold, the calibration and
the overflow proof share."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from binaryvit.errors import ConfigError


@dataclass(frozen=True)
class QuantFormats:
    """Widths and binary points of the integer model.

    Parameters
    ----------
    stream_width, stream_frac : the signed fixed-point format ``(width, frac)`` of every
        real-valued activation (the residual stream and all tensors added to it); the
        integer ``q`` stands for ``q · 2^-stream_frac``. Arithmetic saturates to the width.
        24 bits by default (see docs/quantization.md for the measured agreement per width).
    const_bits : signed width the per-channel multipliers (affine, RPReLU, MAC weights) are
        scaled to fill; their binary point is chosen per step. 20 by default: 16 bits cost
        up to 2 points of per-image agreement on a briefly trained digits model.
    logit_width : width of the classifier output (format ``(logit_width, stream_frac)``).
    theta_bits : significant bits of the attention threshold ``theta``.
    acc_width : the widest accumulator or intermediate the overflow proof accepts.
    input_range : raw pixel interval ``(lo, hi)`` the proof assumes.
    """

    stream_width: int = 24
    stream_frac: int = 16
    const_bits: int = 20
    logit_width: int = 32
    theta_bits: int = 12
    acc_width: int = 48
    input_range: tuple[int, int] = (0, 255)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_range", tuple(int(v) for v in self.input_range))
        checks = (("stream_width", 4, 32), ("stream_frac", 0, 40), ("const_bits", 4, 32),
                  ("logit_width", 8, 62), ("theta_bits", 2, 24), ("acc_width", 8, 62))
        for name, lo, hi in checks:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
        lo, hi = self.input_range
        if lo > hi:
            raise ConfigError(f"input_range must be (lo, hi) with lo <= hi, got {self.input_range}")

    def replace(self, **changes: Any) -> "QuantFormats":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_range"] = list(self.input_range)
        return data


__all__ = ["QuantFormats"]
