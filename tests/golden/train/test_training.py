"""Training: loss, augmentation, BN recalibration, a short real run, the CLI, and DDP."""
import math
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from binaryvit.cli import main
from binaryvit.errors import ConfigError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT, capture_activations
from binaryvit.golden.train.data import ImageDataset, load_digits_dataset, validation_dataset
from binaryvit.golden.train.training import (DistributedContext, TrainSettings,
                                    distributed_context_from_env, distillation_loss,
                                    student_loss,
                                    random_shift, recalibrate_batchnorm, train_binaryvit,
                                    warmup_cosine)

TINY = get_config("tiny-digits")


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: on shared cores, several spinning threads per process slow everyone."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits_subset(train: int, test: int) -> ImageDataset:
    data = load_digits_dataset()
    return ImageDataset(data.train_images[:train], data.train_labels[:train],
                        data.test_images[:test], data.test_labels[:test], 10, "digits subset")


def test_distillation_loss_is_soft_cross_entropy():
    teacher = torch.tensor([[0.0, 0.0]])
    student = torch.tensor([[0.0, math.log(3.0)]])
    # soft target (1/2, 1/2); log_softmax(student) = (log 1/4, log 3/4)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert distillation_loss(student, teacher).item() == pytest.approx(expected)


def test_distillation_at_a_temperature_is_scaled_by_its_square():
    teacher = torch.tensor([[0.0, 2.0 * math.log(3.0)]])
    student = torch.tensor([[0.0, 2.0 * math.log(7.0)]])
    # at T = 2: soft target (1/4, 3/4), student softmax (1/8, 7/8); times T^2 = 4
    expected = -4 * (0.25 * math.log(1 / 8) + 0.75 * math.log(7 / 8))
    assert distillation_loss(student, teacher, 2.0).item() == pytest.approx(expected)


def test_student_loss_mixes_distillation_and_label_cross_entropy():
    teacher = torch.tensor([[0.0, 0.0]])
    student = torch.tensor([[0.0, math.log(3.0)]])
    labels = torch.tensor([0])
    kd = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    ce = -math.log(0.25)
    assert student_loss(student, teacher, labels).item() == pytest.approx(kd)
    assert student_loss(student, teacher, labels, 1.0, 0.25).item() == pytest.approx(
        0.75 * kd + 0.25 * ce)
    assert student_loss(student, teacher, labels, 1.0, 1.0).item() == pytest.approx(ce)


def test_random_shift_moves_each_image_by_at_most_one_pixel():
    images = torch.zeros(200, 1, 8, 8)
    images[:, 0, 4, 3] = 1.0
    shifted = random_shift(images, 1, torch.Generator().manual_seed(0))
    rows, cols = torch.nonzero(shifted[:, 0] == 1.0, as_tuple=True)[1:]
    assert shifted.sum().item() == 200.0
    assert set(rows.tolist()) == {3, 4, 5} and set(cols.tolist()) == {2, 3, 4}


def test_recalibrated_batchnorm_holds_exact_data_statistics():
    torch.manual_seed(0)
    model = BinaryViT(TINY)
    images = load_digits_dataset().train_images[:100]
    recalibrate_batchnorm(model, images, batch_size=50)
    assert not model.training
    with torch.no_grad(), capture_activations(model, ["stem.conv"]) as acts:
        model(images)
    tokens = acts["stem.conv"].flatten(2).transpose(1, 2).reshape(-1, 32)
    # two equal batches: the average of batch means is the mean over all tokens
    assert torch.allclose(model.stem.norm.running_mean, tokens.mean(0), atol=1e-4)
    halves = tokens.reshape(2, -1, 32)
    assert torch.allclose(model.stem.norm.running_var, halves.var(1).mean(0), rtol=1e-4)


def test_distributed_context_selection():
    assert not distributed_context_from_env({}).enabled
    context = distributed_context_from_env({"WORLD_SIZE": "2", "RANK": "1"})
    assert context.enabled and not context.is_main
    with pytest.raises(ConfigError, match="RANK=2"):
        distributed_context_from_env({"WORLD_SIZE": "2", "RANK": "2"})


