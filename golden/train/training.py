"""Training: a float teacher, then the binary student by knowledge distillation.

Recipe (see docs/model.md; chosen on a validation split, ``bench/bench_recipe_search.py``):
AdamW (weight decay 0), batch 64, each network's learning rate rising linearly over
``warmup_epochs`` (2) and then decaying by a cosine per step to 0. The teacher is the float
network of the same config (``config.as_float()``), trained with cross-entropy at ``lr``
(2e-3) on images shifted by up to ``max_shift`` (±1) pixels (zero fill). The student is the
binary network, initialised at random (``student_init = "random"``) or with the trained
teacher's parameters (``"teacher"``; the two networks have the same parameters, the student
binarizes them; measured worse, docs/model.md), and trained at ``student_lr`` (4e-3) on
images shifted by up to ``student_max_shift`` (0: the binary student under-fits shifted
images) with the paper's distillation loss, the soft cross-entropy
``-T^2 sum softmax(teacher/T) * log_softmax(student/T)`` at temperature ``temperature``
(T = 2), plus ``label_weight`` (0) times the label cross-entropy. With
``teacher_epochs = 0`` the student starts at random and trains on cross-entropy alone, at
``lr`` and ``max_shift`` like a teacher. Each network keeps an exponential moving average
of its parameters (``ema_decay`` per step, 0 = off; ``weight_average.py``) that replaces its
parameters after its last epoch; then its BatchNorm statistics are recomputed exactly for
those weights (``momentum=None``, a train-mode pass over the un-augmented training set).
Together they remove the final-epoch noise of the last steps' weights and of running
averages.

Under ``torchrun`` (``WORLD_SIZE > 1``) training is data-parallel with PyTorch's
``DistributedDataParallel`` over the gloo backend and a ``DistributedSampler``; a single
process needs no process group.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from binaryvit.errors import ConfigError
from binaryvit.golden.float_model.config import BinaryViTConfig
from binaryvit.golden.float_model.network import BinaryViT, count_parameters
from binaryvit.golden.train.cpu_time import cpu_seconds
from binaryvit.golden.train.data import ImageDataset, check_dataset_fits
from binaryvit.golden.train.weight_average import WeightAverage

STUDENT_INITS = ("teacher", "random")


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one teacher + student run."""

    epochs: int = 80
    teacher_epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    max_shift: int = 1
    seed: int = 0
    ema_decay: float = 0.995
    student_init: str = "random"
    student_lr: float | None = 4e-3
    student_max_shift: int | None = 0
    warmup_epochs: int = 2
    temperature: float = 2.0
    label_weight: float = 0.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.teacher_epochs < 0:
            raise ConfigError(f"teacher_epochs must be >= 0, got {self.teacher_epochs}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0 or self.max_shift < 0:
            raise ConfigError("lr must be > 0, weight_decay and max_shift >= 0")
        if self.student_lr is not None and self.student_lr <= 0:
            raise ConfigError(f"student_lr must be > 0 (or None: lr), got {self.student_lr}")
        if self.student_max_shift is not None and self.student_max_shift < 0:
            raise ConfigError(f"student_max_shift must be >= 0 (or None: max_shift), "
                              f"got {self.student_max_shift}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.label_weight <= 1.0:
            raise ConfigError(f"label_weight must be in [0, 1], got {self.label_weight}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 = no averaging), "
                              f"got {self.ema_decay}")
        if self.student_init not in STUDENT_INITS:
            raise ConfigError(f"student_init must be one of {', '.join(STUDENT_INITS)}, "
                              f"got {self.student_init!r}")


@dataclass
class TrainResult:
    """The trained binary student, its float teacher (or None) and plain-number metrics."""

    model: BinaryViT
    teacher: BinaryViT | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a data-parallel run; ``world_size == 1`` means single process."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context_from_env(env: dict[str, str] | None = None) -> DistributedContext:
    """Read ``RANK`` / ``WORLD_SIZE`` as set by ``torchrun``; absent means single process."""
    env = os.environ if env is None else env
    world_size = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    return DistributedContext(rank, world_size)


def init_distributed(context: DistributedContext) -> bool:
    """Join the gloo process group of a ``torchrun`` launch; True if this call created it.

    A single process (``world_size == 1``) never touches ``torch.distributed``.
    """
    if not context.enabled:
        return False
    if dist.is_initialized():
        return False
    dist.init_process_group("gloo", rank=context.rank, world_size=context.world_size)
    return True


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor,
                      temperature: float = 1.0) -> Tensor:
    """Mean over the batch of ``-T^2 · sum_c softmax(teacher/T)_c · log_softmax(student/T)_c``.

    ``T^2`` keeps the gradient's size independent of the temperature (Hinton et al.); at
    ``T = 1`` this is the plain soft cross-entropy.
    """
    soft = torch.softmax(teacher_logits.detach() / temperature, dim=-1)
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    return -(soft * log_student).sum(dim=-1).mean() * temperature ** 2


def student_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                 temperature: float = 1.0, label_weight: float = 0.0) -> Tensor:
    """``(1 − w) · distillation_loss(T) + w · cross_entropy(labels)``, ``w = label_weight``.

    ``w = 0`` (the default) is the distillation loss alone and skips the label term.
    """
    loss = distillation_loss(student_logits, teacher_logits, temperature)
    if label_weight == 0:
        return loss
    return (1 - label_weight) * loss + label_weight * F.cross_entropy(student_logits, labels)


