"""intmodel.npz: save/load round trip and refusal of damaged or foreign files."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from binaryvit.errors import CheckpointError
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.intref.intmodel import load_intmodel, save_intmodel
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.quantize.fold import fold_model
from binaryvit.quantize.formats import QuantFormats


@pytest.fixture(scope="module")
def intmodel():
    torch.manual_seed(3)
    model = BinaryViT(get_config("tiny-digits")).eval()
    return fold_model(model, QuantFormats(stream_frac=16, input_range=(0, 16)))


@pytest.fixture(scope="module")
def saved(intmodel, tmp_path_factory):
    path = tmp_path_factory.mktemp("intmodel") / "intmodel.npz"
    save_intmodel(intmodel, path)
    return path


def test_round_trip_keeps_every_step_and_constant(intmodel, saved):
    loaded = load_intmodel(saved)
    assert loaded.config == intmodel.config
    assert loaded.formats == intmodel.formats
    assert loaded.input_range == intmodel.input_range
    assert [s.name for s in loaded.steps] == [s.name for s in intmodel.steps]
    for a, b in zip(intmodel.steps, loaded.steps):
        assert (a.op, a.inputs, a.params) == (b.op, b.inputs, b.params)
        assert a.arrays.keys() == b.arrays.keys()
        for key in a.arrays:
            assert a.arrays[key].dtype == b.arrays[key].dtype
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])


def test_round_trip_gives_the_same_logits(intmodel, saved):
    images = load_digits_dataset().test_images[:40]
    before = run_int_network(intmodel, images).logits
    after = run_int_network(load_intmodel(saved), images).logits
    assert torch.equal(before, after)


def test_truncated_file_is_refused(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 7):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="corrupt or truncated|missing|meta"):
            load_intmodel(bad)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_intmodel(tmp_path / "nope.npz")


def _rewrite(saved, tmp_path, edit):
    with np.load(saved) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    return path


def test_other_format_version_is_refused(saved, tmp_path):
    def edit(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta["format_version"] = 99
        arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_intmodel(_rewrite(saved, tmp_path, edit))


def test_missing_array_is_named(saved, tmp_path):
    key = "stages.0.blocks.0.attention.q_proj/weight_bits"
    with pytest.raises(CheckpointError, match="q_proj/weight_bits"):
        load_intmodel(_rewrite(saved, tmp_path, lambda arrays: arrays.pop(key)))


def test_wrong_shape_is_named(saved, tmp_path):
    key = "stages.0.blocks.0.norm1/mul"
    def edit(arrays):
        arrays[key] = arrays[key][:-1]
    with pytest.raises(CheckpointError, match="norm1/mul"):
        load_intmodel(_rewrite(saved, tmp_path, edit))


def test_a_plain_zip_is_not_an_intmodel(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError):
        load_intmodel(path)
