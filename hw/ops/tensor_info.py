"""What a stream of one tensor carries in hardware: element kind, width, tokens, channels."""
from __future__ import annotations

from dataclasses import dataclass

from binaryvit.errors import ConfigError
from binaryvit.golden.intref.intmodel import IntModel, Step

__all__ = ["TensorInfo", "pixel_width", "width_param"]


@dataclass(frozen=True)
class TensorInfo:
    """One tensor per image as a stream: ``tokens`` tokens of ``channels`` elements.

    kind : ``"fixed"`` (signed ``width``-bit), ``"binary"`` (1 bit, 1 ↔ +1), ``"pixel"``
        (unsigned ``width``-bit raw pixels) or ``"scores"`` (attention scores: no stream).
    grid : ``(height, width)`` of the token grid where the tokens form one, else None.
    """

    kind: str
    width: int
    channels: int
    tokens: int
    grid: tuple[int, int] | None


def pixel_width(model: IntModel) -> int:
    """Unsigned bits of a raw pixel (from the model's ``input_range``)."""
    lo, hi = model.input_range
    if lo < 0:
        raise ConfigError(f"input_range {model.input_range}: the pixel stream is unsigned; "
                          f"negative raw pixels are not supported by the hardware")
    return max(1, int(hi).bit_length())


def width_param(step: Step) -> int:
    """The step's saturating output width; ConfigError when it has none."""
    width = step.params.get("width", 0)
    if not width:
        raise ConfigError(f"step {step.name!r} ({step.op}) has no output width; the hardware "
                          f"needs a saturating width for it")
    return int(width)