def zeros_and_ones() -> ImageDataset:
    data = load_digits_dataset()
    train, test = data.train_labels < 2, data.test_labels < 2
    return ImageDataset(data.train_images[train], data.train_labels[train],
                        data.test_images[test], data.test_labels[test], 2, "digits 0 and 1")


def test_short_training_beats_chance_by_a_wide_margin():
    data = zeros_and_ones()  # 288 train / 72 test images: a binary net learns it in 4 epochs
    result = train_binaryvit(TINY, data, TrainSettings(epochs=4, teacher_epochs=0, progress=False))
    assert not dist.is_initialized()
    assert result.teacher is None and result.model.config.binary
    assert result.model.config.num_classes == 2
    assert result.metrics["test_accuracy"] > 0.85  # chance is 0.5
    assert result.model.config.input_mean[0] == pytest.approx(
        float(data.train_images.mean()), rel=1e-5)


@pytest.mark.parametrize("student_init", ["teacher", "random"])
def test_student_starts_from_the_trained_teacher_or_at_random(student_init):
    # lr 1e-9 and no EMA: one student epoch leaves the parameters where they started
    data = digits_subset(64, 16)
    result = train_binaryvit(TINY, data, TrainSettings(
        epochs=1, teacher_epochs=1, lr=1e-9, student_lr=1e-9, ema_decay=0.0,
        student_init=student_init,
        progress=False))
    student, teacher = result.model.state_dict(), result.teacher.state_dict()
    assert student.keys() == teacher.keys()
    near = [torch.allclose(student[k], teacher[k], atol=1e-6) for k in student
            if k.endswith("weight") and "norm" not in k]
    assert len(near) > 20
    if student_init == "teacher":
        assert all(near)
    else:
        assert not any(near)


def test_settings_name_a_bad_student_init():
    with pytest.raises(ConfigError, match="student_init must be one of teacher, random"):
        TrainSettings(student_init="zeros")


@pytest.mark.parametrize("field, value, message", [
    ("student_lr", 0.0, "student_lr must be > 0"),
    ("warmup_epochs", -1, "warmup_epochs must be >= 0"),
    ("student_max_shift", -1, "student_max_shift must be >= 0"),
    ("temperature", 0.0, "temperature must be > 0"),
    ("label_weight", 1.5, r"label_weight must be in \[0, 1\]")])
