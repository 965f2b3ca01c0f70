"""Your own config and data through every command: a JSON config for 8x8 RGB images, trained
(1 epoch, one thread), evaluated, quantized, generated, simulated and run by `flow`; data or
configs that do not fit are refused in one line with exit 2 and nothing written."""
import json
import shutil

import numpy as np
import pytest

from binaryvit.cli import main
from binaryvit.golden.float_model.checkpoint import load_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")
USER_CONFIG = dict(name="rgb-8", image_size=[8, 8], patch_size=2, embed_dims=[8, 16],
                   depths=[1, 1], num_heads=[1, 2], mlp_dims=[16, 32], sr_ratios=[2, 1])
TRAIN = ["--epochs", "1", "--teacher-epochs", "0", "--threads", "1", "--batch-size", "8",
         "--no-progress"]


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def refused(argv, capsys, *words):
    code, _, err = cli(argv, capsys)
    assert code == 2 and "\n" not in err and err.startswith(f"binaryvit {argv[0]}: error: ")
    for word in words:
        assert word in err, err


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """my.json (from `binaryvit config tiny-32x32x3`, edited), rgb.npz (24 images 3x8x8,
    2 classes) and digits-sized gray.npz."""
    root = tmp_path_factory.mktemp("byo")
    rng = np.random.default_rng(0)
    np.savez(root / "rgb.npz", images=rng.integers(0, 256, (24, 3, 8, 8), dtype=np.uint8),
             labels=np.arange(24) % 2)
    np.savez(root / "gray.npz", images=rng.integers(0, 17, (24, 8, 8), dtype=np.uint8),
             labels=np.arange(24) % 2)
    return root


@pytest.fixture(scope="module")
def user_config(workspace):
    import contextlib
    import io
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["config", "tiny-32x32x3"]) == 0
    config = {**json.loads(text.getvalue()), **USER_CONFIG}
    path = workspace / "my.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def generated(workspace, user_config):
    """OUT after train, quantize and generate on the user config and RGB data."""
    out = workspace / "out"
    assert main(["train", "--config", str(user_config), "--data", str(workspace / "rgb.npz"),
                 "-o", str(out / "model.pt"), *TRAIN]) == 0
    assert main(["quantize", str(out / "model.pt"), "-o", str(out),
                 "--data", str(workspace / "rgb.npz")]) == 0
    assert main(["generate", str(out)]) == 0
    return out


def test_a_user_config_trains_evaluates_quantizes_and_generates(generated, workspace, capsys):
    checkpoint = load_checkpoint(generated / "model.pt")
    assert checkpoint.config.name == "rgb-8" and checkpoint.config.in_channels == 3
    assert checkpoint.config.image_size == (8, 8) and checkpoint.config.num_classes == 2
    code, out, _ = cli(["eval", generated / "model.pt", "--data", workspace / "rgb.npz"], capsys)
    assert code == 0 and "on the test split of" in out and "(rgb-8, binary)" in out
    network = json.loads((generated / "rtl" / "network.json").read_text())
    assert network["patch_size"] == 2 and network["classes"] == 2
    assert (generated / "rtl" / "binaryvit_top.v").is_file()


def test_data_that_does_not_fit_the_model_is_refused(generated, workspace, user_config, tmp_path,
                                                     capsys):
    gray = workspace / "gray.npz"
    refused(["eval", generated / "model.pt", "--data", gray], capsys,
            "1 channel(s) of 8x8", "needs 3 channel(s) of 8x8")
    refused(["quantize", generated / "model.pt", "-o", tmp_path / "q", "--data", gray], capsys,
            "needs 3 channel(s)")
    assert not (tmp_path / "q").exists()
    refused(["sim", generated, "--data", gray, "--images", "2"], capsys, "needs 3 channel(s)")
    refused(["train", "--config", user_config, "--data", gray, "-o", tmp_path / "m.pt", *TRAIN],
            capsys, "needs 3 channel(s) of 8x8")
    refused(["flow", "--config", user_config, "--data", gray, "-o", tmp_path / "flow"], capsys,
            "needs 3 channel(s) of 8x8")
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "flow").exists()


def test_a_bad_user_config_is_refused_before_anything_is_written(workspace, user_config,
                                                                tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(user_config.read_text()), "sr_ratios": [3, 1]}))
    for command in (["train", "-o", tmp_path / "m.pt"], ["flow", "-o", tmp_path / "flow"]):
        refused([*command, "--config", bad, "--data", workspace / "rgb.npz"], capsys,
                "sr_ratios[0] is 3", "valid: 1, 2, 4")
    refused(["train", "--config", tmp_path / "none.json", "-o", tmp_path / "m.pt"], capsys,
            "not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


@pytest.mark.slow
def test_sim_and_flow_run_the_user_config_bit_exact_in_verilator(generated, workspace,
                                                                 user_config, tmp_path, capsys):
    code, out, _ = cli(["sim", generated, "--data", workspace / "rgb.npz", "--images", "3"],
                       capsys)
    assert code == 0 and "3 images: 0 mismatches" in out
    report = json.loads((generated / "reports" / "sim.json").read_text())
    assert all(image["match"] for image in report["images"])
    flow_out = tmp_path / "flow"
    flow_out.mkdir()
    shutil.copy(generated / "model.pt", flow_out / "model.pt")   # flow reuses it: same Verilog
    code, out, _ = cli(["flow", "--config", user_config, "--data", workspace / "rgb.npz",
                        "-o", flow_out, "--images", "2", "--no-progress"], capsys)
    assert code == 0 and "RTL vs integer reference on those 2 images: 0 mismatching logits" in out
