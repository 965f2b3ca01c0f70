"""The engine's resource estimate (``hw/estimate/engine_estimate.py``) against the board builds
recorded in ``fixtures/engine_board_builds.json`` (micro's engine board top for the iCEBreaker
and the ULX3S, as ``binaryvit build`` makes it): block RAM, DSPs and SPRAM equal to nextpnr's,
logic cells and flip-flops within 10 %. The slow ``test_engine_board_build.py`` checks a live
iCE40 build the same way; rebuild and re-record when the core changes."""
import json
from pathlib import Path

import pytest

from binaryvit.hw.engine.board.generate import engine_target
from binaryvit.hw.estimate.engine_estimate import engine_resources
from binaryvit.hw.estimate.resource_model import Resources

BUILDS = json.loads((Path(__file__).parent / "fixtures" / "engine_board_builds.json")
                    .read_text())["builds"]


@pytest.mark.parametrize("build", BUILDS, ids=[b["board"] for b in BUILDS])
def test_the_engine_estimate_matches_the_recorded_board_build(build):
    family, parts = engine_resources(engine_target(build["board"]))
    assert family == build["family"]
    total = sum(parts.values(), start=Resources())
    got = total.rounded()
    want = build["nextpnr"]
    assert (got["brams"], got["dsps"], got["sprams"]) == \
        (want["block RAM"], want["DSP"], want["SPRAM"])
    assert abs(got["luts"] - want["logic"]) <= 0.10 * want["logic"], (got, want)
    assert abs(got["ffs"] - want["flip-flops"]) <= 0.10 * want["flip-flops"], (got, want)