def test_settings_name_a_bad_learning_rate_schedule(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainSettings(**{field: value})


def test_warmup_rises_linearly_then_decays_by_a_cosine():
    factor = warmup_cosine(4, 14)
    assert [factor(t) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # after the warm-up, 10 steps of cosine: half-way 0.5, the end 0
    assert factor(9) == pytest.approx(0.5)
    assert factor(14) == pytest.approx(0.0, abs=1e-12)
    plain = warmup_cosine(0, 8)
    assert plain(0) == 1.0 and plain(2) == pytest.approx((1 + math.sqrt(0.5)) / 2)


def test_student_lr_replaces_lr_for_the_student_only():
    # the student starts from the teacher; with student_lr 1e-9 (and no EMA) its weights do
    # not move, which they would at the teacher's lr 1e-2
    data = digits_subset(64, 16)
    result = train_binaryvit(TINY, data, TrainSettings(
        epochs=1, teacher_epochs=1, batch_size=32, lr=1e-2, student_lr=1e-9, warmup_epochs=2,
        ema_decay=0.0, student_init="teacher", progress=False))
    student, teacher = result.model.state_dict(), result.teacher.state_dict()
    moved = [k for k in student if k.endswith("weight") and "norm" not in k
             and not torch.allclose(student[k], teacher[k], atol=1e-6)]
    assert moved == []


def test_student_max_shift_changes_the_student_only():
    data = digits_subset(64, 16)
    runs = [train_binaryvit(TINY, data, TrainSettings(
        epochs=1, teacher_epochs=1, batch_size=32, max_shift=0, student_max_shift=shift,
        progress=False)) for shift in (0, 2)]
    teachers = [r.teacher.state_dict() for r in runs]
    students = [r.model.state_dict() for r in runs]
    assert all(torch.equal(teachers[0][k], teachers[1][k]) for k in teachers[0])
    assert not all(torch.equal(students[0][k], students[1][k]) for k in students[0])


@pytest.mark.parametrize("loss", [{"temperature": 4.0}, {"label_weight": 0.5}])
def test_the_student_loss_settings_change_the_student_only(loss):
    data = digits_subset(64, 16)
    runs = [train_binaryvit(TINY, data, TrainSettings(
        epochs=1, teacher_epochs=1, batch_size=32, progress=False, **fields))
        for fields in ({}, loss)]
    teachers = [r.teacher.state_dict() for r in runs]
    students = [r.model.state_dict() for r in runs]
    assert all(torch.equal(teachers[0][k], teachers[1][k]) for k in teachers[0])
    assert not all(torch.equal(students[0][k], students[1][k]) for k in students[0])


def test_a_given_teacher_is_reused_without_training_another():
    data = digits_subset(64, 16)
    first = train_binaryvit(TINY, data, TrainSettings(epochs=1, teacher_epochs=1, batch_size=32,
                                                      progress=False))
    before = {k: v.clone() for k, v in first.teacher.state_dict().items()}
    again = train_binaryvit(TINY, data, TrainSettings(epochs=1, teacher_epochs=5, batch_size=32,
                                                      progress=False), teacher=first.teacher)
    assert again.teacher is first.teacher
    assert again.metrics["teacher_epochs"] == 0
    assert all(torch.equal(before[k], v) for k, v in again.teacher.state_dict().items())
    assert again.metrics["teacher_test_accuracy"] == first.metrics["teacher_test_accuracy"]
    ablated = train_binaryvit(TINY.replace(multi_pool=False), data, TrainSettings(
        epochs=1, batch_size=32, progress=False), teacher=first.teacher)
    assert not ablated.model.config.multi_pool and ablated.teacher is first.teacher
    with pytest.raises(ConfigError, match="must be a float network of 1x8x8 images and 10"):
        train_binaryvit(TINY, data, TrainSettings(epochs=1, progress=False), teacher=again.model)


def test_validation_split_is_a_stratified_part_of_the_training_split_only():
    data = load_digits_dataset()
    val = validation_dataset(data)
    assert (len(val.train_images), len(val.test_images)) == (1149, 288)
    rows = {tuple(x.flatten().tolist()) for x in data.train_images}
    assert all(tuple(x.flatten().tolist()) in rows for x in val.test_images[:50])
    assert np.bincount(val.test_labels.numpy()).min() >= 27  # about 28.8 per class


def test_cli_train_then_eval_on_an_npz(tmp_path, capsys):
    data = digits_subset(100, 40)
    npz = tmp_path / "digits.npz"
    np.savez(npz, images=data.train_images[:, 0].numpy(), labels=data.train_labels.numpy(),
             test_images=data.test_images[:, 0].numpy(), test_labels=data.test_labels.numpy())
    out = tmp_path / "run" / "model.pt"
    assert main(["train", "--data", str(npz), "-o", str(out), "--epochs", "1",
                 "--teacher-epochs", "0", "--no-progress", "--threads", "1"]) == 0
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]
    checkpoint = load_checkpoint(out)
    assert checkpoint.metrics["epochs"] == 1 and checkpoint.metrics["train_size"] == 100
    capsys.readouterr()
    assert main(["eval", str(out), "--data", str(npz)]) == 0
    accuracy = checkpoint.metrics["test_accuracy"]
    assert f"top-1 {100 * accuracy:.2f}% ({round(40 * accuracy)}/40)" in capsys.readouterr().out


def _ddp_worker(rank, port, path):
    import os
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    result = train_binaryvit(TINY, digits_subset(128, 32),
                             TrainSettings(epochs=1, teacher_epochs=1, batch_size=32,
                                           progress=False),
                             DistributedContext(rank=rank, world_size=2))
    torch.save(result.model.state_dict(), f"{path}.{rank}")


def test_two_process_gloo_run_keeps_replicas_identical(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path / "state")), nprocs=2)
    first, second = (torch.load(tmp_path / f"state.{r}", weights_only=True) for r in (0, 1))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    torch.manual_seed(TrainSettings().seed + 1)  # the student's initialisation
    initial = BinaryViT(TINY).state_dict()
    assert not torch.equal(first["classifier.weight"], initial["classifier.weight"])
