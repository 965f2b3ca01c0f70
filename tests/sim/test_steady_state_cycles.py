"""Steady-state cycles per image are measured only between images in steady state: not the
first (pipeline fill) and not the stream's last, which finishes early (no image follows, so
the strip pool flushes its tail). On MICRO without pyramid and layer scale the old mean
(every image but the first) came out below the bottleneck and the efficiency above 1."""
import pytest
from network_models import int_model

from binaryvit.golden.intref.intmodel import save_intmodel
from binaryvit.hw.network.generate import generate
from binaryvit.sim.network_sim import simulate, steady_cycles

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

IMAGES = 8


def test_steady_cycles_drop_each_runs_first_and_last_image():
    assert steady_cycles([900, 100, 101, 102, 50]) == [100, 101, 102]
    assert steady_cycles([900, 100, 101, 50, 800, 103, 104, 60], chunk=4) == [100, 101, 103, 104]
    assert steady_cycles([900, 50]) == []


def test_flat_micro_measures_its_bottleneck_period(tmp_path):
    model = int_model("micro-flat")
    save_intmodel(model, tmp_path / "intmodel.npz")
    estimate = generate(tmp_path, model=model, target_cycles=512)
    period = estimate["cycles_per_image"]
    report = simulate(tmp_path, images=IMAGES, progress=False)
    cycles = [image["cycles"] for image in report["images"]]
    assert cycles[1:-1] == [period] * (IMAGES - 2)
    assert cycles[-1] < period      # where the old mean went wrong
    totals = report["totals"]
    assert totals["mismatches"] == 0
    assert totals["cycles_per_image_measured"] == period
    assert totals["steady_images"] == IMAGES - 2
    assert totals["efficiency"] == estimate["ideal_cycles_per_image"] / period <= 1
