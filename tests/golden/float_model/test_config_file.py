"""Your own config: named configs print as JSON files that load back, the new named shapes,
and every config that cannot work refused naming the field and its valid values."""
import dataclasses
import json

import pytest

from binaryvit.cli import main
from binaryvit.errors import ConfigError
from binaryvit.golden.float_model.config import CONFIGS, BinaryViTConfig
from binaryvit.golden.float_model.config_file import (config_json, load_config_file,
                                                      resolve_config)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_printed_named_config_loads_back_equal(tmp_path, name, capsys):
    assert main(["config", name]) == 0
    path = tmp_path / "my.json"
    path.write_text(capsys.readouterr().out)
    assert load_config_file(path) == CONFIGS[name]
    assert resolve_config(str(path)) == CONFIGS[name] == resolve_config(name)
    assert json.loads(config_json(CONFIGS[name])) == CONFIGS[name].to_dict()


def test_the_new_named_configs_have_the_documented_shapes():
    gray = CONFIGS["tiny-28x28x1"]
    assert (gray.in_channels, gray.image_size, gray.patch_size) == (1, (28, 28), 2)
    assert [(s.dim, s.grid, s.num_keys) for s in gray.stages()] == [
        (32, (14, 14), 49), (64, (7, 7), 49)]
    rgb = CONFIGS["tiny-32x32x3"]
    assert (rgb.in_channels, rgb.image_size, rgb.patch_size) == (3, (32, 32), 2)
    assert [(s.dim, s.grid, s.heads, s.num_keys) for s in rgb.stages()] == [
        (32, (16, 16), 2, 16), (64, (8, 8), 4, 16), (128, (4, 4), 8, 16)]


def test_the_config_command_lists_the_named_configs(capsys):
    assert main(["config"]) == 0
    listed = capsys.readouterr().out
    for name in CONFIGS:
        assert name in listed
    assert "28x28x1 input, patch 2, widths 32/64 on grids 14x14/7x7" in listed


BASE = CONFIGS["tiny-28x28x1"].to_dict()


@pytest.mark.parametrize("changes, words", [
    (dict(patch_size=3), ["patch_size 3 does not divide image_size (28, 28)",
                          "valid: 1, 2, 4, 7, 14, 28"]),
    (dict(patch_size=4), ["grid (7, 7), which must be even", "multiple of 8"]),
    (dict(num_heads=[3, 4]), ["num_heads[0] is 3", "width 32", "valid: 1, 2, 4, 8, 16, 32"]),
    (dict(num_heads=[2, 5]), ["num_heads[1] is 5", "width 64"]),
    (dict(sr_ratios=[3, 1]), ["sr_ratios[0] is 3", "grid (14, 14)", "valid: 1, 2, 7, 14"]),
    (dict(sr_ratios=[2, 2]), ["sr_ratios[1] is 2", "grid (7, 7)", "valid: 1, 7"]),
    (dict(mlp_dims=[100, 256]), ["mlp_dims[0] is 100", "valid: 32, 64, 128"]),
    (dict(embed_dims=[32, 48]), ["embed_dims[1] is 48", "must be 64"]),
    (dict(depths=[2, 2, 2]), ["depths has 3 entries, embed_dims has 2"]),
    (dict(sr_ratios=[2]), ["sr_ratios has 1 entries, embed_dims has 2"]),
    (dict(depths=[0, 2]), ["depths[0] must be >= 1"]),
    (dict(in_channels=3), ["input_mean has 1 entries; in_channels 3"]),
    (dict(input_std=[0.0]), ["input_std must be > 0"]),
    (dict(num_classes=1), ["num_classes must be >= 2"]),
    (dict(image_size=[28]), ["image_size must be (height, width)"]),
    (dict(pool_kernels=[3, 4]), ["pool_kernels must be odd"]),
    (dict(global_pool=False, sr_ratios=[2, 7]), ["sr_ratios: a class token", "sr_ratio 1 in the last stage"]),
    (dict(embed_dims="32"), ["embed_dims must be a list"]),
    (dict(embed_dims=[32.5, 65]), ["embed_dims must be a list of integers"]),
    (dict(binary="yes"), ["binary must be true or false"]),
    (dict(patch_size=True), ["patch_size must be an integer"]),
    (dict(name=""), ["name must be a non-empty string"]),
    (dict(input_mean=["a"]), ["input_mean must be a list of numbers"]),
    (dict(colour=True), ["unknown config keys: colour"]),
])
def test_a_config_that_cannot_work_is_refused_naming_the_field(tmp_path, changes, words):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({**BASE, **changes}))
    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"config file {path}: ")
    for word in words:
        assert word in message, message


def test_missing_fields_and_bad_files_are_refused(tmp_path):
    missing = {k: v for k, v in BASE.items() if k != "depths"}
    cases = {"missing.json": json.dumps(missing), "list.json": "[1, 2]", "broken.json": "{",
             "nan.json": json.dumps({**BASE, "input_std": [float("nan")]})}
    words = {"missing.json": "lacks keys: depths", "list.json": "must be a dict",
             "broken.json": "not valid JSON", "nan.json": "input_std must be a list of numbers"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=words[name]):
            load_config_file(tmp_path / name)
    with pytest.raises(ConfigError, match="not found"):
        resolve_config(str(tmp_path / "none.json"))
    with pytest.raises(ConfigError, match="unknown config 'tiny'.*tiny-32x32x3.*json"):
        resolve_config("tiny")


def test_the_optional_switches_default_like_the_dataclass(tmp_path):
    required = {f.name for f in dataclasses.fields(BinaryViTConfig)
                if f.default is dataclasses.MISSING}
    path = tmp_path / "short.json"
    path.write_text(json.dumps({k: v for k, v in BASE.items() if k in required}))
    assert load_config_file(path) == CONFIGS["tiny-28x28x1"]


def test_the_config_command_refuses_a_bad_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**BASE, "num_heads": [3, 4]}))
    assert main(["config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("binaryvit config: error: ")
    assert "num_heads[0] is 3" in err
