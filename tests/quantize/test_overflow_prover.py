"""The interval overflow prover: hand-derived intervals, a crafted layer that must overflow,
and soundness of the proof on a real trained model run on digit images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from binaryvit.errors import OverflowProofError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.overflow import prove_no_overflow
from binaryvit.quantize.quantizer import quantize_model


def crafted(mul: int) -> IntModel:
    """Pixels 0..16 → 3·x + 5 (a 1×1 MAC) → mul·y (an affine, no shift)."""
    config = get_config("tiny-digits")
    steps = [Step("patches", "image_patches", ("input",), {"size": 1}),
             Step("mac", "fixed_mac", ("patches",), {"shift": 0, "width": 16},
                  {"weight": np.array([[3]]), "bias": np.array([5])}),
             Step("scale", "affine", ("mac",), {"shift": 0, "width": 0},
                  {"mul": np.array([mul]), "bias": np.array([0])})]
    return IntModel(config, {"acc_width": 48}, (0, 16), steps)


def test_hand_derived_intervals():
    proof = prove_no_overflow(crafted(1 << 40))
    got = {(r.step, r.quantity): (r.lo, r.hi, r.bits) for r in proof.records}
    # 3·[0, 16] = [0, 48] (6 bits + sign = 7); + 5 → [5, 53]
    assert got["mac", "dot"] == (0, 48, 7)
    assert got["mac", "accumulator"] == (5, 53, 7)
    # 53·2^40 < 64·2^40 = 2^46, so 47 signed bits
    assert got["scale", "product"] == (5 << 40, 53 << 40, 47)
    assert proof.max_bits == 47


def test_crafted_layer_must_overflow():
    model = crafted(1 << 40)
    prove_no_overflow(model, acc_width=47)
    with pytest.raises(OverflowProofError, match=r"'scale' \(affine\).*product.*47 bits.*46"):
        prove_no_overflow(model, acc_width=46)


def test_saturating_output_is_not_an_overflow():
    # the MAC's 16-bit output clamps 53·2^12 to 32767: allowed, and the next step sees the clamp
    model = crafted(1)
    model.steps[1].arrays["weight"] = np.array([[3 << 12]])
    proof = prove_no_overflow(model, acc_width=20)
    assert proof.outputs["mac"] == (5, 32767)


@pytest.fixture(scope="module")
def trained(trained_checkpoint):
    model = load_checkpoint(trained_checkpoint).build_model()
    data = load_digits_dataset()
    return model, quantize_model(model, data.train_images[:64]), data


def test_proof_is_sound_on_digit_images(trained):
    """Every value every step produces on real images lies inside its proven interval."""
    _, q, data = trained
    outputs = q.proof.outputs
    seen = []

    def check(step, out):
        bounds = outputs[step.name]
        if bounds is None:
            assert out.dtype == torch.bool
            return
        lo, hi = bounds
        assert lo <= int(out.min()) and int(out.max()) <= hi, step.name
        seen.append(step.name)

    run_int_network(q.intmodel, data.test_images[:120], observer=check)
    assert len(seen) > 150


def test_quantize_names_the_layer_that_overflows(trained):
    model, _, _ = trained
    with pytest.raises(OverflowProofError, match=r"step '[\w.]+' \(\w+\) would overflow"):
        quantize_model(model, None, QuantFormats(stream_frac=17, input_range=(0, 16),
                                                 acc_width=36))
