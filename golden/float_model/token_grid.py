"""Token layout: ``[B, T, C]`` with tokens in raster (row-major) order of an ``H x W`` grid.

The conversions below are the only place the layout is written down; every spatial
operation (pooling, patch merging, upsampling) goes through them.
"""
from __future__ import annotations

from torch import Tensor


def tokens_to_image(x: Tensor, grid: tuple[int, int]) -> Tensor:
    """``[B, H*W, C]`` -> ``[B, C, H, W]``."""
    batch, _, channels = x.shape
    return x.transpose(1, 2).reshape(batch, channels, grid[0], grid[1])


def image_to_tokens(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, H*W, C]``."""
    return x.flatten(2).transpose(1, 2)


def nearest_upsample_tokens(x: Tensor, grid: tuple[int, int], factor: int) -> Tensor:
    """Token ``(i, j)`` of the ``(H*factor) x (W*factor)`` grid takes token ``(i//factor, j//factor)``."""
    image = tokens_to_image(x, grid)
    image = image.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    return image_to_tokens(image)


__all__ = ["tokens_to_image", "image_to_tokens", "nearest_upsample_tokens"]
