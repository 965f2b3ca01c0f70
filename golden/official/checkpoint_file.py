"""Reading a checkpoint file of the official BinaryViT code without running pickled code.

Three layouts are accepted (their ``main.py`` writes the first; ``--current-best-model``
reads all three):

=====================  ===================================================================
layout                 top level
=====================  ===================================================================
training checkpoint    ``{'model', 'optimizer', 'lr_scheduler', 'epoch', 'scaler', 'args'}``
                       (+ ``'model_ema'``); ``args`` is an ``argparse.Namespace``
``{'model': ...}``     a dict whose ``'model'`` is the state_dict, without ``args``
bare state_dict        parameter name -> tensor
=====================  ===================================================================

The file is read with ``torch.load(weights_only=True)``; the one class allowed beyond the
tensors and plain containers that mode reads is ``argparse.Namespace`` (their ``args``: the
optimizer, scheduler and scaler states are plain dicts, lists, numbers and tensors). A state
dict saved from a ``DistributedDataParallel`` wrapper (every key under ``module.``) is
unwrapped.
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from binaryvit.errors import CheckpointError

ALLOWED_GLOBALS = (argparse.Namespace,)
TRAINING_KEYS = ("model", "optimizer", "lr_scheduler", "epoch", "scaler", "args")
# Every official BinaryViT state_dict has the stem convolution under this name.
STEM_KEY = "vit.embeddings.patch_embeddings.projection.weight"


@dataclass
class OfficialFile:
    """What an official checkpoint file holds.

    state_dict : parameter name -> tensor, as their model names them.
    args : their training flags (``vars(args)``), or None when the file has none.
    layout : ``"training checkpoint"``, ``"{'model': state_dict}"`` or ``"bare state_dict"``.
    epoch : the epoch a training checkpoint was written after, else None.
    """

    state_dict: dict[str, Tensor]
    args: dict[str, Any] | None
    layout: str
    epoch: int | None


def _load(path: Path) -> Any:
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)), warnings.catch_warnings():
            # A plain pickle (protocol 4) is refused below; torch's protocol warning adds nothing.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"the class {found.group(1)}" if found else "pickled objects"
        raise CheckpointError(f"{path} needs {what} to load, which the importer does not "
                              f"allow (it runs no pickled code; allowed: tensors, plain "
                              f"containers and argparse.Namespace)") from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint: "
                              f"{reason}") from None


def _state_dict(candidate: Any, path: Path) -> dict[str, Tensor] | None:
    """``candidate`` as a state_dict of the official model, else None."""
    if not isinstance(candidate, dict) or not candidate:
        return None
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in candidate.items()):
        return None
    if all(k.startswith("module.") for k in candidate):
        candidate = {k[len("module."):]: v for k, v in candidate.items()}
    if STEM_KEY not in candidate:
        first = next(iter(candidate))
        raise CheckpointError(f"{path}: unknown layout: a state_dict without {STEM_KEY} "
                              f"(first key {first!r}); not a model of the official BinaryViT "
                              f"code")
    return dict(candidate)


def read_official_file(path: str | os.PathLike) -> OfficialFile:
    """Load ``path`` (see the module docstring); CheckpointError names any problem in one line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found" if not path.exists()
                              else f"checkpoint {path} is not a file")
    payload = _load(path)
    if isinstance(payload, dict) and payload.get("format") == "binaryvit-checkpoint":
        raise CheckpointError(f"{path} is a binaryvit checkpoint already; use it as it is")
    if isinstance(payload, dict) and "model" in payload:
        state_dict = _state_dict(payload["model"], path)
        if state_dict is None:
            raise CheckpointError(f"{path}: unknown layout: its 'model' entry is not a "
                                  f"state_dict of tensors")
        args = payload.get("args")
        if isinstance(args, argparse.Namespace):
            args = vars(args)
        if args is not None and not isinstance(args, dict):
            raise CheckpointError(f"{path}: unknown layout: 'args' is a "
                                  f"{type(args).__name__}, expected argparse.Namespace")
        epoch = payload.get("epoch")
        layout = "training checkpoint" if args is not None else "{'model': state_dict}"
        return OfficialFile(state_dict, args, layout,
                            int(epoch) if isinstance(epoch, int) else None)
    state_dict = _state_dict(payload, path)
    if state_dict is None:
        keys = (", ".join(map(str, list(payload)[:6])) if isinstance(payload, dict)
                else type(payload).__name__)
        raise CheckpointError(f"{path}: unknown layout ({keys}); expected an official "
                              f"BinaryViT training checkpoint ({', '.join(TRAINING_KEYS)}), "
                              f"{{'model': state_dict}} or a state_dict")
    return OfficialFile(state_dict, None, "bare state_dict", None)
