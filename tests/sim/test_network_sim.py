"""Whole inferences in Verilator: real digit images through the generated accelerator,
bit-exact against the integer reference; generation is deterministic; a corrupted constant
is located by the divergence finder."""
import json

import pytest

from binaryvit.hw.network.generate import generate
from binaryvit.sim.network_sim import simulate

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.fixture(scope="module")
def trained_out(trained_checkpoint, tmp_path_factory):
    from binaryvit.quantize.quantizer import quantize_checkpoint

    out = tmp_path_factory.mktemp("network") / "out"
    quantize_checkpoint(trained_checkpoint, out)
    generate(out)
    return out


@pytest.fixture(scope="module")
def simulated(trained_out):
    """The 20-digit Verilator run (``reports/sim.json``), once per worker: under ``pytest
    -n`` the tests that read it may run on different workers."""
    return simulate(trained_out, images=20, stall_prob=0.2, progress=False)


def test_trained_digits_are_bit_exact_in_verilator(trained_out, simulated):
    report = simulated
    totals = report["totals"]
    assert totals["images"] == 20 and len(report["images"]) == 20
    assert totals["mismatches"] == 0
    for image in report["images"]:
        assert image["match"] and image["rtl_logits"] == image["ref_logits"]
        assert image["rtl_class"] == image["ref_class"]
    assert totals["hw_top1"] == totals["ref_top1"] > 0.5
    saved = json.loads((trained_out / "reports" / "sim.json").read_text())
    assert saved["totals"]["mismatches"] == 0


def test_estimate_of_the_trained_network(trained_out, simulated):
    estimate = json.loads((trained_out / "reports" / "estimate.json").read_text())
    assert estimate["cycles_per_image"] <= estimate["target_cycles"] == 2048
    assert all(layer["cycles_per_image"] <= 2048 for layer in estimate["layers"])
    description = json.loads((trained_out / "rtl" / "network.json").read_text())
    assert description["classes"] == 10 and description["pixel_width"] == 5
    report = json.loads((trained_out / "reports" / "sim.json").read_text())["totals"]
    # The steady state is never faster than the cost model's bottleneck; the measured mean
    # (two windows of 9 images) moves by where random output stalls held each window's
    # first and last logits: a few cycles over 18 images.
    assert report["cycles_per_image_measured"] >= estimate["cycles_per_image"] - 2
