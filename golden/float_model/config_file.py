"""A user's own config: a JSON file with every :class:`BinaryViTConfig` field.

``--config`` of every command takes a named config (:data:`CONFIGS`) or the path of such a
file. The file holds one JSON object, the fields of :meth:`BinaryViTConfig.to_dict`
(``name``, ``image_size`` [H, W], ``in_channels``, ``num_classes``, ``patch_size``, the
per-stage lists ``embed_dims``, ``depths``, ``num_heads``, ``mlp_dims``, ``sr_ratios``,
``input_mean`` / ``input_std`` per channel in raw pixel units, and optionally the switches
``global_pool``, ``multi_pool``, ``layer_scale``, ``pyramid``, ``binary``, ``pool_kernels``,
``layer_scale_init``, ``attention_alpha_init``). ``binaryvit config NAME`` prints a named
one to start from. A config that cannot work is refused with one line naming the field and
its valid values (:meth:`BinaryViTConfig._validate`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.float_model.config import CONFIGS, BinaryViTConfig


def load_config_file(path: str | os.PathLike) -> BinaryViTConfig:
    """The config in the JSON file ``path``; ConfigError names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    try:
        return BinaryViTConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def resolve_config(spec: str) -> BinaryViTConfig:
    """``spec`` as a named config, else as a JSON file; ConfigError lists the names."""
    if spec in CONFIGS:
        return CONFIGS[spec]
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.exists():
        return load_config_file(path)
    raise ConfigError(f"unknown config {spec!r}; choose one of: {', '.join(sorted(CONFIGS))}, "
                      f"or give a .json file (binaryvit config NAME prints one to start from)")


def named_config_for(image_shape: tuple[int, int, int], source: str) -> BinaryViTConfig:
    """The first named config (by name) whose input is ``image_shape`` ``(C, H, W)``;
    DataError, saying how to write one, when none is."""
    for name in sorted(CONFIGS):
        config = CONFIGS[name]
        if (config.in_channels, *config.image_size) == tuple(image_shape):
            return config
    c, h, w = image_shape
    raise DataError(f"{source}: images are {c} channel(s) of {h}x{w} and no named config has "
                    f"that size; write your own (binaryvit config tiny-28x28x1 > my.json, set "
                    f"image_size and in_channels) and pass --config my.json")


def config_json(config: BinaryViTConfig) -> str:
    """``config`` as the JSON text :func:`load_config_file` reads (one field per line)."""
    fields = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in config.to_dict().items()]
    return "{\n" + ",\n".join(fields) + "\n}\n"
