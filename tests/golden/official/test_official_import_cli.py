"""`binaryvit import`: a good import, and every bad input refused with one line naming it,
exit status 2 and no file (not even a temporary one) left behind."""
import json
import pickle
from pathlib import PurePosixPath

import pytest
import torch

from binaryvit.cli import main
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from official_files import (BINARY_CKPT, FIXTURE, VIT_CONFIG, binary_state_dict,
                            inputs_and_logits, save, training_checkpoint)


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def assert_refused(tmp_path, capsys, checkpoint, *words, config=VIT_CONFIG):
    out = tmp_path / "out"
    argv = ["import", str(checkpoint), "-o", str(out / "model.pt")]
    if config is not None:
        argv += ["--config", str(config)]
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "\n" not in err and err.startswith("binaryvit import: error: ")
    for word in words:
        assert word in err, err
    assert not out.exists() or not any(out.iterdir())


def test_import_writes_a_binaryvit_checkpoint(tmp_path, capsys):
    out = tmp_path / "out" / "model.pt"
    code, printed, _ = run_cli(["import", str(BINARY_CKPT), "--config", str(VIT_CONFIG),
                                "-o", str(out), "--input-mean", "0,0,0",
                                "--input-std", "1,1,1"], capsys)
    assert code == 0 and "binary, widths 8/16/32/64, depths 1/1/2/1" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]
    x, expected, _ = inputs_and_logits()
    with torch.no_grad():
        logits = load_checkpoint(out).build_model()(x)
    assert (logits - expected).abs().max() <= 1e-4 * expected.abs().max()
    # An existing output is not replaced without --force.
    code, _, err = run_cli(["import", str(BINARY_CKPT), "--config", str(VIT_CONFIG),
                            "-o", str(out)], capsys)
    assert code == 2 and "exists already" in err


def edited(**changes):
    state_dict = binary_state_dict()
    for key, value in changes.items():
        state_dict[key.replace("__", ".")] = value
    return state_dict


LAYER0 = "vit.encoder.layer.0."


@pytest.mark.parametrize("args, words", [
    (dict(replace_ln_bn=False), ["LayerNorm", "--replace-ln-bn"]),
    (dict(some_fp=True), ["--some-fp"]),
    (dict(weight_bits=2, input_bits=2), ["--weight-bits 2 --input-bits 2", "1/1", "32/32"]),
    (dict(weight_bits=1, input_bits=32), ["--weight-bits 1 --input-bits 32"]),
    (dict(model_type="deit"), ["model type 'deit'", "extra-res-pyramid"]),
])
def test_flags_we_cannot_express_are_refused(tmp_path, capsys, args, words):
    path = save(training_checkpoint(binary_state_dict(), **args), tmp_path / "ckpt.pth")
    assert_refused(tmp_path, capsys, path, *words)


def test_a_layernorm_state_dict_is_refused_by_its_keys(tmp_path, capsys):
    state_dict = {k: v for k, v in binary_state_dict().items()
                  if not ("layernorm_" in k and k.rsplit(".", 1)[1] in
                          ("running_mean", "running_var", "num_batches_tracked"))}
    assert_refused(tmp_path, capsys, save(state_dict, tmp_path / "ln.pth"), "LayerNorm")


def test_other_bit_widths_are_refused_by_their_buffers(tmp_path, capsys):
    state_dict = binary_state_dict()
    state_dict[LAYER0 + "attention.attention.query.weight_clip_val"] = torch.tensor([-2.5, 2.5])
    assert_refused(tmp_path, capsys, save(state_dict, tmp_path / "w2.pth"), "weight_clip_val",
                   "2-31 bits")


@pytest.mark.parametrize("clip, words", [(0.0, ["= 0.0", "c <= 0"]), (-0.01, ["c <= 0"]),
                                         (float("nan"), ["nan"]), (5e-7, ["below 1e-06"])])
def test_an_attention_clip_we_cannot_represent_is_refused(tmp_path, capsys, clip, words):
    key = "vit.encoder.layer.2.attention.attention.att_prob_clip"
    path = save({"model": edited(**{key: torch.tensor(clip)})}, tmp_path / "clip.pth")
    assert_refused(tmp_path, capsys, path, key, *words)


def test_exact_zero_signs_are_refused(tmp_path, capsys):
    key = LAYER0 + "attention.attention.query.weight"
    weight = binary_state_dict()[key].clone()
    weight[3] = 0.25                      # a constant row: every weight equals the row mean
    path = save(edited(**{key: weight}), tmp_path / "row.pth")
    assert_refused(tmp_path, capsys, path, key, "8 weight(s) equal to their row mean",
                   "ternary")
    key = "vit.encoder.patch_embed2.proj.weight"
    weight = binary_state_dict()[key].clone()
    weight[0, 1, 1, 0] = 0.0
    path = save(edited(**{key: weight}), tmp_path / "merge.pth")
    assert_refused(tmp_path, capsys, path, key, "1 weight(s) exactly 0")


