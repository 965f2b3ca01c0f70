"""Generation is byte-for-byte deterministic; a deliberately corrupted constant is located
by the divergence finder at its own layer, token and channel; and in that tapped build every
stream moves on exactly the cycles the timing model (``hw/network/timing.py``) predicts."""
import copy

import pytest

from network_models import digit_images, int_model

from binaryvit.hw.network.accelerator import BinaryViTAccelerator
from binaryvit.hw.network.folding import fold_network
from binaryvit.hw.network.generate import generate
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.verilog import to_verilog
from binaryvit.sim.divergence import find_divergence, tappable_steps
from binaryvit.sim.network_sim import build_network_sim, pixel_words, run_network

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_generated_files_are_byte_identical(tmp_path):
    model = int_model("micro")
    for run in ("a", "b"):
        generate(tmp_path / run, model=model, target_cycles=1024)
    for name in ("rtl/binaryvit_top.v", "rtl/network.json", "reports/estimate.json"):
        first, second = (tmp_path / run / name for run in ("a", "b"))
        assert first.read_bytes() == second.read_bytes(), name
    assert "module binaryvit_top" in (tmp_path / "a/rtl/binaryvit_top.v").read_text()


CORRUPTED = "stages.0.blocks.0.norm2"


@pytest.fixture(scope="module")
def broken_micro():
    """The micro model, a copy with channel 5 of norm2's bias saturating (every token differs
    there), and the folding both are built with."""
    model = int_model("micro")
    broken = copy.deepcopy(model)
    broken.step(CORRUPTED).arrays["bias"][5] += 1 << 40
    return model, broken, fold_network(model, target_cycles=1024)


def test_a_corrupted_constant_is_found_at_its_layer(broken_micro):
    model, broken, folding = broken_micro
    step = CORRUPTED
    images = digit_images(2)
    # The RTL built from the broken model, checked against the intact integer program.
    found = find_divergence(broken, folding, images, reference=model)
    assert found is not None
    assert (found.step, found.op, found.image, found.token, found.channel) == \
        (step, "affine", 0, 0, 5), str(found)
    assert f"step '{step}' (affine), image 0, token 0, channel 5" in str(found)
    # Against its own (broken) program the same RTL agrees on every tapped stream: the
    # divergence is the constant, not the hardware.
    assert find_divergence(broken, folding, images) is None


def test_every_stream_moves_on_the_cycle_the_timing_model_predicts(broken_micro):
    # The divergence finder's debug build (same Verilog, so its Verilator build is reused),
    # fed one image per bottleneck period like the model's source: every tapped word and
    # every image's last logit leave on exactly the predicted cycle. (The stream's last
    # image is left out: a kernel may finish it otherwise than an image with a successor,
    # as in the model's longer stream, e.g. flush a tail the next image would carry.)
    _, broken, folding = broken_micro
    plan = plan_network(broken, folding)
    network = BinaryViTAccelerator(plan, taps=tappable_steps(broken))
    schedule = plan.schedule
    assert schedule.period == folding.bottleneck
    built = build_network_sim(to_verilog(network, "binaryvit_debug"), "binaryvit_debug")
    images = digit_images(4)
    words = pixel_words(images, broken.steps[0].params["size"], network.tensors["input"].width,
                        network.input_lanes)
    logits = network.tensors[network.logits]
    run = run_network(built, words,
                      logits.channels // network.produced_lanes[network.logits],
                      taps=range(len(network.tap_names)), image_period=schedule.period)
    compared = len(images) - 1
    for k, step in enumerate(network.tap_names):
        words = len(schedule.emitted[step]) // schedule.images * compared
        assert run.tap_cycles[k][:words] == schedule.emitted[step][:words].tolist(), step
    assert run.image_cycles[:compared] == [schedule.latency(network.logits)] + \
        [schedule.period] * (compared - 1)
