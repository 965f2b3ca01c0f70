"""`binaryvit generate` / `binaryvit sim`: one-line errors for missing inputs and bad
folding requests, nothing half-written."""
import json

import pytest
from network_models import int_model

from binaryvit.cli import main
from binaryvit.quantize.intmodel import save_intmodel

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def run_cli(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_generate_without_an_integer_model(tmp_path, capsys):
    code, err = run_cli(["generate", str(tmp_path)], capsys)
    assert code == 2 and "\n" not in err
    assert "intmodel.npz not found" in err and "binaryvit quantize" in err
    assert not (tmp_path / "rtl").exists()


def test_sim_before_generate(tmp_path, capsys):
    code, err = run_cli(["sim", str(tmp_path)], capsys)
    assert code == 2 and "network.json not found" in err and "binaryvit generate" in err


def test_generate_refuses_an_impossible_target_and_bad_overrides(tmp_path, capsys):
    save_intmodel(int_model("micro"), tmp_path / "intmodel.npz")
    code, err = run_cli(["generate", str(tmp_path), "--target-cycles", "3"], capsys)
    assert code == 2 and "target_cycles=3 cannot be met" in err and "best achievable" in err
    overrides = tmp_path / "fold.json"
    overrides.write_text(json.dumps({"stages.0.blocks.0.mlp.fc1": {"pe": 5}}))
    code, err = run_cli(["generate", str(tmp_path), "--folding", str(overrides)], capsys)
    assert code == 2 and "pe=5 is not valid" in err
    assert not (tmp_path / "rtl").exists() and not (tmp_path / "reports").exists()
