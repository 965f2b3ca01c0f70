"""Importing an official BinaryViT checkpoint: read, check, map, write ours atomically.

:func:`import_official` reads the file (``checkpoint_file``), takes the flags from its
``args`` or its keys (``flags``) and refuses what binaryvit cannot express (LayerNorm,
``--some-fp``, bit widths other than 1/1 and 32/32, another model type), builds our config
from their ``ViTConfig`` JSON (``vit_config``; the paper's when none is given), refuses
exact-zero signs (``sign_ties``), maps every parameter (``key_map``; a missing, extra or
differently shaped one means the config does not match the checkpoint) and writes a
binaryvit checkpoint (:func:`binaryvit.golden.float_model.checkpoint.save_checkpoint`), which then goes
through ``quantize`` / ``generate`` like a trained one. The output is written only when
everything succeeded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from binaryvit.errors import CheckpointError
from binaryvit.golden.float_model.checkpoint import save_checkpoint
from binaryvit.golden.float_model.config import BinaryViTConfig
from binaryvit.golden.float_model.network import BinaryViT, count_parameters
from binaryvit.golden.official.checkpoint_file import OfficialFile, read_official_file
from binaryvit.golden.official.flags import OfficialFlags, flags_from_args, flags_from_keys
from binaryvit.golden.official.key_map import map_state_dict
from binaryvit.golden.official.sign_ties import check_no_zero_signs
from binaryvit.golden.official.vit_config import PAPER_VIT_CONFIG, build_config, read_vit_config


@dataclass
class ImportedModel:
    """The imported model (eval mode) and how it was read."""

    model: BinaryViT
    flags: OfficialFlags
    layout: str
    epoch: int | None

    @property
    def config(self) -> BinaryViTConfig:
        return self.model.config


def official_model(checkpoint: str | os.PathLike, vit_config: str | os.PathLike | None = None,
                   *, name: str | None = None, input_mean: tuple[float, ...] | None = None,
                   input_std: tuple[float, ...] | None = None) -> ImportedModel:
    """Our model with the official checkpoint's weights (see the module docstring)."""
    path = Path(checkpoint)
    official: OfficialFile = read_official_file(path)
    source = str(path)
    flags = flags_from_keys(official.state_dict, source)
    if official.args is not None:
        flags = flags_from_args(official.args, flags)
    flags.check_expressible(source)
    vit = read_vit_config(vit_config) if vit_config is not None else PAPER_VIT_CONFIG
    config_source = str(vit_config) if vit_config is not None else "the paper's config"
    config = build_config(vit, flags, name=name or f"official-{path.stem}",
                          source=config_source, input_mean=input_mean, input_std=input_std)
    if flags.binary:
        check_no_zero_signs(official.state_dict, source)
    model = BinaryViT(config)
    mapped = map_state_dict(official.state_dict, config, model.state_dict(), source)
    try:
        model.load_state_dict(mapped)
    except RuntimeError as exc:  # map_state_dict checked names and shapes; defensive only
        raise CheckpointError(f"{source}: {str(exc).splitlines()[0]}") from None
    return ImportedModel(model.eval(), flags, official.layout, official.epoch)


def import_official(checkpoint: str | os.PathLike, output: str | os.PathLike,
                    vit_config: str | os.PathLike | None = None, **options) -> ImportedModel:
    """:func:`official_model`, then our checkpoint written atomically to ``output``
    (metrics: ``num_parameters``, and ``official_epoch`` for a training checkpoint)."""
    imported = official_model(checkpoint, vit_config, **options)
    metrics = {"num_parameters": count_parameters(imported.model)}
    if imported.epoch is not None:
        metrics["official_epoch"] = imported.epoch
    save_checkpoint(output, imported.model, metrics)
    return imported
