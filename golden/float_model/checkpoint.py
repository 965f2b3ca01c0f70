"""Checkpoints: a trained model's weights, config, metrics and versions in one file.

The file is a ``torch.save`` of a plain dict, loaded with ``torch.load(weights_only=True)``
so no pickled code ever runs:

=================  ========================================================================
key                value
=================  ========================================================================
``format``         ``"binaryvit-checkpoint"`` (str)
``format_version`` ``1`` (int)
``config``         :meth:`BinaryViTConfig.to_dict` (str, int, float, bool, lists)
``state_dict``     the model's ``state_dict()`` (tensors, incl. BN running statistics)
``metrics``        str -> int or float (e.g. ``test_accuracy``)
``versions``       str -> str (``binaryvit``, ``torch``, ``python``, ``numpy``)
=================  ========================================================================
"""
from __future__ import annotations

import os
import pickle
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from binaryvit import __version__
from binaryvit.atomic import atomic_file
from binaryvit.errors import CheckpointError, ConfigError
from binaryvit.golden.float_model.config import BinaryViTConfig
from binaryvit.golden.float_model.network import BinaryViT

FORMAT = "binaryvit-checkpoint"
FORMAT_VERSION = 1
KEYS = ("format", "format_version", "config", "state_dict", "metrics", "versions")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the config, the weights, metrics and versions."""

    config: BinaryViTConfig
    state_dict: dict[str, Tensor]
    metrics: dict[str, float]
    versions: dict[str, str]

    def build_model(self) -> BinaryViT:
        """The model with these weights, in eval mode."""
        model = BinaryViT(self.config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"weights do not match config {self.config.name!r}: "
                                  f"{first}") from None
        return model.eval()


def versions() -> dict[str, str]:
    """Package versions as plain strings (a TorchVersion would need pickle to load)."""
    return {"binaryvit": str(__version__), "torch": str(torch.__version__),
            "python": platform.python_version(), "numpy": str(np.__version__)}


def save_checkpoint(path: str | os.PathLike, model: BinaryViT,
                    metrics: dict[str, float]) -> Path:
    """Write ``model`` (its config and weights) with ``metrics`` atomically to ``path``."""
    path = Path(path)
    plain_metrics = {str(k): (int(v) if isinstance(v, (bool, int)) else float(v))
                     for k, v in metrics.items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "config": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
               "metrics": plain_metrics, "versions": versions()}
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint without executing pickled code; CheckpointError names any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found" if not path.exists()
                              else f"checkpoint {path} is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile,
            pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a binaryvit checkpoint: "
                              f"{reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a binaryvit checkpoint (no format "
                              f"{FORMAT!r} marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version "
                              f"{payload.get('format_version')!r}; this binaryvit reads "
                              f"{FORMAT_VERSION}")
    missing = [k for k in KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    try:
        config = BinaryViTConfig.from_dict(payload["config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path} has a bad config: {exc}") from None
    return Checkpoint(config, payload["state_dict"], dict(payload["metrics"]),
                      dict(payload["versions"]))


def load_model(path: str | os.PathLike) -> tuple[BinaryViT, BinaryViTConfig]:
    """The trained model (eval mode) and its config from a checkpoint file."""
    checkpoint = load_checkpoint(path)
    return checkpoint.build_model(), checkpoint.config
