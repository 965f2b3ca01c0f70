"""The integer model: a BinaryViT as a straight-line program of integer-reference operations.

An :class:`IntModel` is what the hardware runs. It is a list of :class:`Step` s in execution
order; each step applies one ``binaryvit.golden.intref`` operation (or a pure wiring step:
patch unfolding, channel tiling) to named tensors and names its own output after itself, so
every intermediate is a *tap* a test or a divergence finder can compare with the float
model's module of the same name. ``binaryvit.golden.intref.int_network`` executes the program,
``binaryvit.quantize.overflow`` proves its widths, the hardware generator reads it.

File ``intmodel.npz`` (``numpy.savez``, no pickle):

=====================  ====================================================================
key                    value
=====================  ====================================================================
``meta``               0-d unicode array holding JSON: ``format`` (``"binaryvit-intmodel"``),
                       ``format_version`` (1), ``config`` (:meth:`BinaryViTConfig.to_dict`),
                       ``formats`` (str -> int), ``input_range`` ([lo, hi] raw pixels),
                       ``steps``: ``[{name, op, inputs, params, arrays: {key: [dtype, shape]}}]``
``<step>/<key>``       the step's constant arrays (int64 constants, bool weight bits)
=====================  ====================================================================
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from binaryvit.atomic import atomic_file
from binaryvit.errors import CheckpointError, ConfigError, OutputPathError
from binaryvit.golden.float_model.config import BinaryViTConfig

FORMAT = "binaryvit-intmodel"
FORMAT_VERSION = 1
ALLOWED_DTYPES = ("int64", "bool")


@dataclass
class Step:
    """One operation of the integer program.

    Attributes
    ----------
    name : the output tensor's name (the tap); float-model module names where one exists.
    op : the operation (see ``binaryvit.golden.intref.int_network.OPS``).
    inputs : names of the input tensors (``"input"`` is the raw pixel image).
    params : integer constants (shifts, widths, sizes).
    arrays : per-channel or per-weight constants (``int64``) and weight bits (``bool``).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    params: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record: name, op, inputs, params, array dtypes and shapes."""
        return {"name": self.name, "op": self.op, "inputs": list(self.inputs),
                "params": dict(self.params),
                "arrays": {k: [str(v.dtype), list(v.shape)] for k, v in self.arrays.items()}}


@dataclass
class IntModel:
    """A folded, calibrated BinaryViT in integer form.

    Attributes
    ----------
    config : the network's config (from the checkpoint).
    formats : ``stream_width``, ``stream_frac`` (the real-valued tensors' fixed-point
        format), ``logit_width``, ``logit_frac``, ``lut_frac``, ``lut_width``,
        ``acc_width`` (the largest accumulator the overflow proof allows) and the others
        :func:`binaryvit.quantize.fold.fold_model` records.
    input_range : the raw pixel interval the overflow proof assumes.
    steps : the program, in execution order; the last step's output is the logits.
    """

    config: BinaryViTConfig
    formats: dict[str, int]
    input_range: tuple[int, int]
    steps: list[Step]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise CheckpointError(f"integer model has no step named {name!r}")

    def xnor_layers(self) -> list[Step]:
        """The binary (XNOR-popcount) layers, whose weights become ROMs."""
        return [s for s in self.steps if s.op == "xnor_popcount_dot"]

    def meta(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "config": self.config.to_dict(), "formats": dict(self.formats),
                "input_range": list(self.input_range),
                "steps": [s.describe() for s in self.steps]}


def save_intmodel(model: IntModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (``.npz``) atomically."""
    path = Path(path)
    payload = {"meta": np.array(json.dumps(model.meta()))}
    for s in model.steps:
        for key, value in s.arrays.items():
            payload[f"{s.name}/{key}"] = value
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
    return path


def _bad(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"integer model {path}: {why}")


def load_quantized(out_dir: str | os.PathLike) -> IntModel:
    """``OUT/intmodel.npz`` as ``binaryvit quantize`` writes it. OutputPathError, naming the
    command that makes it, when it is not there; otherwise as :func:`load_intmodel`."""
    path = Path(out_dir) / "intmodel.npz"
    if not path.is_file():
        raise OutputPathError(f"{path} not found: run `binaryvit quantize CKPT -o "
                              f"{Path(out_dir)}` first")
    return load_intmodel(path)


def load_intmodel(path: str | os.PathLike) -> IntModel:
    """Read and validate ``intmodel.npz``; CheckpointError names what is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "not found" if not path.exists() else "is not a file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _bad(path, f"corrupt or truncated ({reason})") from None
    if "meta" not in arrays:
        raise _bad(path, "has no 'meta' record (not a binaryvit integer model)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, TypeError) as exc:
        raise _bad(path, f"its meta record is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, f"is not a binaryvit integer model (no format {FORMAT!r} marker)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"has format version {meta.get('format_version')!r}; this binaryvit "
                         f"reads {FORMAT_VERSION}")
    for key in ("config", "formats", "input_range", "steps"):
        if key not in meta:
            raise _bad(path, f"meta lacks {key!r}")
    try:
        config = BinaryViTConfig.from_dict(meta["config"])
    except ConfigError as exc:
        raise _bad(path, f"bad config: {exc}") from None
    steps = []
    for record in meta["steps"]:
        name = record["name"]
        step_arrays = {}
        for key, (dtype, shape) in record["arrays"].items():
            full = f"{name}/{key}"
            if full not in arrays:
                raise _bad(path, f"array {full!r} is missing")
            value = arrays.pop(full)
            if str(value.dtype) != dtype or list(value.shape) != list(shape) \
                    or dtype not in ALLOWED_DTYPES:
                raise _bad(path, f"array {full!r} is {value.dtype}{list(value.shape)}, "
                                 f"expected {dtype}{list(shape)}")
            step_arrays[key] = value
        params = {k: int(v) for k, v in record["params"].items()}
        steps.append(Step(name, record["op"], tuple(record["inputs"]), params, step_arrays))
    if arrays:
        raise _bad(path, f"unexpected arrays: {', '.join(sorted(arrays)[:3])}")
    formats = {k: int(v) for k, v in meta["formats"].items()}
    lo, hi = (int(v) for v in meta["input_range"])
    return IntModel(config, formats, (lo, hi), steps)


__all__ = ["Step", "IntModel", "save_intmodel", "load_intmodel", "FORMAT", "FORMAT_VERSION"]
