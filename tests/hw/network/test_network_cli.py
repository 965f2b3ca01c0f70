"""`binaryvit generate` / `binaryvit sim`: one-line errors for missing inputs and bad
folding requests, nothing half-written."""
import json

import pytest
from network_models import int_model

from binaryvit.cli import main
from binaryvit.golden.intref.intmodel import save_intmodel

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


def test_sim_waits_twice_the_latency_and_reports_a_stall_in_one_line(tmp_path, capsys,
                                                                     monkeypatch):
    # tiny-digits at 4096 cycles per image keeps its ports quiet for ~26k cycles between an
    # image's last pixel and its first logit: a fixed 20000-cycle watchdog called that a
    # deadlock. The limit now follows the latency generate wrote into network.json.
    from binaryvit.sim import network_fast, network_sim
    save_intmodel(int_model("micro"), tmp_path / "intmodel.npz")
    assert main(["generate", str(tmp_path), "--target-cycles", "4096"]) == 0
    latency = json.loads((tmp_path / "rtl" / "network.json").read_text())["estimate"][
        "latency_cycles"]
    estimate = json.loads((tmp_path / "reports" / "estimate.json").read_text())
    assert latency == estimate["latency_cycles_model"] > 0
    seen = {}

    def stalled(*args, idle_limit, **kwargs):
        seen["idle_limit"] = idle_limit
        raise AssertionError(f"no stream moved for {idle_limit} cycles (deadlock?)")

    monkeypatch.setattr(network_sim, "IDLE_LIMIT", 100)   # below micro's latency
    monkeypatch.setattr(network_fast, "build_network_harness", lambda *a, **k: tmp_path)
    monkeypatch.setattr(network_fast, "run_network_fast", stalled)
    capsys.readouterr()
    code, err = run_cli(["sim", str(tmp_path), "--images", "2"], capsys)
    assert seen["idle_limit"] == 2 * latency
    assert code == 2 and "no stream moved" in err and "Traceback" not in err
    assert not (tmp_path / "reports" / "sim.json").exists()


def test_sim_refuses_probabilities_outside_0_1_and_no_jobs(tmp_path, capsys):
    for flag, value in (("--bubbles", "1.0"), ("--stalls", "-0.1")):
        code, err = run_cli(["sim", str(tmp_path), flag, value], capsys)
        assert code == 2 and "\n" not in err and f"{flag} must be in [0, 1)" in err
    code, err = run_cli(["sim", str(tmp_path), "--jobs", "0"], capsys)
    assert code == 2 and "\n" not in err and "--jobs must be at least 1, not 0" in err