def warmup_cosine(warmup_steps: int, total_steps: int):
    """The learning-rate factor of step ``t`` (``LambdaLR``): a linear rise ``(t + 1) / warmup``
    over ``warmup_steps``, then cosine decay from 1 to 0 at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y, filling with 0."""
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    out = torch.empty_like(images)
    for dy in range(2 * max_shift + 1):
        for dx in range(2 * max_shift + 1):
            chosen = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[chosen] = padded[chosen, :, dy:dy + h, dx:dx + w]
    return out


@torch.no_grad()
def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in eval mode, a fraction in [0, 1]."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(dim=-1) == labels[start:start + batch_size]).sum())
    return correct / max(len(images), 1)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: Tensor, batch_size: int = 256) -> None:
    """Recompute every BatchNorm's running statistics as exact averages over ``images``.

    A train-mode pass with ``momentum=None`` (cumulative averaging) over un-augmented data;
    the model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for start in range(0, len(images), batch_size):
        model(images[start:start + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def _fit(model: BinaryViT, data: ImageDataset, epochs: int, settings: TrainSettings,
         context: DistributedContext, label: str, teacher: BinaryViT | None) -> list[float]:
    """Train ``model`` in place; returns the wall time of each epoch in seconds."""
    train = model
    if context.enabled:
        train = nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=not model.config.binary)
    student = teacher is not None
    lr = settings.lr if not student or settings.student_lr is None else settings.student_lr
    max_shift = (settings.max_shift if not student or settings.student_max_shift is None
                 else settings.student_max_shift)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                  weight_decay=settings.weight_decay, foreach=True)
    sampler = DistributedSampler(range(len(data.train_images)), num_replicas=context.world_size,
                                 rank=context.rank, shuffle=True, seed=settings.seed)
    steps_per_epoch = -(-len(sampler) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(
        min(settings.warmup_epochs, epochs) * steps_per_epoch, epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(settings.seed + 1000 * context.rank)
    average = WeightAverage(model, settings.ema_decay) if settings.ema_decay > 0 else None
    epoch_seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        train.train()
        bar = tqdm(range(0, len(order), settings.batch_size), desc=f"{label} {epoch + 1}/{epochs}",
                   unit="batch", leave=False, disable=not (settings.progress and context.is_main))
        for first in bar:
            index = order[first:first + settings.batch_size]
            images = random_shift(data.train_images[index], max_shift, generator)
            logits = train(images)
            if teacher is None:
                loss = F.cross_entropy(logits, data.train_labels[index])
            else:
                with torch.no_grad():
                    target = teacher(images)
                loss = student_loss(logits, target, data.train_labels[index],
                                    settings.temperature, settings.label_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if average is not None:
                average.update(model)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        epoch_seconds.append(time.perf_counter() - start)
    if average is not None:
        average.copy_to(model)
    recalibrate_batchnorm(model, data.train_images)
    return epoch_seconds


def fit_config_to_data(config: BinaryViTConfig, data: ImageDataset) -> BinaryViTConfig:
    """``config`` with the data's class count and its training-set pixel mean and std.

    The mean and std are per channel in raw pixel units; the model's input normalisation
    uses them, so the network always takes raw pixels.
    """
    check_dataset_fits(data, (config.in_channels, *config.image_size), config.name)
    channels = data.train_images.transpose(0, 1).reshape(config.in_channels, -1)
    std = channels.std(dim=1).clamp(min=1e-6)
    return config.replace(num_classes=data.num_classes,
                          input_mean=tuple(round(float(v), 6) for v in channels.mean(dim=1)),
                          input_std=tuple(round(float(v), 6) for v in std))


def train_binaryvit(config: BinaryViTConfig, data: ImageDataset,
                    settings: TrainSettings = TrainSettings(),
                    context: DistributedContext = DistributedContext(),
                    teacher: BinaryViT | None = None) -> TrainResult:
    """Train the float teacher, then the binary student by distillation; see the module docstring.

    ``config`` must be binary; its class count and input statistics are taken from ``data``.
    ``teacher``, if given, is an already trained float network of the same image shape and
    classes, trained on the same data (e.g. the ``teacher`` of an earlier ``TrainResult``,
    possibly of another architecture): it is used as is and ``settings.teacher_epochs`` is
    ignored (to compare student recipes or architectures on one teacher).
    Metrics: ``test_accuracy``, ``train_accuracy``, ``teacher_test_accuracy`` (if a
    teacher), ``epochs``, ``teacher_epochs``, ``seconds`` (wall), ``cpu_seconds`` (this
    process's CPU time, all threads: ``cpu_time.py``), ``teacher_seconds_per_epoch``,
    ``student_seconds_per_epoch``, ``num_parameters``, ``train_size``, ``test_size``,
    ``world_size``. Denormal floats flush to zero while it runs: the float teacher's
    softmax produces them, and they slow CPU arithmetic several-fold.
    """
    if not config.binary:
        raise ConfigError("train_binaryvit trains the binary student: pass a binary config")
    config = fit_config_to_data(config, data)
    created_group = init_distributed(context)
    flush_denormal = torch.set_flush_denormal(True)
    try:
        return _train_teacher_and_student(config, data, settings, context, teacher)
    finally:
        if flush_denormal:
            torch.set_flush_denormal(False)
        if created_group:
            dist.destroy_process_group()


def _train_teacher_and_student(config: BinaryViTConfig, data: ImageDataset,
                               settings: TrainSettings, context: DistributedContext,
                               teacher: BinaryViT | None) -> TrainResult:
    started, cpu_started = time.perf_counter(), cpu_seconds()
    metrics: dict[str, float] = {"epochs": settings.epochs,
                                 "teacher_epochs": settings.teacher_epochs,
                                 "train_size": len(data.train_images),
                                 "test_size": len(data.test_images),
                                 "world_size": context.world_size}
    if teacher is not None:
        t = teacher.config
        if t.binary or (t.in_channels, t.image_size, t.num_classes) != (
                config.in_channels, config.image_size, config.num_classes):
            raise ConfigError(f"the given teacher must be a float network of "
                              f"{config.in_channels}x{config.image_size[0]}x{config.image_size[1]} "
                              f"images and {config.num_classes} classes")
        teacher.eval()
        metrics["teacher_test_accuracy"] = evaluate(teacher, data.test_images, data.test_labels)
        metrics["teacher_epochs"] = 0
    elif settings.teacher_epochs > 0:
        torch.manual_seed(settings.seed)
        teacher = BinaryViT(config.as_float())
        seconds = _fit(teacher, data, settings.teacher_epochs, settings, context, "teacher", None)
        teacher.eval()
        metrics["teacher_test_accuracy"] = evaluate(teacher, data.test_images, data.test_labels)
        metrics["teacher_seconds_per_epoch"] = sum(seconds) / len(seconds)
    torch.manual_seed(settings.seed + 1)
    student = BinaryViT(config)
    if teacher is not None and settings.student_init == "teacher":
        student.load_state_dict(teacher.state_dict())
    seconds = _fit(student, data, settings.epochs, settings, context, "student", teacher)
    metrics["student_seconds_per_epoch"] = sum(seconds) / len(seconds)
    metrics["test_accuracy"] = evaluate(student, data.test_images, data.test_labels)
    metrics["train_accuracy"] = evaluate(student, data.train_images, data.train_labels)
    metrics["num_parameters"] = count_parameters(student)
    metrics["seconds"] = time.perf_counter() - started
    metrics["cpu_seconds"] = cpu_seconds() - cpu_started
    return TrainResult(student, teacher, metrics)
