"""Whole inferences in Verilator: the whole test split (360 digits) through the generated
accelerator on the fast path, with random input bubbles and output back-pressure, bit-exact
against the integer reference."""
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


TEST_SPLIT = 360


@pytest.fixture(scope="module")
def simulated(trained_out):
    """All 360 test digits through the RTL (``reports/sim.json``), once per worker: under
    ``pytest -n`` the tests that read it may run on different workers."""
    return simulate(trained_out, images=TEST_SPLIT, bubble_prob=0.3, stall_prob=0.3, seed=5,
                    progress=False)


def test_the_whole_test_split_is_bit_exact_in_verilator(trained_out, simulated):
    report = simulated
    totals = report["totals"]
    assert totals["images"] == TEST_SPLIT and len(report["images"]) == TEST_SPLIT
    assert totals["path"] == "fast" and totals["bubble_prob"] == totals["stall_prob"] == 0.3
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
    # Input bubbles (64 pixel words per image) and stalls on 10 logits words per image do
    # not slow a 2048-cycle bottleneck: the steady state runs at the estimate. The 360
    # images go in two simulator runs of 180 (side by side), each without its first (fill)
    # and last image: 356 steady images, whose mean moves only by where random stalls held
    # each window's first and last logits (a few cycles / 177).
    assert report["runs"] == [180, 180]
    assert report["steady_images"] == TEST_SPLIT - 4
    assert abs(report["cycles_per_image_measured"] - estimate["cycles_per_image"]) < 0.1


def test_the_report_of_the_trained_network_reads_at_natural_size(trained_out):
    """`binaryvit report` on the real 269-step network: each plot a PNG of at most 2000
    pixels a side that report.md shows; the stream-width sweep at the model's own width gives
    the integer model's accuracy (run here from intmodel.npz), a width too narrow to quantize
    is named, and the sweep is kept for the next report."""
    import torch
    from PIL import Image

    from binaryvit.cli import main
    from binaryvit.golden.intref.int_network import int_predict
    from binaryvit.golden.intref.intmodel import load_intmodel
    from binaryvit.golden.train.data import load_digits_dataset
    from binaryvit.report.stream_width_sweep import stream_width_sweep

    assert main(["report", str(trained_out), "--stream-widths", "24", "6"]) == 0
    text = (trained_out / "reports" / "report.md").read_text()
    for png in ("accuracy_vs_stream_width.png", "cycles_per_block.png",
                "resources_by_op_class.png", "fit_per_board.png"):
        width, height = Image.open(trained_out / "reports" / png).size
        assert 300 <= width <= 2000 and 250 <= height <= 2000, (png, width, height)
        assert f"]({png})" in text
    model = load_intmodel(trained_out / "intmodel.npz")
    data = load_digits_dataset()
    top1 = float((int_predict(model, torch.as_tensor(data.test_images).to(torch.int64))
                  == torch.as_tensor(data.test_labels)).double().mean())
    frac = model.formats["stream_frac"]
    assert f"| 24 | {frac} | {100 * top1:.2f} % |" in text
    assert f"| integer reference | {100 * top1:.2f} % | the test split (360 images) |" in text
    assert "| 6 | — | cannot be quantized: stream_width=6 is too narrow" in text
    assert "| stage 0 block 1 | stages.0.blocks.1." in text
    assert "measured now and kept in `stream_width_accuracy.json`" in text
    manifest = json.loads((trained_out / "manifest.json").read_text())
    again = stream_width_sweep(trained_out, manifest, (24, 6), progress=False)
    assert again.reused and [w.int_top1 for w in again.widths] == [top1, None]
