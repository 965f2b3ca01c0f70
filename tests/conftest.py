"""Shared fixtures.

``trained_checkpoint``: a tiny-digits binary BinaryViT trained briefly (3 epochs, no
teacher; about 89% test top-1, ~20 s on one thread), saved with H1's checkpoint API. It is
trained once per test run: the file lives beside the per-worker temp folders of the run
(under ``pytest -n``, ``getbasetemp().parent``), and a file lock makes the ``pytest -n`` workers wait for the
first one to finish instead of training again.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from filelock import FileLock

FIXTURE_SETTINGS = dict(epochs=3, teacher_epochs=0, lr=5e-3, batch_size=32, max_shift=0,
                        warmup_epochs=0, seed=0, progress=False)


def _train(path: Path) -> None:
    from binaryvit.golden.float_model.checkpoint import save_checkpoint
    from binaryvit.golden.float_model.config import get_config
    from binaryvit.golden.train.data import load_digits_dataset
    from binaryvit.golden.train.training import TrainSettings, train_binaryvit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_binaryvit(get_config("tiny-digits"), load_digits_dataset(),
                                 TrainSettings(**FIXTURE_SETTINGS))
    finally:
        torch.set_num_threads(threads)
    save_checkpoint(path, result.model, result.metrics)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread_per_worker():
    """Under ``pytest -n`` the workers already fill the cores: more intra-op threads only
    oversubscribe them (measured: some tests 4x slower on the shared 2-core machine)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """Path of a briefly trained tiny-digits checkpoint (shared by every worker of a run)."""
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's basetemp is a child of the run's folder; alone, it is the run's
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / "trained_tiny_digits.pt"
    with FileLock(str(root / "trained_tiny_digits.lock")):
        if not path.exists():
            _train(path)
    return path
