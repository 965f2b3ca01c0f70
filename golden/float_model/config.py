"""The BinaryViT configuration: one dataclass that fixes every shape and every switch.

Two named configs ship with the project (:data:`CONFIGS`):

``binaryvit-s``
    The paper's ImageNet model (Le & Li, CVPR-W 2023): 224x224x3 input, patch 4, four
    stages of width 64/128/256/512, depths 3/4/8/4, heads 1/2/4/8, MLP 512/1024/1024/2048,
    spatial-reduction ratios 8/4/1/1, 1000 classes. 22.49 M parameters.
``tiny-digits``
    The same architecture sized for scikit-learn's 8x8x1 digits: patch 1, two stages of
    width 32/64, depths 2/2, heads 2/4 (head dimension 16), MLP 128/256, SR ratios 2/1.

The four CNN-inspired elements of the paper are switches, so each can be ablated alone:
``global_pool`` (GAP instead of a class token), ``multi_pool`` (the 1x3/3x1/1x5/5x1
pooling branches), ``layer_scale`` (per-channel affine before each main residual add) and
``pyramid`` (stages, patch merging, spatial-reduction attention). ``binary=False`` gives
the float network of the same shape (the distillation teacher).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from binaryvit.errors import ConfigError


@dataclass(frozen=True)
class StageSpec:
    """The resolved shape of one stage: width, depth, heads, MLP width, SR ratio, grid."""

    dim: int
    depth: int
    heads: int
    mlp_dim: int
    sr_ratio: int
    grid: tuple[int, int]

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_keys(self) -> int:
        """Keys per attention row: the grid after the r x r spatial reduction."""
        return (self.grid[0] // self.sr_ratio) * (self.grid[1] // self.sr_ratio)


@dataclass(frozen=True)
class BinaryViTConfig:
    """Every shape and switch of a BinaryViT network.

    Parameters
    ----------
    name : str
        Label stored in checkpoints (``binaryvit-s``, ``tiny-digits`` or a user's name).
    image_size : (int, int)
        Input height and width in pixels.
    in_channels : int
        Input channels (1 for grayscale, 3 for RGB).
    num_classes : int
        Classifier outputs.
    patch_size : int
        Stem convolution kernel and stride; the first grid is ``image_size / patch_size``.
    embed_dims, depths, num_heads, mlp_dims, sr_ratios : tuple of int
        Per stage: channel width C, number of blocks, attention heads (C divisible by it),
        MLP width (a multiple of C) and spatial-reduction ratio r (grid divisible by it).
    input_mean, input_std : tuple of float
        Per input channel, in **raw pixel units**: the model computes
        ``(x - mean) / std`` itself, so it takes raw pixels (0..16 for digits).
    global_pool, multi_pool, layer_scale, pyramid : bool
        The four CNN-inspired elements; each ``False`` removes exactly that element.
    binary : bool
        ``True``: 1-bit weights and activations. ``False``: the float network.
    pool_kernels : tuple of int
        Odd window lengths k of the multi-pooling branches (a 1xk and a kx1 branch each).
    layer_scale_init : float
        Initial LayerScale scale (its bias starts at 0).
    attention_alpha_init : float or None
        Initial attention-binarizer alpha; ``None`` means 1 / (keys per row).
    """

    name: str
    image_size: tuple[int, int]
    in_channels: int
    num_classes: int
    patch_size: int
    embed_dims: tuple[int, ...]
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    mlp_dims: tuple[int, ...]
    sr_ratios: tuple[int, ...]
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    global_pool: bool = True
    multi_pool: bool = True
    layer_scale: bool = True
    pyramid: bool = True
    binary: bool = True
    pool_kernels: tuple[int, ...] = (3, 5)
    layer_scale_init: float = 0.1
    attention_alpha_init: float | None = None

    def __post_init__(self) -> None:
        for name in ("image_size", "embed_dims", "depths", "num_heads", "mlp_dims",
                     "sr_ratios", "input_mean", "input_std", "pool_kernels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        n = len(self.embed_dims)
        if n == 0:
            raise ConfigError("embed_dims must name at least one stage")
        for name in ("depths", "num_heads", "mlp_dims", "sr_ratios"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"{name} has {len(getattr(self, name))} entries, "
                                  f"embed_dims has {n}: one per stage")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ConfigError(f"image_size must be (height, width) >= 1, got {self.image_size}")
        if self.in_channels < 1 or self.num_classes < 2:
            raise ConfigError(f"need in_channels >= 1 and num_classes >= 2, got "
                              f"{self.in_channels} and {self.num_classes}")
        if len(self.input_mean) != self.in_channels or len(self.input_std) != self.in_channels:
            raise ConfigError(f"input_mean and input_std need {self.in_channels} entries "
                              f"(one per input channel)")
        if min(self.input_std) <= 0:
            raise ConfigError(f"input_std must be > 0, got {self.input_std}")
        if self.patch_size < 1 or any(s % self.patch_size for s in self.image_size):
            raise ConfigError(f"patch_size {self.patch_size} must divide image_size "
                              f"{self.image_size}")
        if any(k < 1 or k % 2 == 0 for k in self.pool_kernels):
            raise ConfigError(f"pool_kernels must be odd and >= 1, got {self.pool_kernels}")
        if not self.global_pool and self.stages()[-1].sr_ratio != 1:
            raise ConfigError("a class token (global_pool=False) needs sr_ratio 1 in the "
                              "last stage: the token is not on the grid")
        for i, stage in enumerate(self.stages()):
            if min(stage.dim, stage.depth, stage.heads, stage.sr_ratio) < 1:
                raise ConfigError(f"stage {i}: width, depth, heads and sr_ratio must be >= 1")
            if stage.dim % stage.heads:
                raise ConfigError(f"stage {i}: width {stage.dim} not divisible by "
                                  f"{stage.heads} heads")
            if stage.mlp_dim % stage.dim:
                raise ConfigError(f"stage {i}: mlp_dim {stage.mlp_dim} must be a multiple "
                                  f"of the width {stage.dim}")
            if any(g % stage.sr_ratio for g in stage.grid):
                raise ConfigError(f"stage {i}: sr_ratio {stage.sr_ratio} must divide the "
                                  f"grid {stage.grid}")
            if i > 0 and (any(g < 1 for g in stage.grid)
                          or stage.dim != 2 * self.stages()[i - 1].dim):
                raise ConfigError(f"stage {i}: patch merging halves the grid and doubles the "
                                  f"width; got width {stage.dim} on grid {stage.grid}")
            if i + 1 < len(self.stages()) and any(g % 2 for g in stage.grid):
                raise ConfigError(f"stage {i}: grid {stage.grid} must be even for the 2x2 "
                                  f"patch merge that follows")

    def stages(self) -> list[StageSpec]:
        """The stages the network builds.

        With ``pyramid=False`` this is one isotropic stage: the first stage's width, heads
        and MLP width, the total depth, no spatial reduction and no patch merging.
        """
        grid = (self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size)
        if not self.pyramid:
            return [StageSpec(self.embed_dims[0], sum(self.depths), self.num_heads[0],
                              self.mlp_dims[0], 1, grid)]
        specs = []
        for i, dim in enumerate(self.embed_dims):
            specs.append(StageSpec(dim, self.depths[i], self.num_heads[i], self.mlp_dims[i],
                                   self.sr_ratios[i], grid))
            grid = (grid[0] // 2, grid[1] // 2)
        return specs

    def as_float(self) -> BinaryViTConfig:
        """The same network without binarization (the distillation teacher)."""
        return dataclasses.replace(self, binary=False)

    def replace(self, **changes: Any) -> BinaryViTConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (str, int, float, bool, list), so checkpoints need no pickle."""
        return {f.name: list(v) if isinstance(v, tuple) else v
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinaryViTConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ConfigError(f"config lacks keys: {', '.join(missing)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"malformed config: {exc}") from None


# ImageNet statistics in raw 0..255 pixel units (the usual 0.485/0.456/0.406, 0.229/...).
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

CONFIGS: dict[str, BinaryViTConfig] = {
    "binaryvit-s": BinaryViTConfig(
        name="binaryvit-s", image_size=(224, 224), in_channels=3, num_classes=1000,
        patch_size=4, embed_dims=(64, 128, 256, 512), depths=(3, 4, 8, 4),
        num_heads=(1, 2, 4, 8), mlp_dims=(512, 1024, 1024, 2048), sr_ratios=(8, 4, 1, 1),
        input_mean=_IMAGENET_MEAN, input_std=_IMAGENET_STD),
    # Digits pixels are integers 0..16; mean and std are those of the whole bundled set,
    # and training replaces them with its own training split's statistics.
    "tiny-digits": BinaryViTConfig(
        name="tiny-digits", image_size=(8, 8), in_channels=1, num_classes=10,
        patch_size=1, embed_dims=(32, 64), depths=(2, 2), num_heads=(2, 4),
        mlp_dims=(128, 256), sr_ratios=(2, 1), input_mean=(4.884,), input_std=(6.017,)),
}


def get_config(name: str) -> BinaryViTConfig:
    """The named config; an unknown name raises ConfigError listing the valid ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown config {name!r}; choose one of: "
                          f"{', '.join(sorted(CONFIGS))}") from None


__all__ = ["BinaryViTConfig", "StageSpec", "CONFIGS", "get_config"]
