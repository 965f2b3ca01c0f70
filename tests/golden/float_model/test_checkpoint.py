"""Checkpoint save / load round trip, and refusal of missing, corrupt or foreign files."""
import io
import pickle

import pytest
import torch

from binaryvit.errors import CheckpointError
from binaryvit.golden.float_model.checkpoint import (FORMAT, KEYS, load_checkpoint, load_model,
                                         save_checkpoint)
from binaryvit.golden.float_model.config import CONFIGS, BinaryViTConfig, get_config
from binaryvit.golden.float_model.network import BinaryViT

TINY = get_config("tiny-digits")


def trained_looking_model(config=TINY):
    torch.manual_seed(1)
    model = BinaryViT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_dict_round_trip(name):
    config = get_config(name).replace(multi_pool=False, binary=False)
    assert BinaryViTConfig.from_dict(config.to_dict()) == config


def test_round_trip_restores_weights_config_and_outputs(tmp_path):
    config = TINY.replace(layer_scale=False, input_mean=(3.0,), input_std=(5.0,))
    model = trained_looking_model(config)
    path = save_checkpoint(tmp_path / "model.pt", model, {"test_accuracy": 0.9, "epochs": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    raw = torch.load(path, weights_only=True)
    assert set(raw) == set(KEYS) and raw["format"] == FORMAT
    assert all(isinstance(v, str) for v in raw["versions"].values())
    loaded, loaded_config = load_model(path)
    assert loaded_config == config and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randint(0, 17, (5, 1, 8, 8)).float()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert load_checkpoint(path).metrics == {"test_accuracy": 0.9, "epochs": 3}


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, trained_looking_model(), {})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "payload": _Payload()}, buffer, pickle_module=pickle)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_foreign_and_incomplete_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a binaryvit checkpoint"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "format_version": 1, "config": TINY.to_dict()}, path)
    with pytest.raises(CheckpointError, match="lacks state_dict"):
        load_checkpoint(path)


def test_weights_that_do_not_match_the_config(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, trained_looking_model(), {})
    payload = torch.load(path, weights_only=True)
    payload["config"]["multi_pool"] = False
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(path)