def test_unknown_layouts_are_refused(tmp_path, capsys):
    assert_refused(tmp_path, capsys, save([1, 2, 3], tmp_path / "list.pth"), "unknown layout")
    assert_refused(tmp_path, capsys, save({"state": {"a": torch.zeros(1)}}, tmp_path / "d.pth"),
                   "unknown layout")
    other = {"features.0.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(10, 4)}
    assert_refused(tmp_path, capsys, save(other, tmp_path / "cnn.pth"), "unknown layout",
                   "vit.embeddings.patch_embeddings.projection.weight")
    assert_refused(tmp_path, capsys, save({"model": {"a": 1}}, tmp_path / "m.pth"),
                   "unknown layout")
    flat = {k: v for k, v in binary_state_dict().items()
            if not k.startswith("vit.encoder.patch_embed")}      # their extra-res (no pyramid)
    assert_refused(tmp_path, capsys, save(flat, tmp_path / "flat.pth"), "unknown layout",
                   "no vit.encoder.patch_embed1", "extra-res-pyramid")
    ours = tmp_path / "ours.pt"
    assert main(["import", str(BINARY_CKPT), "--config", str(VIT_CONFIG), "-o", str(ours)]) == 0
    assert_refused(tmp_path, capsys, ours, "binaryvit checkpoint already")


def test_a_file_needing_other_classes_is_refused_without_running_them(tmp_path, capsys):
    payload = training_checkpoint(binary_state_dict())
    payload["args"].output_dir = PurePosixPath("logs")    # a class outside the allow-list
    path = save(payload, tmp_path / "ckpt.pth")
    assert_refused(tmp_path, capsys, path, "pathlib.PurePosixPath", "does not allow")
    with open(tmp_path / "plain.pth", "wb") as handle:
        pickle.dump({"model": {}}, handle)
    assert_refused(tmp_path, capsys, tmp_path / "plain.pth", "plain.pth")


@pytest.mark.parametrize("change, words", [
    ({"hidden_size": [16, 32, 64, 128]}, ["vit.embeddings.position_embeddings is [1, 3136, 8]",
                                         "[1, 3136, 16]", "does not match"]),
    ({"depths": [1, 1, 1, 1]}, ["vit.encoder.layer.3.layernorm_before.weight is [32]",
                                "makes it [64]", "does not match"]),
    ({"depths": [1, 1, 2, 2]}, ["lacks vit.encoder.layer.5", "does not match"]),
    ({"reduction_ratio": [1, 2, 1, 1]}, ["layer.0.attention.attention.mover", "no place for"]),
    ({"intermediate_size": [16, 64, 128, 256]}, ["intermediate.dense.weight is [32, 8]"]),
    ({"num_attention_heads": [3, 1, 2, 2]}, ["num_heads[0] is 3", "valid: 1, 2, 4, 8"]),
    ({"hidden_size": [8, 16, 32]}, ["hidden_size must be a list of 4 integers"]),
    ({"image_size": 32}, ["image_size 32", "224x224"]),
])
def test_a_config_that_does_not_match_the_checkpoint_is_refused(tmp_path, capsys, change, words):
    config = json.loads(VIT_CONFIG.read_text())
    config.update(change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert_refused(tmp_path, capsys, BINARY_CKPT, *words, config=path)


def test_without_a_config_the_papers_shape_is_assumed_and_refused_here(tmp_path, capsys):
    assert_refused(tmp_path, capsys, BINARY_CKPT, "is [1, 3136, 8]", "[1, 3136, 64]",
                   config=None)


def test_a_truncated_or_missing_file_is_refused(tmp_path, capsys):
    data = BINARY_CKPT.read_bytes()
    for size in (len(data) // 2, 100, 0):
        path = tmp_path / f"cut{size}.pth"
        path.write_bytes(data[:size])
        assert_refused(tmp_path, capsys, path, f"cut{size}.pth", "truncated")
    assert_refused(tmp_path, capsys, tmp_path / "none.pth", "none.pth", "not found")
    assert_refused(tmp_path, capsys, FIXTURE, "not a file")


def test_a_bad_or_missing_official_config_is_refused(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    assert_refused(tmp_path, capsys, BINARY_CKPT, "not JSON", config=bad)
    assert_refused(tmp_path, capsys, BINARY_CKPT, "not found", config=tmp_path / "no.json")
