"""Hardware-aware fine-tuning: the integer model's stream rounding in the float forward pass.

The integer model (``quantize.fold``) keeps every real-valued activation in one signed
fixed-point format ``(stream_width, stream_frac)``: each affine, RPReLU, stem MAC, pooling
affine and residual add rounds its exact result half up to the grid ``2^-stream_frac`` and
saturates it to the width (``intref.round_shift``, ``intref.saturate``). At 12 bits and
below that grid is coarse enough to flip signs downstream and cost accuracy.

:func:`integer_rounding` applies the same rounding to the output of every float module whose
integer step produces a stream tensor (``quantize.calibrate.stream_module_names``: the step
names of the folded program that are also module names, i.e. BatchNorms, RPReLUs,
LayerScales, branch affines, the stem, block and merge outputs). Backward is straight-through: the gradient of the rounded value is the gradient
of the unrounded one, saturated entries included. Every RPReLU's ``shift_in`` acts as
rounded to the grid too, as the fold rounds it into the integer ``pre_bias``. The signs then see the integer model's
values, and the thresholds ``x ≥ ceil(−move·2^F)`` agree with ``sign(x + move)`` exactly on
the grid.

:func:`integer_aware_finetune` trains a trained binary network a few epochs under that
rounding, with BatchNorm frozen in eval mode (its running statistics are what the integer
model folds), distilling from a frozen copy of the same network without rounding: the
target is the float binary model's function, not a new one. Not modelled: the rounding of
the folded constants (``const_bits``, 20 by default), of the ``r×r`` reduction pool, of the
MLP's group mean and of the attention's exp table; all are finer than the stream grid or
exact at the shapes measured (bench/bench_accuracy.py).
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor, nn
from tqdm import tqdm

from binaryvit.errors import ConfigError
from binaryvit.golden.float_model.channelwise import RPReLU
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref import round_shift, saturate
from binaryvit.golden.train.data import ImageDataset
from binaryvit.golden.train.training import distillation_loss, random_shift


def stream_integers(x: Tensor, frac: int, width: int | None) -> Tensor:
    """The stream word of each real ``x``: ``saturate(round_half_up(x·2^frac), width)``, int64
    (``width=None``: no saturation).

    Round half up of ``y = x·2^frac`` is ``round_shift(floor(2y), 1)``: truncating to one
    extra fraction bit never changes which side of a half the value lies on. ``x·2^(frac+1)``
    is exact in floating point (a power-of-two scale) and so is its floor, so this is the
    integer contract's rounding applied to the real value, with no rounding of its own.
    """
    doubled = torch.floor(x.detach() * 2.0 ** (frac + 1)).to(torch.int64)
    return saturate(round_shift(doubled, 1), width)


class _StreamRound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, frac: int, width: int) -> Tensor:
        return stream_integers(x, frac, width).to(x.dtype) * 2.0 ** -frac

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return grad, None, None


def fake_quantize(x: Tensor, frac: int, width: int | None) -> Tensor:
    """``x`` rounded to the stream format ``(width, frac)`` as a real value; gradient 1.

    Exact in float32 for stream widths up to 25 bits (every word fits the mantissa)."""
    return _StreamRound.apply(x, frac, width)


def _grid_shift_in(frac: int):
    """Pre-hook of an RPReLU: its input moved so that ``x − shift_in`` becomes the integer
    model's ``x + pre_bias``, ``pre_bias = round_half_up(−shift_in·2^frac)`` (quantize.fold)."""
    def hook(module: RPReLU, args: tuple[Tensor]) -> tuple[Tensor]:
        shift = module.shift_in
        on_grid = -fake_quantize(-shift, frac, None)
        return (args[0] + (shift - on_grid).detach(),)
    return hook


@contextlib.contextmanager
def integer_rounding(model: nn.Module, names: list[str], frac: int,
                     width: int) -> Iterator[None]:
    """While open, the output of each named module of ``model`` is ``fake_quantize``d, and
    every RPReLU's ``shift_in`` acts as rounded to the grid (as the fold rounds it)."""
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise KeyError(f"no module named {unknown[0]!r} in the model")
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out: fake_quantize(out, frac, width)) for n in names]
    handles += [m.register_forward_pre_hook(_grid_shift_in(frac))
                for m in modules.values() if isinstance(m, RPReLU)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class FinetuneSettings:
    """Hyper-parameters of :func:`integer_aware_finetune`."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-4
    max_shift: int = 0  # like the distilled student (TrainSettings.student_max_shift)
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.max_shift < 0:
            raise ConfigError("fine-tuning needs epochs >= 1, batch_size >= 1, lr > 0 and "
                              "max_shift >= 0")


def integer_aware_finetune(model: BinaryViT, data: ImageDataset, names: list[str],
                           frac: int, width: int,
                           settings: FinetuneSettings = FinetuneSettings()) -> dict[str, float]:
    """Fine-tune ``model`` in place under the stream rounding ``(width, frac)``; returns metrics.

    ``names`` are the modules to round (``quantize.calibrate.stream_module_names``) and
    ``(width, frac)`` the integer model's stream format (calibrate it first:
    ``quantize.calibrate.calibrate(model, images, QuantFormats(stream_width=W))``); fold
    the fine-tuned model at exactly that format, not a re-calibrated one. AdamW at ``lr``
    with cosine decay to 0, random shifts of up to ``max_shift`` pixels (default 0, as the
    student was trained), loss the distillation loss
    against the un-rounded network as it was before fine-tuning. Metrics: ``seconds``,
    ``final_loss``.
    """
    if not model.config.binary:
        raise ConfigError("hardware-aware fine-tuning needs the binary network")
    started = time.perf_counter()
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(data.train_images) / settings.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                          settings.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(settings.seed)
    loss = torch.zeros(())
    with integer_rounding(model, names, frac, width):
        model.eval()
        for epoch in range(settings.epochs):
            order = torch.randperm(len(data.train_images), generator=generator)
            bar = tqdm(range(0, len(order), settings.batch_size), leave=False, unit="batch",
                       desc=f"integer-aware {width}-bit {epoch + 1}/{settings.epochs}",
                       disable=not settings.progress)
            for first in bar:
                index = order[first:first + settings.batch_size]
                images = random_shift(data.train_images[index], settings.max_shift, generator)
                with torch.no_grad():
                    target = reference(images)
                loss = distillation_loss(model(images), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model.eval()
    return {"seconds": time.perf_counter() - started, "final_loss": loss.item()}


__all__ = ["stream_integers", "fake_quantize", "integer_rounding",
           "FinetuneSettings", "integer_aware_finetune"]
