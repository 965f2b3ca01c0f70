"""Generation is byte-for-byte deterministic, and a deliberately corrupted constant is
located by the divergence finder at its own layer, token and channel."""
import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hw"))
from network_models import digit_images, int_model  # noqa: E402

from binaryvit.hw.folding import fold_network  # noqa: E402
from binaryvit.hw.generate import generate  # noqa: E402
from binaryvit.sim.divergence import find_divergence  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_generated_files_are_byte_identical(tmp_path):
    model = int_model("micro")
    for run in ("a", "b"):
        generate(tmp_path / run, model=model, target_cycles=1024)
    for name in ("rtl/binaryvit_top.v", "rtl/network.json", "reports/estimate.json"):
        first, second = (tmp_path / run / name for run in ("a", "b"))
        assert first.read_bytes() == second.read_bytes(), name
    assert "module binaryvit_top" in (tmp_path / "a/rtl/binaryvit_top.v").read_text()


def test_a_corrupted_constant_is_found_at_its_layer():
    model = int_model("micro")
    broken = copy.deepcopy(model)
    step = "stages.0.blocks.0.norm2"
    bias = broken.step(step).arrays["bias"]
    bias[5] += 1 << 40  # channel 5 of norm2 saturates: every token differs there
    folding = fold_network(model, target_cycles=1024)
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
