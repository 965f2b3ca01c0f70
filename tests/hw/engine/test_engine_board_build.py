"""The engine's board top through Yosys and nextpnr for the iCEBreaker (slow: ~2.5 min on the
shared machine), against the resource estimate `generate` wrote: SPRAM, SB_MAC16 and EBR
equal, logic cells within 10 %. Until the core fits the UP5K the build stops at placement;
nextpnr's utilisation (printed before placement) is what is compared, and the command's error
names the overflow."""
import json

import pytest

from binaryvit.cli import main
from binaryvit.golden.intref.intmodel import save_intmodel
from binaryvit.hw.boards.board_build import BUILD_JSON
from engine_models import engine_quantized


@pytest.mark.board
@pytest.mark.slow
def test_engine_board_top_on_the_icebreaker_matches_the_estimate(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    save_intmodel(engine_quantized("micro").intmodel, out / "intmodel.npz")
    assert main(["generate", str(out), "--arch", "engine", "--board", "icebreaker"]) == 0
    estimate = json.loads((out / "reports" / "estimate.json").read_text())
    fits = estimate["device"]["fits"]
    code = main(["build", str(out), "--board", "icebreaker", "--force"])
    printed = capsys.readouterr()
    build = json.loads((out / "build" / "icebreaker" / BUILD_JSON).read_text())
    used = {name: usage["used"] for name, usage in build["utilisation"].items()}
    want = estimate["resources"]["ice40"]["total"]
    assert used["ICESTORM_SPRAM"] == want["sprams"] == 4
    assert used["ICESTORM_DSP"] == want["dsps"]
    assert used["ICESTORM_RAM"] == want["brams"]
    assert abs(used["ICESTORM_LC"] - want["luts"]) <= 0.10 * used["ICESTORM_LC"]
    if fits:
        assert code == 0 and "iceprog -o 1M" in printed.out
        assert (out / "build" / "icebreaker" / "params.bin").read_bytes() == \
            (out / "params.bin").read_bytes()
    else:
        assert code == 2 and "ICESTORM_LC" in printed.err
