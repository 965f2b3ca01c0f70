"""`binaryvit report`: every plot it makes is a PNG of sane size that report.md shows, on a
network as large as a real one, and measured per-step cycles reach the tables."""
import json

from PIL import Image

from binaryvit.cli import main

PLOTS = ("cycles_per_block.png", "resources_by_op_class.png", "fit_per_board.png")
OPS = ("threshold", "xnor_popcount_dot", "affine", "residual_add", "rprelu")


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def large_estimate(stages=4, blocks=6, steps_per_block=40):
    """An estimate.json shaped like a paper-scale network's: ~1000 steps, each with a FIFO."""
    layers = [{"name": "stem.norm", "op": "fixed_mac", "fold": {"pe": 1, "simd": 1},
               "cycles_per_image": 4096, "ideal_cycles_per_image": 4000, "luts": 200}]
    for s in range(stages):
        for b in range(blocks):
            for k in range(steps_per_block):
                layers.append({"name": f"stages.{s}.blocks.{b}.step{k}", "op": OPS[k % len(OPS)],
                               "fold": {"lanes": 1}, "cycles_per_image": 1000 + 70 * k,
                               "ideal_cycles_per_image": 1000 + 60 * k, "luts": 50 + k})
    layers.append({"name": "classifier", "op": "fixed_mac", "fold": {"pe": 1, "simd": 1},
                   "cycles_per_image": 100, "ideal_cycles_per_image": 100, "luts": 90})
    parts = {}
    for layer in layers:
        parts[layer["name"]] = {"luts": layer["luts"], "ffs": 20, "brams": 1, "dsps": 1}
        parts[layer["name"] + ".fifo0"] = {"luts": 10, "ffs": 5, "brams": 1, "dsps": 0}
    parts["argmax"] = {"luts": 40, "ffs": 30, "brams": 0, "dsps": 0}
    resources = {family: {"total": {k: sum(p[k] for p in parts.values())
                                    for k in ("luts", "ffs", "brams", "dsps")},
                          "parts": parts, "memories": []} for family in ("ice40", "ecp5")}
    return {"cycles_per_image": 4096, "ideal_cycles_per_image": 4000, "bottleneck": "stem.norm",
            "layers": layers, "resources": resources}


def test_each_plot_is_a_readable_png_that_the_report_shows(tmp_path):
    out = tmp_path / "out"
    estimate = large_estimate()
    write(out / "reports" / "estimate.json", estimate)
    measured = {"stem.norm": 4100, "stages.1.blocks.2.step39": 4000,
                "stages.3.blocks.5.step0": "n/a"}    # not a number: not a measurement
    write(out / "reports" / "sim.json", {
        "totals": {"images": 4, "mismatches": 0, "hw_top1": 0.75, "ref_top1": 0.75,
                   "cycles_per_image_measured": 4100.0},
        "images": [{"rtl_logits": [1, 2], "ref_logits": [1, 2]}] * 4,
        "per_layer_cycles": measured})
    assert main(["report", str(out), "--stream-widths"]) == 0
    text = (out / "reports" / "report.md").read_text()
    for png in PLOTS:
        width, height = Image.open(out / "reports" / png).size
        assert 300 <= width <= 2000 and 250 <= height <= 2000, (png, width, height)
        assert f"]({png})" in text
    assert not (out / "reports" / "luts_per_layer.png").exists()
    # 24 blocks of 40 steps: one row per block, named after its slowest step
    assert "| stage 1 block 2 | stages.1.blocks.2.step39 | 3730 | 3340 | 4000 " \
           "(stages.1.blocks.2.step39) |" in text
    assert "| stem | stem.norm | 4096 | 4000 | 4100 (stem.norm) |" in text
    # the per-step table keeps every step, with the measured cycles where sim.json has them
    assert "| stem.norm | fixed_mac | pe=1 simd=1 | 4096 | 4000 | 4100 | 200 |" in text
    assert "| stages.3.blocks.5.step0 | threshold | lanes=1 | 1000 | 1000 | — | 50 |" in text
    assert "On those 4 images the RTL's logits differ from the integer reference's in **0** " \
           "of 8" in text
    assert "Not measured: no manifest.json." in text


def test_without_a_checkpoint_the_width_sweep_says_why(tmp_path):
    out = tmp_path / "out"
    write(out / "manifest.json", {"config": {"name": "tiny-digits", "num_classes": 10},
                                  "checkpoint": {"path": str(tmp_path / "gone.pt"),
                                                 "sha256": "0" * 64}})
    assert main(["report", str(out)]) == 0
    text = (out / "reports" / "report.md").read_text()
    assert (f"Not measured: no checkpoint with the manifest's sha256 at `{tmp_path / 'gone.pt'}` "
            f"or `{out / 'model.pt'}`.") in text
    assert not (out / "reports" / "accuracy_vs_stream_width.png").exists()
