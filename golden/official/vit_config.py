"""The official ``ViTConfig`` JSON plus training flags -> our :class:`BinaryViTConfig`.

Their config file (``configs/<model>/config.json``, HuggingFace's ``ViTConfig`` format) gives
per stage ``hidden_size``, ``depths``, ``num_attention_heads``, ``intermediate_size`` and
``reduction_ratio``, and ``num_channels``. Their code hard-codes four stages, 224x224 input
and patch 4 (``patch_size`` in the file is ignored), so an ``image_size`` other than 224 or
lists of another length are refused. Without a file, the paper's
``binaryvit-small-patch4-224`` config (:data:`PAPER_VIT_CONFIG`) is used; a checkpoint of
another shape then fails the shape check naming the first parameter that differs.

Their model takes already-normalised pixels (``Normalize(IMAGENET_DEFAULT_MEAN, STD)`` on
0..1); ours takes raw pixels and normalises itself, so ``input_mean`` / ``input_std``
default to ImageNet's statistics in 0..255 units for 3 channels (0 and 1, i.e. the input is
taken as it is, otherwise).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from binaryvit.errors import ConfigError
from binaryvit.golden.float_model.config import BinaryViTConfig
from binaryvit.golden.official.flags import OfficialFlags

STAGES = 4
IMAGE_SIZE = 224
PATCH_SIZE = 4
STAGE_FIELDS = {"hidden_size": "embed_dims", "depths": "depths",
                "num_attention_heads": "num_heads", "intermediate_size": "mlp_dims",
                "reduction_ratio": "sr_ratios"}
PAPER_VIT_CONFIG: dict[str, Any] = {
    "image_size": 224, "num_channels": 3, "patch_size": 4,
    "hidden_size": [64, 128, 256, 512], "depths": [3, 4, 8, 4],
    "num_attention_heads": [1, 2, 4, 8], "intermediate_size": [512, 1024, 1024, 2048],
    "reduction_ratio": [8, 4, 1, 1]}
IMAGENET_MEAN_255 = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD_255 = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def read_vit_config(path: str | os.PathLike) -> dict[str, Any]:
    """Their ``config.json`` (a file, or the folder holding it) as a dict."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError(f"official config {path} not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"official config {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"official config {path} must hold a JSON object")
    return data


def _stage_list(vit: dict[str, Any], key: str, source: str) -> tuple[int, ...]:
    value = vit.get(key)
    if not isinstance(value, list) or len(value) != STAGES or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of {STAGES} integers (the official "
                          f"code builds {STAGES} stages), got {value!r}")
    return tuple(value)


def build_config(vit: dict[str, Any], flags: OfficialFlags, *, name: str, source: str,
                 input_mean: tuple[float, ...] | None = None,
                 input_std: tuple[float, ...] | None = None) -> BinaryViTConfig:
    """Our config for their model (see the module docstring); ConfigError names what is wrong."""
    image_size = vit.get("image_size", IMAGE_SIZE)
    if image_size not in (IMAGE_SIZE, [IMAGE_SIZE, IMAGE_SIZE]):
        raise ConfigError(f"{source}: image_size {image_size!r}: the official code hard-codes "
                          f"{IMAGE_SIZE}x{IMAGE_SIZE} input (its patch merges assume grids "
                          f"56, 28, 14)")
    channels = vit.get("num_channels", 3)
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ConfigError(f"{source}: num_channels must be a positive integer, got {channels!r}")
    stages = {ours: _stage_list(vit, theirs, source) for theirs, ours in STAGE_FIELDS.items()}
    if input_mean is None:
        input_mean = IMAGENET_MEAN_255 if channels == 3 else (0.0,) * channels
    if input_std is None:
        input_std = IMAGENET_STD_255 if channels == 3 else (1.0,) * channels
    pool_kernels = flags.pool_kernels
    try:
        return BinaryViTConfig(
            name=name, image_size=(IMAGE_SIZE, IMAGE_SIZE), in_channels=channels,
            num_classes=flags.nb_classes, patch_size=PATCH_SIZE, **stages,
            input_mean=tuple(input_mean), input_std=tuple(input_std), global_pool=True,
            multi_pool=bool(pool_kernels), layer_scale=not flags.disable_layerscale,
            pyramid=True, binary=flags.binary, pool_kernels=pool_kernels or (3, 5))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
