"""Fitting the network to a board: the fit check, the fastest folding that fits, the refusal
that names each overflowing resource, and `binaryvit generate --board`."""
import dataclasses
import json

import pytest
from network_models import int_model

from binaryvit.cli import main
from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.boards.definitions import get_board
from binaryvit.hw.estimate.device_fit import _targets, check_fit, estimate_network, fold_for_board
from binaryvit.golden.intref.intmodel import save_intmodel
from binaryvit.hw.estimate.resource_model import Resources
from binaryvit.hw.network.folding import fold_network
from binaryvit.hw.network.planner import plan_network

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

ULX3S, ICEBREAKER = get_board("ulx3s"), get_board("icebreaker")


def test_logic_is_held_to_the_margin_and_memories_to_the_device():
    needed = Resources(luts=72000, ffs=40000, brams=208, dsps=157)
    fit = check_fit(needed, ULX3S, margin=0.85)
    # 85 % of 83,640 logic cells is 71,094: 906 over; 208 of 208 block RAMs fit; 157 > 156
    assert [o.line() for o in fit.overflows] == [
        "TRELLIS_COMB: 72000 needed, 86 % of 83640; the limit is 71094 (85 %): 906 over",
        "MULT18X18D: 157 needed of 156 (101 % of 156): 1 over"]
    assert check_fit(needed, ULX3S, margin=0.9).overflows[-1].resource == "MULT18X18D"
    assert check_fit(Resources(71094, 71094, 208, 156), ULX3S, 0.85).ok
    with pytest.raises(ConfigError, match="margin"):
        check_fit(needed, ULX3S, margin=1.5)


def test_the_ice40_counts_flip_flops_inside_its_logic_cells():
    fit = check_fit(Resources(luts=6000, ffs=6000, brams=31, dsps=0), ICEBREAKER, margin=1.0)
    assert [o.resource for o in fit.overflows] == ["ICESTORM_LC", "ICESTORM_RAM"]
    assert fit.overflows[1].line() == "ICESTORM_RAM: 31 needed of 30 (103 % of 30): 1 over"
    assert fit.utilisation() == {"ICESTORM_LC": (6000, 5280), "ICESTORM_RAM": (31, 30)}


def test_the_arty_has_no_resource_model():
    with pytest.raises(ConfigError, match="no resource model for the xilinx family"):
        check_fit(Resources(), get_board("arty"))


def test_a_board_nothing_fits_names_each_resource_of_the_smallest_folding():
    with pytest.raises(FoldingError) as error:
        fold_for_board(int_model("micro"), ICEBREAKER)
    message = str(error.value)
    assert "no folding fits the 1BitSquared iCEBreaker" in message
    assert "ICESTORM_LC:" in message and "ICESTORM_RAM:" in message and "over" in message
    # the smallest folding is the slowest target's
    assert f"at the smallest ({fold_network(int_model('micro'), target_cycles=_targets(int_model('micro'))[-1]).bottleneck} cycles" in message


def test_too_few_dsp_blocks_suggests_the_boards_formats():
    scarce = dataclasses.replace(ULX3S, capacity={**ULX3S.capacity, "MULT18X18D": 40})
    with pytest.raises(FoldingError, match=r"MULT18X18D: \d+ needed of 40.*--stream-width 17 "
                                           r"--const-bits 18"):
        fold_for_board(int_model("micro"), scarce)


def test_generate_for_a_board_picks_the_fastest_folding_that_fits(tmp_path, capsys):
    model = int_model("micro")
    out = tmp_path / "out"
    out.mkdir()
    save_intmodel(model, out / "intmodel.npz")
    assert main(["generate", str(out), "--board", "ulx3s"]) == 0
    estimate = json.loads((out / "reports" / "estimate.json").read_text())
    device = estimate["device"]
    assert device["board"] == "ulx3s" and device["fits"] and device["overflows"] == []
    chosen = estimate["cycles_per_image"]
    needed = Resources(**estimate["resources"]["ecp5"]["total"])
    assert check_fit(needed, ULX3S, device["margin"]).ok
    assert "fits ulx3s (logic within 95 %)" in capsys.readouterr().out
    # the micro model's 24 × 20-bit multipliers: DSP blocks bound it; every faster target of
    # the search fails, under every LUT-RAM option
    faster = [t for t in _targets(model) if t < chosen]
    assert faster
    network = plan_network(model, fold_network(model, target_cycles=faster[-1]))
    assert not check_fit(estimate_network(network, ULX3S).total, ULX3S, device["margin"]).ok
    with pytest.raises(SystemExit):
        main(["generate", str(out), "--board", "ulx3s", "--target-cycles", "64"])
