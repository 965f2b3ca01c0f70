"""The fast path on MICRO without pyramid and layer scale (one isotropic stage):

- steady-state cycles per image are measured only between images in steady state: not the
  first (pipeline fill) and not the stream's last, which finishes early (no image follows,
  so the strip pool flushes its tail). The old mean (every image but the first) came out
  below the bottleneck and the efficiency above 1 on this configuration;
- the harness's monitors see every kernel's output words on exactly the cycles the timing
  model (``hw/network/timing.py``) predicts, one cycle later (the harness's source is a
  register), so the per-layer cycles in ``sim.json`` are those of the running hardware."""
import json

import pytest
from network_models import digit_images, int_model

from binaryvit.golden.intref.intmodel import save_intmodel
from binaryvit.hw.network.folding import fold_network
from binaryvit.hw.network.generate import generate
from binaryvit.hw.network.planner import plan_network
from binaryvit.sim.network_fast import build_network_harness, network_top, run_network_fast
from binaryvit.sim.network_sim import pixel_words, simulate, steady_cycles
from binaryvit.sim.stream_harness import Monitor

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

IMAGES = 8
TARGET = 512


@pytest.fixture(scope="module")
def flat_out(tmp_path_factory):
    model = int_model("micro-flat")
    out = tmp_path_factory.mktemp("flat") / "out"
    save_intmodel(model, out / "intmodel.npz")
    return out, model, generate(out, model=model, target_cycles=TARGET)


def test_steady_cycles_drop_each_runs_first_and_last_image():
    assert steady_cycles([900, 100, 101, 102, 50]) == [100, 101, 102]
    assert steady_cycles([900, 100, 101, 50, 800, 103, 104, 60], [4, 4]) == [100, 101, 103, 104]
    assert steady_cycles([900, 100, 50, 800, 103, 104, 60], [3, 4]) == [100, 103, 104]
    assert steady_cycles([900, 50]) == []
    with pytest.raises(ValueError, match=r"runs of \[3, 3\] images do not add up to the 7"):
        steady_cycles([900, 100, 50, 800, 103, 104, 60], [3, 3])


def test_flat_micro_measures_its_bottleneck_period(flat_out):
    out, _, estimate = flat_out
    period = estimate["cycles_per_image"]
    report = simulate(out, images=IMAGES, progress=False)
    cycles = [image["cycles"] for image in report["images"]]
    assert cycles[1:-1] == [period] * (IMAGES - 2)
    assert cycles[-1] < period      # where the old mean went wrong
    totals = report["totals"]
    assert totals["mismatches"] == 0
    assert totals["cycles_per_image_measured"] == period
    assert totals["steady_images"] == IMAGES - 2
    assert totals["efficiency"] == estimate["ideal_cycles_per_image"] / period <= 1
    description = json.loads((out / "rtl" / "network.json").read_text())
    assert set(report["per_layer_cycles"]) == {s["step"] for s in description["streams"]}


def test_monitors_see_the_cycles_the_timing_model_predicts(flat_out):
    out, model, _ = flat_out
    plan = plan_network(model, fold_network(model, target_cycles=TARGET))
    schedule = plan.schedule
    description = json.loads((out / "rtl" / "network.json").read_text())
    top = network_top(description, [Monitor(s["instance"], s["words_per_image"])
                                    for s in description["streams"]])
    built = build_network_harness((out / "rtl" / description["verilog"]).read_text(), top)
    images = digit_images(4)
    words = pixel_words(images, description["patch_size"], description["pixel_width"],
                        description["input_lanes"])
    logits_words = description["classes"] // description["logit_lanes"]
    run = run_network_fast(built, top, words, logits_words, monitor_images=4,
                           image_period=schedule.period)
    compared = len(images) - 1       # the stream's last image may finish otherwise
    for k, stream in enumerate(description["streams"]):
        emitted = schedule.emitted[stream["step"]]
        per_image = len(emitted) // schedule.images
        assert per_image == stream["words_per_image"]
        expected = [(int(emitted[j * per_image]) + 1, int(emitted[(j + 1) * per_image - 1]) + 1)
                    for j in range(compared)]
        assert run.monitor_spans[k][:compared] == expected, stream["step"]
