"""The integer model's test accuracy against the width of its stream format.

For each width the checkpoint that ``OUT/manifest.json`` names is quantized again in memory
(``quantize_model``: calibration on the manifest's number of training images by its rule, the
manifest's other formats kept) and the integer program runs on the whole test split. About
3 s per width for tiny-digits on one thread (15 s for the five default widths). The result
is kept in ``OUT/reports/stream_width_accuracy.json`` and reused while the checkpoint
(by sha256), the data, the formats and the widths are unchanged.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import BinaryVitError

__all__ = ["WIDTHS", "SWEEP_JSON", "WidthAccuracy", "StreamWidthSweep", "stream_width_sweep"]

WIDTHS = (24, 16, 12, 10, 8)
SWEEP_JSON = "stream_width_accuracy.json"


@dataclass(frozen=True)
class WidthAccuracy:
    """One width: the calibrated binary point and the test top-1, or why it could not be
    quantized (``error``: the quantizer's one-line message)."""

    stream_width: int
    stream_frac: int | None = None
    int_top1: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class StreamWidthSweep:
    """The sweep: ``widths`` from widest to narrowest; ``model_width`` is the width
    ``OUT``'s integer model was quantized with; ``test_images`` the split's size."""

    widths: list[WidthAccuracy]
    model_width: int
    test_images: int
    float_top1: float | None
    seconds: float
    reused: bool


def _checkpoint(out: Path, manifest: dict) -> Path | str:
    """The checkpoint ``manifest`` was quantized from (its sha256 checked), or why not."""
    from binaryvit.quantize.manifest import sha256_file

    info = manifest.get("checkpoint") or {}
    candidates = [Path(info["path"])] if info.get("path") else []
    candidates.append(out / "model.pt")
    for path in candidates:
        if path.is_file() and sha256_file(path) == info.get("sha256"):
            return path
    named = " or ".join(f"`{p}`" for p in dict.fromkeys(map(str, candidates)))
    return f"no checkpoint with the manifest's sha256 at {named}"


def stream_width_sweep(out: str | Path, manifest: dict, widths: tuple[int, ...] = WIDTHS,
                       progress: bool = True) -> StreamWidthSweep | str:
    """The sweep over ``widths`` and the manifest's own width, or a sentence saying why
    there is none (no checkpoint matching the manifest, data set not found)."""
    out = Path(out)
    checkpoint = _checkpoint(out, manifest)
    if isinstance(checkpoint, str):
        return checkpoint
    formats = dict(manifest.get("formats") or {})
    model_width = formats.get("stream_width", 24)
    widths = tuple(sorted(set(widths) | {model_width}, reverse=True))
    source = (manifest.get("checkpoint") or {}).get("data", "digits")
    calibration_images = (manifest.get("calibration") or {}).get("images", 512)
    rule = (manifest.get("calibration") or {}).get("rule", "range")
    base = {k: formats[k] for k in ("const_bits", "logit_width", "theta_bits", "acc_width")
            if k in formats}
    key = {"checkpoint_sha256": manifest["checkpoint"]["sha256"], "data": source,
           "formats": base, "calibration_images": calibration_images, "rule": rule}
    cache = out / "reports" / SWEEP_JSON
    float_top1 = ((manifest.get("checkpoint") or {}).get("metrics") or {}).get("test_accuracy")
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text())
        except ValueError:
            saved = {}
        if saved.get("key") == key and [w["stream_width"] for w in saved["widths"]] == list(widths):
            return StreamWidthSweep([WidthAccuracy(**w) for w in saved["widths"]], model_width,
                                    saved["test_images"], float_top1, saved["seconds"], True)
    return _measure(checkpoint, source, widths, base, calibration_images, rule, model_width,
                    float_top1, key, cache, progress)


def _measure(checkpoint: Path, source: str, widths: tuple[int, ...], base: dict,
             calibration_images: int, rule: str, model_width: int, float_top1: float | None,
             key: dict,
             cache: Path, progress: bool) -> StreamWidthSweep | str:
    import torch

    from binaryvit.golden.float_model.checkpoint import load_checkpoint
    from binaryvit.golden.train.data import load_dataset

    start = time.monotonic()
    if source != "digits" and not Path(source).exists():
        return f"the data set the checkpoint was quantized with (`{source}`) is not there"
    data = load_dataset(None if source == "digits" else source)
    model = load_checkpoint(checkpoint).build_model()
    images = torch.as_tensor(data.test_images).to(torch.int64)
    labels = torch.as_tensor(data.test_labels).to(torch.int64)
    calibration = data.train_images[:max(1, calibration_images)]
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # small tensors: more threads only contend (bench_quantize's 1)
    try:
        for width in widths:
            results.append(_width_accuracy(model, calibration, images, labels, width, base,
                                           rule, progress))
    finally:
        torch.set_num_threads(threads)
    seconds = time.monotonic() - start
    write_text_atomic(cache, json.dumps(
        {"key": key, "test_images": len(labels), "seconds": round(seconds, 1),
         "widths": [w.__dict__ for w in results]}, indent=2) + "\n")
    return StreamWidthSweep(results, model_width, len(labels), float_top1, seconds, False)


def _width_accuracy(model, calibration, images, labels, width: int, base: dict, rule: str,
                    progress: bool) -> WidthAccuracy:
    import torch

    from binaryvit.golden.intref.int_network import int_predict
    from binaryvit.quantize.formats import QuantFormats
    from binaryvit.quantize.quantizer import quantize_model

    if progress:
        print(f"stream width {width}: quantizing and running the integer model on "
              f"{len(labels)} test images", file=sys.stderr, flush=True)
    torch.manual_seed(0)
    try:
        q = quantize_model(model, calibration, QuantFormats(stream_width=width, **base),
                           calibration_rule=rule)
    except BinaryVitError as exc:
        return WidthAccuracy(width, error=str(exc))
    top1 = float((int_predict(q.intmodel, images) == labels).double().mean())
    return WidthAccuracy(width, q.intmodel.formats["stream_frac"], top1)
